"""Direction codes through REFI-QDA (issue 18 item 1): a project coded in the thesis' style, with
``Positief``/``Negatief`` beside the incentive codes, imports every selection with its code and
direction after ``--suggest-mapping`` accepted unedited; an export keeps directions as codes, so
a round trip without selection descriptions keeps them too."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from pipeline.cli import cli
from pipeline.codebook import load_codebook
from pipeline.errors import QdaMappingError
from pipeline.qda import (
    DirectionMark,
    choose_direction,
    direction_of_name,
    export_qdpx,
    import_qdpx,
    load_qda_mapping,
    propose_mapping,
    qda_guid,
    read_qdpx,
    suggest_mapping,
)
from pipeline.store.database import open_store

TEXT = """Naam respondent: BQ
Functie: beleidsmedewerker Jeugd
Werkend bij: gemeente Testerveen

Onderzoeker: Hoe is de werkdruk?

Respondent: De werkdruk is heel hoog. We hebben wel een vast evaluatiemoment.

Onderzoeker: Delen jullie kennis?

Respondent: We delen veel kennis in het teamoverleg.

Onderzoeker: Durven mensen fouten toe te geven?

Respondent: Iedereen durft hier fouten te melden. Leidinggevenden vragen nooit door.

Onderzoeker: Gaan mensen op cursus?

Respondent: Er is budget voor cursussen. Bijna niemand gaat op cursus.
"""
# The thesis' six coded selections: (sentence, incentive, direction).
CODED = [
    ("De werkdruk is heel hoog.", "tijd_evaluatie", "-"),
    ("We delen veel kennis in het teamoverleg.", "informatieoverdracht", "+"),
    ("Iedereen durft hier fouten te melden.", "psychologische_veiligheid", "+"),
    ("Leidinggevenden vragen nooit door.", "actief_bevragen_luisteren", "-"),
    ("Er is budget voor cursussen.", "onderwijs_training", "+"),
    ("Bijna niemand gaat op cursus.", "onderwijs_training", "-"),
]
NAMES = {
    "nl": {"tijd_evaluatie": "Tijd voor evaluatie", "informatieoverdracht": "Informatieoverdracht",
           "psychologische_veiligheid": "Psychologische veiligheid",
           "actief_bevragen_luisteren": "Actief bevragen van en luisteren", "onderwijs_training": "Onderwijs en training",
           "+": "Positief", "-": "Negatief"},
    "en": {"tijd_evaluatie": "Time for reflection and evaluation", "informatieoverdracht": "Knowledge transfer",
           "psychologische_veiligheid": "Psychological safety",
           "actief_bevragen_luisteren": "Actively questioning and listening",
           "onderwijs_training": "Education and training", "+": "Positive", "-": "Negative"},
}
USER = "0A000000-0000-4000-8000-000000000001"
SOURCE = "50000000-0000-4000-8000-000000000001"
VARIANTS = ("siblings", "flattened", "separate", "children", "english", "overlapping")


def _guid(*parts: object) -> str:
    return qda_guid("test", ":".join(map(str, parts)))


def _codes_xml(variant: str) -> str:
    names = NAMES["en" if variant == "english" else "nl"]
    incentives = sorted({code for _, code, _ in CODED})
    if variant == "children":  # Tijd voor evaluatie::Negatief, as NVivo child codes
        inner = "".join(
            f'<Code guid="{_guid(code)}" name="{names[code]}" isCodable="true">'
            + "".join(f'<Code guid="{_guid(code, d)}" name="{names[d]}" isCodable="true"/>' for d in "+-")
            + "</Code>" for code in incentives)
        return f'<Code guid="{_guid("block")}" name="Leeromgeving" isCodable="false">{inner}</Code>'
    topics = "".join(f'<Code guid="{_guid(code)}" name="{names[code]}" isCodable="true"/>' for code in incentives)
    directions = "".join(f'<Code guid="{_guid(d)}" name="{names[d]}" isCodable="true"/>' for d in "+-")
    if variant == "english":  # direction codes in a folder of their own
        return topics + f'<Code guid="{_guid("folder")}" name="Direction" isCodable="false">{directions}</Code>'
    if variant == "flattened":  # no folder element, 'Folder::Code' names (MAXQDA, some NVivo exports)
        return (topics + directions).replace('name="', 'name="Leeromgeving::')
    # siblings of the incentive codes inside the building block folder
    return f'<Code guid="{_guid("block")}" name="Leeromgeving" isCodable="false">{topics}{directions}</Code>'


def _selection(key: object, start: int, end: int, codes: list[str]) -> str:
    codings = "".join(f'<Coding guid="{_guid("coding", key, code)}" creatingUser="{USER}" '
                      f'creationDateTime="2026-03-01T10:00:00Z"><CodeRef targetGUID="{code}"/></Coding>'
                      for code in codes)
    return (f'<PlainTextSelection guid="{_guid("selection", key)}" name="Referentie {key}" startPosition="{start}" '
            f'endPosition="{end}" creatingUser="{USER}">{codings}</PlainTextSelection>')


def _selections_xml(variant: str, coded: list[tuple[str, str, str]]) -> str:
    parts = []
    for number, (sentence, code, direction) in enumerate(coded):
        start = TEXT.index(sentence)
        end = start + len(sentence)
        if variant == "children":
            parts.append(_selection(number, start, end, [_guid(code, direction)]))
        elif variant in ("siblings", "flattened", "english"):  # one selection, two codings
            parts.append(_selection(number, start, end, [_guid(code), _guid(direction)]))
        elif variant == "separate":  # one selection per coding, on the same words (NVivo's references)
            parts.append(_selection(number, start, end, [_guid(code)]))
            parts.append(_selection(f"{number}d", start, end, [_guid(direction)]))
        else:  # overlapping: the direction selected a little wider or narrower than the code
            parts.append(_selection(number, start, end, [_guid(code)]))
            d_start, d_end = (start + 4, end) if number % 2 else (max(0, start - 3), end + 1)
            parts.append(_selection(f"{number}d", d_start, d_end, [_guid(direction)]))
    return "".join(parts)


def write_thesis_qdpx(path: Path, variant: str, coded: list[tuple[str, str, str]] | None = None) -> Path:
    """A .qdpx as NVivo exports a project coded in the thesis' style (``variant`` of :data:`VARIANTS`)."""
    qde = f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="scriptie" origin="NVivo 14">
 <Users><User guid="{USER}" name="Onderzoeker A"/></Users>
 <CodeBook><Codes>{_codes_xml(variant)}</Codes></CodeBook>
 <Variables><Variable guid="{_guid('var')}" name="Gemeente" typeOfVariable="Text"/></Variables>
 <Sources><TextSource guid="{SOURCE}" name="BQ.docx" plainTextPath="internal://{SOURCE}.txt">
  {_selections_xml(variant, CODED if coded is None else coded)}
  <VariableValue><VariableRef targetGUID="{_guid('var')}"/><TextValue>Testerveen</TextValue></VariableValue>
 </TextSource></Sources>
</Project>"""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", qde.encode("utf-8"))
        archive.writestr(f"sources/{SOURCE}.txt", TEXT.encode("utf-8"))
    return path


def _coded(store) -> list[tuple[str, str, str]]:
    texts = {u.utterance_id: u.text for u in store.iter_utterances()}
    return sorted((texts[a.utterance_id], a.code, a.direction) for a in store.list_annotations())


def _accepted_mapping(archive: Path, tmp_path: Path, book):
    """The proposal of --suggest-mapping, written and read back unedited."""
    text, _, _ = propose_mapping(archive, book)
    path = tmp_path / f"{archive.stem}.yaml"
    path.write_text(text, encoding="utf-8")
    return load_qda_mapping(path, book)


@pytest.mark.parametrize("variant", VARIANTS)
def test_qda_directions_thesis_style_import_gives_every_selection_code_and_direction(
        variant: str, fresh_store, segmenter, tmp_path: Path) -> None:
    book = load_codebook()
    archive = write_thesis_qdpx(tmp_path / f"{variant}.qdpx", variant)
    report = import_qdpx(archive, fresh_store, segmenter, book, _accepted_mapping(archive, tmp_path, book))
    assert report.ok, (report.unmapped, report.problems)
    assert _coded(fresh_store) == sorted(CODED)  # 6 of 6: code and direction
    assert report.n_placed == 6 and report.n_without_direction == 0 and report.conflicts == ()
    if variant != "children":
        assert report.n_directed == 6 and report.n_direction_codings == 6


def test_qda_directions_suggest_mapping_proposes_direction_codes(tmp_path: Path) -> None:
    book = load_codebook()
    for variant, key in (("siblings", "Leeromgeving::Positief"), ("english", "Direction::Positive")):
        suggestions = {s.name: s for s in suggest_mapping(read_qdpx(write_thesis_qdpx(
            tmp_path / f"{variant}.qdpx", variant)).codes, book)}
        assert (suggestions[key].code, suggestions[key].direction) == (None, "+")
        text, n_codes, n_proposed = propose_mapping(tmp_path / f"{variant}.qdpx", book)
        assert n_codes == n_proposed == 7 and f'"{key}": {{direction: "+"}}' in text
    children = {s.name: s for s in suggest_mapping(read_qdpx(write_thesis_qdpx(
        tmp_path / "children.qdpx", "children")).codes, book)}
    negative = children["Leeromgeving::Tijd voor evaluatie::Negatief"]
    assert (negative.code, negative.direction) == ("tijd_evaluatie", "-")


@pytest.mark.parametrize(("name", "direction"), [
    ("Positief", "+"), ("negatief", "-"), ("+", "+"), ("−", "-"), ("Bevorderend", "+"), ("belemmerend", "-"),
    ("Positive (+)", "+"), ("Richting: negatief", "-"), ("Gemengd", "0"),
    ("Negatieve werkdruk", None), ("Werkdruk", None), ("+/-", None), ("Positief of negatief", None),
])
def test_qda_directions_names(name: str, direction: str | None) -> None:
    assert direction_of_name(name) == direction


def test_qda_directions_overlap_rule_and_conflicts() -> None:
    marks = [DirectionMark("a", 0, 30, "+", "A"), DirectionMark("b", 28, 60, "-", "A"),
             DirectionMark("c", 0, 30, "-", "B")]
    # wider and narrower selections apply; the neighbour sharing two characters does not; other users do not
    assert choose_direction("x", 0, 29, "A", [], marks).direction == "+"
    assert choose_direction("x", 5, 20, "A", [], marks).direction == "+"
    assert choose_direction("x", 100, 120, "A", [], marks).direction is None
    mixed = choose_direction("x", 10, 50, "A", [], marks)
    assert (mixed.direction, mixed.conflict) == ("0", ("+", "-"))
    # a direction code on the selection itself wins over its neighbours
    assert choose_direction("x", 10, 50, "A", ["-"], marks).direction == "-"


def test_qda_directions_conflict_and_undirected_codings_are_reported(fresh_store, segmenter, tmp_path: Path) -> None:
    book = load_codebook()
    archive = write_thesis_qdpx(tmp_path / "conflict.qdpx", "siblings")
    start = TEXT.index(CODED[0][0])
    end = start + len(CODED[0][0])
    qde = zipfile.ZipFile(archive).read("project.qde").decode()
    both = _selection("both", start, end, [_guid("tijd_evaluatie"), _guid("+"), _guid("-")])
    sentence = "We hebben wel een vast evaluatiemoment."
    s2 = TEXT.index(sentence)
    bare = _selection("bare", s2, s2 + len(sentence), [_guid("tijd_evaluatie")])
    qde = re.sub(r"<PlainTextSelection .*</PlainTextSelection>", both + bare, qde, flags=re.DOTALL)
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("project.qde", qde)
        z.writestr(f"sources/{SOURCE}.txt", TEXT)
    report = import_qdpx(archive, fresh_store, segmenter, book, _accepted_mapping(archive, tmp_path, book))
    assert len(report.conflicts) == 1 and "direction codes + and -" in report.conflicts[0]
    assert report.n_without_direction == 1
    assert any("1 incentive coding(s) have no direction code" in note for note in report.notes)
    assert _coded(fresh_store) == [(CODED[0][0], "tijd_evaluatie", "0"), (sentence, "tijd_evaluatie", "0")]


def test_qda_directions_round_trip_keeps_directions_without_descriptions(fresh_store, segmenter,
                                                                          tmp_path: Path) -> None:
    book = load_codebook()
    archive = write_thesis_qdpx(tmp_path / "thesis.qdpx", "separate")
    import_qdpx(archive, fresh_store, segmenter, book, _accepted_mapping(archive, tmp_path, book))
    out = tmp_path / "export.qdpx"
    export_qdpx(fresh_store, book, out, include="reviewed")
    # a QDA program that drops selection descriptions (the [codeer] direction lines) on its way
    with zipfile.ZipFile(out) as z:
        members = {name: z.read(name) for name in z.namelist()}
    schema = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "refi-qda" / "Project-mrt2019.xsd")))
    assert schema.validate(etree.fromstring(members["project.qde"])), schema.error_log
    qde = members["project.qde"].decode()
    assert qde.count('name="Positief"') == 1 and qde.count(f'targetGUID="{qda_guid("direction", "-")}"') == 3
    members["project.qde"] = re.sub(r"<Description>\[codeer\][^<]*</Description>", "", qde).encode()
    stripped = tmp_path / "stripped.qdpx"
    with zipfile.ZipFile(stripped, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    # a researcher who turns every Positief into Negatief in the program (the descriptions still say '+')
    members["project.qde"] = qde.replace(f'targetGUID="{qda_guid("direction", "+")}"',
                                         f'targetGUID="{qda_guid("direction", "-")}"').encode()
    edited = tmp_path / "edited.qdpx"
    with zipfile.ZipFile(edited, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    everything_negative = sorted((text, code, "-") for text, code, _ in CODED)
    for again, expected in ((out, sorted(CODED)), (stripped, sorted(CODED)), (edited, everything_negative)):
        empty = open_store(f"sqlite:///{tmp_path / (again.stem + '.db')}")
        try:
            report = import_qdpx(again, empty, segmenter, book)  # codeer's own codes need no mapping
            assert report.ok and report.conflicts == () and _coded(empty) == expected
        finally:
            empty.close()


def test_qda_directions_export_splits_an_utterance_coded_in_two_directions(fresh_store, segmenter,
                                                                           tmp_path: Path) -> None:
    book = load_codebook()
    sentence = "Leidinggevenden vragen nooit door."
    coded = [(sentence, "actief_bevragen_luisteren", "-"), (sentence, "psychologische_veiligheid", "+")]
    # two selections on the same words, each with its code and direction code: no conflict
    archive = write_thesis_qdpx(tmp_path / "two.qdpx", "siblings", coded)
    report = import_qdpx(archive, fresh_store, segmenter, book, _accepted_mapping(archive, tmp_path, book))
    assert report.conflicts == () and _coded(fresh_store) == sorted(coded)
    # with the direction codes on selections of their own, which one belongs to which code cannot be told
    ambiguous = write_thesis_qdpx(tmp_path / "ambiguous.qdpx", "separate", coded)
    other = open_store(f"sqlite:///{tmp_path / 'ambiguous.db'}")
    try:
        result = import_qdpx(ambiguous, other, segmenter, book, _accepted_mapping(ambiguous, tmp_path, book))
        assert len(result.conflicts) == 2 and {d for _, _, d in _coded(other)} == {"0"}
    finally:
        other.close()
    out = tmp_path / "two-out.qdpx"
    assert export_qdpx(fresh_store, book, out, include="reviewed").n_selections == 2
    empty = open_store(f"sqlite:///{tmp_path / 'two-back.db'}")
    try:
        assert import_qdpx(out, empty, segmenter, book).conflicts == () and _coded(empty) == sorted(coded)
    finally:
        empty.close()


def test_qda_directions_mapping_file_accepts_direction_entries(tmp_path: Path) -> None:
    book = load_codebook()
    path = tmp_path / "map.yaml"
    path.write_text("codes:\n  Positief: {direction: '+'}\n  Negatief: {direction: '-'}\n", encoding="utf-8")
    mapping = load_qda_mapping(path, book)
    assert mapping.codes["positief"].is_direction and mapping.codes["negatief"].direction == "-"
    path.write_text("codes:\n  Praktijk: {facet: practice}\n", encoding="utf-8")
    with pytest.raises(QdaMappingError, match="gives neither a code id nor a direction"):
        load_qda_mapping(path, book)


def test_qda_directions_cli_suggest_then_import(tmp_path: Path) -> None:
    archive = write_thesis_qdpx(tmp_path / "thesis.qdpx", "overlapping")
    runner = CliRunner()
    home = ["--home", str(tmp_path / "ws")]
    proposed = runner.invoke(cli, [*home, "import-qdpx", str(archive), "--suggest-mapping",
                                   "--mapping", str(tmp_path / "map.yaml")])
    assert proposed.exit_code == 0 and "7 code(s), 7 with a proposal" in proposed.output, proposed.output
    imported = runner.invoke(cli, [*home, "import-qdpx", str(archive), "--mapping", str(tmp_path / "map.yaml")])
    assert imported.exit_code == 0, imported.output
    assert "6 of 6 selection(s) placed (besides 6 with direction codes only)" in imported.output
    assert "Directions: 6 coding(s) took theirs from 6 direction code(s); 0 conflict(s); 0 incentive coding(s) " \
           "without direction." in imported.output


def test_qda_directions_kept_thesis_fixture(tmp_path: Path) -> None:
    kept = Path(__file__).parent / "data" / "refi-qda" / "thesis-style.qdpx"
    fresh = write_thesis_qdpx(tmp_path / "fresh.qdpx", "siblings")
    with zipfile.ZipFile(kept) as a, zipfile.ZipFile(fresh) as b:  # the kept file is what the helper writes
        assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}
    runner = CliRunner()
    home = ["--home", str(tmp_path / "ws")]
    assert runner.invoke(cli, [*home, "import-qdpx", str(kept), "--suggest-mapping", "--mapping",
                               str(tmp_path / "map.yaml")]).exit_code == 0
    imported = runner.invoke(cli, [*home, "import-qdpx", str(kept), "--mapping", str(tmp_path / "map.yaml")])
    assert imported.exit_code == 0 and "6 of 6 selection(s) placed" in imported.output, imported.output
    assert "0 incentive coding(s) without direction" in imported.output
    store = open_store(f"sqlite:///{tmp_path / 'ws' / 'codeer.db'}")
    try:
        assert _coded(store) == sorted(CODED)
    finally:
        store.close()
