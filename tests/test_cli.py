"""The command line: exit codes, messages, listing formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli


@pytest.fixture()
def run(tmp_path: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--home", str(tmp_path / "ws"), *args], catch_exceptions=False)

    return invoke


def test_cli_ingest_mixed_folder(run, tmp_path: Path, interview_text: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "BQ.txt").write_text(interview_text, encoding="utf-8")
    (folder / "leeg.txt").write_bytes(b"")
    (folder / "binair.txt").write_bytes(bytes(range(256)) * 10)
    (folder / "alleen-vragen.txt").write_text("Onderzoeker: Hallo?\n\nOnderzoeker: Nog iemand?\n", encoding="utf-8")
    (folder / "kapot.docx").write_bytes(b"PK\x03\x04garbage")
    result = run("ingest", str(folder))
    assert result.exit_code == 1
    for name, reason in [("leeg.txt", "empty file"), ("binair.txt", "binary"), ("alleen-vragen.txt", "no respondent turns"),
                         ("kapot.docx", "corrupt document")]:
        assert any(name in line and reason in line for line in result.stderr.splitlines()), (name, result.stderr)
    assert "1 new" in result.stdout and "4 failed" in result.stdout
    rows = [json.loads(line) for line in run("utterances", "--format", "jsonl").stdout.splitlines()]
    assert rows and {"id", "transcript", "municipality", "respondent", "role", "start", "end", "text"} <= set(rows[0])
    assert {r["municipality"] for r in rows} == {"Testerveen"}
    again = run("ingest", str(folder / "BQ.txt"))
    assert again.exit_code == 0 and "1 unchanged" in again.stdout


def test_cli_ingest_table(run, tmp_path: Path) -> None:
    table = tmp_path / "u.csv"
    table.write_text("id,text,municipality,respondent,role\nu1,De werkdruk is hoog.,Testerveen,BQ,beleidsmedewerker\n"
                     "u2,We evalueren nooit.,Testerveen,BQ,beleidsmedewerker\n", encoding="utf-8")
    assert "2 utterances in 1 transcript(s): 1 new" in run("ingest-table", str(table)).stdout
    rows = [json.loads(line) for line in run("utterances", "--format", "jsonl").stdout.splitlines()]
    assert [(r["id"], r["text"]) for r in rows] == [("u1", "De werkdruk is hoog."), ("u2", "We evalueren nooit.")]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,tekst\nu1,x\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "ws"), "ingest-table", str(bad)])
    assert result.exit_code == 1 and "missing column(s) text" in result.output


def test_cli_codebook_show_and_validate(run, tmp_path: Path) -> None:
    shown = run("codebook", "show", "--version", "scriptie2017").stdout
    assert "  ervaren_tijd" in shown and "betrokkenheid_college" in shown
    bad = tmp_path / "cb.yaml"
    bad.write_text("version: x\ncodes:\n  - {id: a, kind: group, label_nl: A, label_en: A, parent: b}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["codebook", "validate", str(bad)])
    assert result.exit_code == 1
    assert "code 'a': parent 'b' does not exist" in result.output


def test_cli_every_command_has_help_and_is_documented() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    names = []
    for name, command in cli.commands.items():
        names.append(name)
        if hasattr(command, "commands"):
            names.extend(f"{name} {sub}" for sub in command.commands)
    for name in names:
        result = CliRunner().invoke(cli, [*name.split(), "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
        assert f"codeer {name}" in readme, f"'codeer {name}' is not in the README"
