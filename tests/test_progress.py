"""pipeline.progress: a bar on a terminal, plain lines (no carriage returns) in a log (issue 21)."""

from __future__ import annotations

import io

import pytest

from pipeline.progress import Progress, progress, stage


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_writes_plain_lines_per_tenth() -> None:
    log = io.StringIO()
    assert sum(progress(range(1000), "classify", unit="utt", stream=log)) == sum(range(1000))
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "classify: started (1000 utt)"
    assert lines[1] == "classify: 100/1000 utt (10%)"
    assert lines[-2] == "classify: 900/1000 utt (90%)"
    assert lines[-1].startswith("classify: done, 1000 utt in ")
    assert len(lines) == 11


def test_progress_on_a_terminal_draws_a_bar() -> None:
    terminal = _Terminal()
    with Progress("embed", 50, "text", stream=terminal) as bar:
        for _ in range(50):
            bar.update()
    assert "\r" in terminal.getvalue() and "embed" in terminal.getvalue()


def test_progress_disabled_says_nothing_and_counts() -> None:
    log = io.StringIO()
    with Progress("train", 3, enabled=False, stream=log) as bar:
        bar.update(3)
    assert log.getvalue() == "" and bar.n == 3


def test_stage_reports_start_end_and_a_failure() -> None:
    log = io.StringIO()
    with stage("run: ratings and report", stream=log):
        pass
    with pytest.raises(KeyError), stage("run: model", stream=log):
        raise KeyError("x")
    lines = log.getvalue().splitlines()
    assert lines[0] == "run: ratings and report ..." and lines[1].startswith("run: ratings and report: done in ")
    assert lines[2] == "run: model ..." and lines[3].startswith("run: model: stopped after ")
