"""Converting annotations between codebook versions (issue 18 item 5): the written mapping is
applied both ways, what cannot be converted is said, and a model refuses annotations of another
version naming the command that converts them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.codebook import load_codebook
from pipeline.coding.classify import training_set
from pipeline.corpus import annotation_files, code_translation, migrate_annotations, read_annotations
from pipeline.errors import AnnotationError, ModelCardMismatchError
from pipeline.records import Annotation, Coding
from pipeline.resources import seed_dir


def _annotation(utterance_id: str, *codings: Coding, version: str = "garvin2008") -> Annotation:
    return Annotation(utterance_id, "BA.txt", "abc", 0, 10, "De werkdruk is heel hoog.", tuple(codings), "A",
                      "2026-01-01T00:00:00Z", version)


def test_codebook_migrate_translation_follows_the_written_mapping() -> None:
    garvin, scriptie = load_codebook("garvin2008"), load_codebook("scriptie2017")
    forward = code_translation(garvin, scriptie)
    assert forward["tijd_evaluatie"] == ("ervaren_tijd", "evaluatiemomenten")
    assert forward["analyse"] == ("analyse",)
    backward = code_translation(scriptie, garvin)
    assert backward["ervaren_tijd"] == backward["evaluatiemomenten"] == ("tijd_evaluatie",)
    assert backward["betrokkenheid_college"] == ()


def test_codebook_migrate_renames_reports_splits_and_merges() -> None:
    garvin, scriptie = load_codebook("garvin2008"), load_codebook("scriptie2017")
    annotations = [
        _annotation("u1", Coding("analyse", "-", "practice"), Coding("tijd_evaluatie", "-")),
        _annotation("u2", Coding("tijd_evaluatie", "+")),
        _annotation("u3"),  # an explicit "no code" stays one
    ]
    result = migrate_annotations(annotations, garvin, scriptie)
    assert (result.n_codings, result.n_converted, result.n_left_out) == (3, 1, 1)
    assert not result.complete and len(result.unmapped) == 1
    assert result.unmapped[0].startswith("'tijd_evaluatie' (garvin2008): 2 coding(s) not converted; it split into "
                                         "'ervaren_tijd' and 'evaluatiemomenten'")
    assert "--choose tijd_evaluatie=ervaren_tijd" in result.unmapped[0]
    assert [(a.utterance_id, a.codings, a.codebook_version) for a in result.annotations] == [
        ("u1", (Coding("analyse", "-", "practice"),), "scriptie2017"), ("u3", (), "scriptie2017")]

    chosen = migrate_annotations(annotations, garvin, scriptie, choices={"tijd_evaluatie": "evaluatiemomenten"})
    assert chosen.complete and chosen.n_converted == 3

    back = migrate_annotations([_annotation("u4", Coding("ervaren_tijd", "-"), Coding("evaluatiemomenten", "+"),
                                            Coding("betrokkenheid_college", "+"), version="scriptie2017")],
                               scriptie, garvin)
    assert back.annotations[0].codings == (Coding("tijd_evaluatie", "0"),)  # merged, directions disagree
    assert len(back.merged) == 1 and "'ervaren_tijd' and 'evaluatiemomenten'" in back.merged[0]
    assert "'betrokkenheid_college' (scriptie2017): 1 coding(s) not converted; it has no counterpart" in back.unmapped[0]


def test_codebook_migrate_seed_round_trip() -> None:
    garvin, scriptie = load_codebook("garvin2008"), load_codebook("scriptie2017")
    seed = read_annotations([seed_dir()], garvin)
    there = migrate_annotations(seed, garvin, scriptie, choices={"tijd_evaluatie": "ervaren_tijd"})
    assert there.complete and there.n_converted == there.n_codings > 1000
    back = migrate_annotations(there.annotations, scriptie, garvin)
    assert back.complete and back.merged == ()
    assert [(a.utterance_id, a.codings) for a in back.annotations] == [(a.utterance_id, a.codings) for a in seed]


def test_codebook_migrate_refuses_other_versions_and_bad_choices() -> None:
    garvin, scriptie = load_codebook("garvin2008"), load_codebook("scriptie2017")
    with pytest.raises(AnnotationError, match="made with codebook 'scriptie2017', not 'garvin2008'"):
        migrate_annotations([_annotation("u1", version="scriptie2017")], garvin, scriptie)
    with pytest.raises(AnnotationError, match="'tijd' is not a codable code of codebook 'scriptie2017'"):
        migrate_annotations([], garvin, scriptie, choices={"tijd_evaluatie": "tijd"})


def test_codebook_migrate_model_and_reader_name_the_command(tmp_path: Path) -> None:
    scriptie = load_codebook("scriptie2017")
    with pytest.raises(ModelCardMismatchError, match="codeer codebook migrate FILE --to scriptie2017"):
        training_set([_annotation("u1", Coding("analyse", "+"))], scriptie)
    first = annotation_files([seed_dir()])[0]
    with pytest.raises(AnnotationError, match=f"codeer codebook migrate {first} --to scriptie2017 --out NEW.jsonl"):
        read_annotations([first], scriptie)


def test_codebook_migrate_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    source = annotation_files([seed_dir()])[0]
    out = tmp_path / "seed-scriptie2017.jsonl"
    result = runner.invoke(cli, ["codebook", "migrate", str(source), "--to", "scriptie2017", "--out", str(out)])
    n_split = sum(1 for line in source.read_text(encoding="utf-8").splitlines() if line.strip()
                  for code in json.loads(line)["codes"] if code["code"] == "tijd_evaluatie")
    assert n_split and result.exit_code == 1  # something was not converted
    assert f"NOT CONVERTED 'tijd_evaluatie' (garvin2008): {n_split} coding(s) not converted" in result.stderr
    converted = read_annotations([out], load_codebook("scriptie2017"))  # valid in the new version
    assert converted and {a.codebook_version for a in converted} == {"scriptie2017"}

    again = runner.invoke(cli, ["codebook", "migrate", str(source), "--to", "scriptie2017", "--out", str(out)])
    assert again.exit_code == 1 and "exists" in again.output
    chosen = tmp_path / "chosen.jsonl"
    ok = runner.invoke(cli, ["codebook", "migrate", str(source), "--to", "scriptie2017", "--out", str(chosen),
                             "--choose", "tijd_evaluatie=evaluatiemomenten"])
    assert ok.exit_code == 0 and "0 annotation(s) left out" in ok.output, ok.output
    back = runner.invoke(cli, ["codebook", "migrate", str(chosen), "--to", "garvin2008", "--out",
                               str(tmp_path / "back.jsonl")])
    assert back.exit_code == 0, back.output
    garvin = load_codebook("garvin2008")  # there and back: the same records
    assert read_annotations([tmp_path / "back.jsonl"], garvin) == read_annotations([source], garvin)
    bad = runner.invoke(cli, ["codebook", "migrate", str(source), "--to", "scriptie2017", "--out",
                              str(tmp_path / "x.jsonl"), "--choose", "tijd_evaluatie"])
    assert bad.exit_code != 0 and "expected CODE=NEW" in bad.output
    same = runner.invoke(cli, ["codebook", "migrate", str(source), "--to", "garvin2008", "--out",
                               str(tmp_path / "y.jsonl")])
    assert same.exit_code == 1 and "already in codebook 'garvin2008'" in same.output
