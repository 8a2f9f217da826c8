"""The shipped codebooks and the validation of codebook files."""

from __future__ import annotations

import pytest
import yaml

from pipeline.codebook import load_codebook, load_mapping, parse_codebook
from pipeline.errors import CodebookError, UnknownCodeError

INCENTIVES = [
    "psychologische_veiligheid", "waardering_verschillen", "openheid_nieuwe_ideeen", "tijd_evaluatie",
    "informatieoverdracht", "experimenteren", "informatie_verzamelen", "analyse", "onderwijs_training",
    "visie_op_leren", "actief_bevragen_luisteren", "belang_van_leren", "ondersteunen_perspectieven",
]
CONTEXT = [
    "cultuur", "strategie", "structuur", "omgeving", "centrale_rol", "inspelen_veranderingen", "soort_veranderingen",
    "decentralisaties", "documenten", "college", "verschillen_organisatorisch", "verschillen_inhoudelijk",
    "verbeterpunten_team", "verbeterpunten_organisatie", "teamomschrijving", "regionale_samenwerking",
]


def test_codebook_garvin2008_has_exactly_the_domain_ids() -> None:
    book = load_codebook("garvin2008")
    assert list(book.incentives) == INCENTIVES
    assert sorted(book.context_codes) == sorted(CONTEXT)
    assert {book.building_block(c) for c in INCENTIVES} == {"ondersteunende_leeromgeving", "concrete_leerprocessen", "leiderschap"}
    assert all(book[c].definition_nl and book[c].examples for c in INCENTIVES)
    assert {c for c in book.by_id if book[c].rated} == set(INCENTIVES) | {
        "cultuur", "strategie", "structuur", "omgeving", "college", "decentralisaties", "regionale_samenwerking"}


def test_codebook_scriptie2017_and_mapping() -> None:
    garvin, scriptie = load_codebook("garvin2008"), load_codebook("scriptie2017")
    assert "tijd_evaluatie" not in scriptie
    assert {"ervaren_tijd", "evaluatiemomenten", "betrokkenheid_college"} <= set(scriptie.incentives)
    mapping = load_mapping(garvin, scriptie)
    assert mapping.to_source("ervaren_tijd") == ("tijd_evaluatie",)
    assert mapping.to_source("betrokkenheid_college") == ()
    with pytest.raises(UnknownCodeError, match="unknown code 'tijd_evaluatie' in codebook version 'scriptie2017'"):
        scriptie["tijd_evaluatie"]


def _book(*codes: dict) -> dict:
    return {"version": "t", "codes": [{"kind": "group", "label_nl": "x", "label_en": "x", **c} for c in codes]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_book({"id": "a"}, {"id": "a"}), "code 'a': duplicate code id"),
        (_book({"id": "a", "parent": "zz"}), "code 'a': parent 'zz' does not exist"),
        (_book({"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}), "loops back"),
        (_book({"id": "a", "kind": "incentive"}), "code 'a': an incentive must sit under a building block"),
    ],
)
def test_codebook_validation_errors_name_file_code_and_fix(data: dict, message: str) -> None:
    with pytest.raises(CodebookError, match=message) as raised:
        parse_codebook(data, "mijn-codeboek.yaml")
    assert str(raised.value).startswith("mijn-codeboek.yaml")


def test_codebook_incomplete_mapping_is_refused(tmp_path) -> None:
    garvin, scriptie = load_codebook("garvin2008"), load_codebook("scriptie2017")
    raw = yaml.safe_load(open(garvin.path.replace("garvin2008.yaml", "mapping.yaml"), encoding="utf-8"))
    del raw["codes"]["ervaren_tijd"]
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(CodebookError, match="code 'ervaren_tijd': scriptie2017 code missing from the mapping"):
        load_mapping(garvin, scriptie, path)
