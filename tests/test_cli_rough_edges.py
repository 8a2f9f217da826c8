"""Issue 21's rough edges at the command line: a mistyped --home, a busy port, a null question."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.corpus import read_table
from pipeline.store import open_store


@pytest.mark.parametrize("command", [["report"], ["rate"], ["transcripts"], ["utterances"], ["users", "list"],
                                     ["review", "--user", "anna"], ["serve-review"], ["review", "export", "x.csv"],
                                     ["export-qdpx", "x.qdpx"]])
def test_reading_commands_refuse_a_missing_workspace_and_create_nothing(tmp_path: Path, command: list[str]) -> None:
    home = tmp_path / "no" / "such" / "dir"
    result = CliRunner().invoke(cli, ["--home", str(home), *command])
    assert result.exit_code == 1, result.output
    assert f"no codeer workspace at {home}" in result.output
    assert f"codeer --home {home} ingest FOLDER" in result.output  # how to make one
    assert "Traceback" not in result.output
    assert not (tmp_path / "no").exists()


def test_reading_commands_refuse_a_folder_without_a_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "report"])
    assert result.exit_code == 1 and "has no database (codeer.db)" in result.output
    assert list(tmp_path.iterdir()) == []


def test_serve_review_on_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'codeer.db'}").close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["--home", str(tmp_path), "serve-review", "--port", str(port)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: port {port} on 127.0.0.1 is in use")
    assert "review page on" not in result.output and "--port" in lines[0]


def test_jsonl_rows_with_and_without_question_read_as_none_not_nan(tmp_path: Path) -> None:
    table = tmp_path / "in.jsonl"
    table.write_text("\n".join([json.dumps({"id": "a", "text": "Een zin.", "question": "Een vraag?"}),
                                json.dumps({"id": "b", "text": "Nog een zin."}),
                                json.dumps({"id": "c", "text": "Derde zin.", "question": None})]) + "\n",
                     encoding="utf-8")
    frame = read_table(table)
    assert frame["question"].tolist() == ["Een vraag?", None, None]


def test_report_refuses_a_review_url_that_is_no_web_address(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'codeer.db'}").close()
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "report", "--review-url", "localhost:8000"])
    assert result.exit_code == 2 and "http://localhost:8000" in result.output
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "report"], env={"CODEER_REVIEW_URL": "nergens"})
    assert result.exit_code == 1 and "invalid setting" in result.output and "review_url" in result.output
    assert not (tmp_path / "reports").exists()


def test_table_roles_are_read_loosely_and_unknown_ones_count_as_other(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a researcher's role column ("Manager", "wethouder", empty) must never stop `codeer rate --utterances`
    from pipeline.corpus import table_roles

    table = tmp_path / "rows.jsonl"
    rows = [("Manager", "a"), (" beleidsmedewerker ", "b"), ("Teamleider", "c"), ("wethouder", "d"), ("wethouder", "e"),
            (None, "f"), ("", "g")]
    table.write_text("".join(json.dumps({"id": i, "text": "x", "municipality": "M", "respondent": "R", "role": r}) + "\n"
                             for r, i in rows), encoding="utf-8")
    with caplog.at_level("WARNING"):
        frame = table_roles(read_table(table), table)
    assert frame["role"].tolist() == ["manager", "beleidsmedewerker", "manager", "other", "other", "other", "other"]
    assert "'wethouder' (2 rows) counted as 'other'" in caplog.text and "Manager" not in caplog.text
