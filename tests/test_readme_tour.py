"""The README's five-minute tour, as a fresh clone runs it (issue 21): every quick command of the
tour block, in a scratch folder, with the packaged model (no training)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SLOW = ("codeer run", "codeer train", "codeer evaluate")  # minutes each: make demo and the flow tests cover them


def _tour() -> tuple[dict[str, str], list[str]]:
    """The tour block's environment and its codeer command lines, comments stripped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Five-minute tour\n\n```\n(.*?)```", readme, flags=re.DOTALL)
    assert block, "README.md has no tour block"
    env, commands = {}, []
    for line in block.group(1).splitlines():
        line = line.split("  #", 1)[0].strip()
        if line.startswith("export "):
            name, value = line.removeprefix("export ").split("=", 1)
            env[name] = value
        elif line.startswith("codeer "):
            commands.append(line)
        else:
            assert line in ("", ". .venv/bin/activate"), f"unexpected tour line {line!r}"
    return env, commands


def test_readme_tour_commands_run_on_a_fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, commands = _tour()
    assert env == {"CODEER_HOME": "tour"}
    assert [c for c in commands if c.startswith(SLOW)] == [
        "codeer run data/demo --fictional", "codeer train", "codeer evaluate"]
    for name in ("data", "pipeline"):  # the clone's files, read where the tour names them
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs = {}
    for line in commands:
        if line.startswith(SLOW):
            continue
        command, _, pipe = line.partition("|")
        result = runner.invoke(cli, shlex.split(command)[1:], env={"CODEER_HOME": str(tmp_path / "tour")})
        assert result.exit_code == 0, f"{line}: {result.output}"
        output = result.output.splitlines()
        if pipe.strip():
            assert pipe.strip() == "head -3"
            output = output[:3]
        outputs[shlex.split(command)[1]] = output

    # what the tour's comments promise
    stored = next(line for line in outputs["ingest"] if "file(s)" in line)
    assert stored.startswith("28 file(s): 28 new")  # 17 interviews + 11 documents
    metadata = (ROOT / "data" / "demo" / "metadata.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert sum(row.endswith(",document") for row in metadata) == 11 and len(metadata) == 28
    assert all("question" in json.loads(row) for row in outputs["utterances"])
    coded = [json.loads(row) for row in (tmp_path / "uit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in coded] == ["z1", "z2", "z3", "z4"]
    assert coded[1]["question"] is None and coded[2]["question"] is None  # no question is simply none
    reports = tmp_path / "tour" / "reports"
    page = (reports / "rapport.html").read_text(encoding="utf-8")
    assert "van het bewijs is door een mens gecodeerd of gecontroleerd" in page
    assert (reports / "evaluatie.html").is_file()
