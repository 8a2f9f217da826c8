"""Runs that die (issue 20): the temporary Prefect server dies with its run or is stopped by the
next one, killed runs are recorded as interrupted, and the change report compares with the
last run that got to its end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.server import PID_FILE, SERVER_MARK, _die_with_parent, stop_stale_server
from pipeline.store import open_store
from pipeline.store.runs import process_alive

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _wait_gone(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_run_history_killed_run_is_marked_interrupted(fresh_store) -> None:
    url = fresh_store.url
    started = subprocess.run(
        [sys.executable, "-c", "import sys; from pipeline.store import open_store; "
                               "print(open_store(sys.argv[1]).begin_run('code-transcripts', {}))", url],
        capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    killed = int(started.stdout.strip())
    assert {r["id"]: r["status"] for r in fresh_store.list_runs()} == {killed: "running"}
    assert fresh_store.mark_interrupted_runs() == [killed]
    mine = fresh_store.begin_run("ingest", {})  # this process is alive: its run is running
    assert {r["id"]: r["status"] for r in fresh_store.list_runs()} == {killed: "interrupted", mine: "running"}
    assert fresh_store.mark_interrupted_runs() == []
    again = subprocess.run(started.args, capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    fresh_store.begin_run("ingest", {})  # every new run first records the killed ones
    assert {r["id"]: r["status"] for r in fresh_store.list_runs()}[int(again.stdout)] == "interrupted"


def test_run_history_last_ratings_come_from_a_finished_run(fresh_store) -> None:
    assert fresh_store.last_run_ratings("code-transcripts") is None
    first = fresh_store.begin_run("code-transcripts", {})
    fresh_store.finish_run(first, "completed", {}, ratings=[{"municipality": "A", "code": "analyse", "rating": "matig"}])
    second = fresh_store.begin_run("code-transcripts", {})
    fresh_store.finish_run(second, "failed", {"error": "KeyboardInterrupt"})  # died before rating
    fresh_store.begin_run("code-transcripts", {})  # still running, or killed
    assert fresh_store.last_run_ratings("code-transcripts") == [{"municipality": "A", "code": "analyse", "rating": "matig"}]


def test_run_history_stale_temporary_server_is_stopped(tmp_path: Path) -> None:
    # a process that looks like Prefect's server (its command line carries the app's name)
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", SERVER_MARK])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (tmp_path / PID_FILE).write_text(json.dumps({"server_pid": other.pid, "owner_pid": _dead_pid()}))
        assert stop_stale_server(tmp_path) is None  # a reused pid of another program is left alone
        assert other.poll() is None and not (tmp_path / PID_FILE).exists()
        (tmp_path / PID_FILE).write_text(json.dumps({"server_pid": server.pid, "owner_pid": _dead_pid()}))
        assert stop_stale_server(tmp_path) == server.pid
        assert server.wait(timeout=30) is not None
        (tmp_path / PID_FILE).write_text(json.dumps({"server_pid": other.pid, "owner_pid": other.pid}))
        assert stop_stale_server(tmp_path) is None and other.poll() is None  # its owner still runs
    finally:
        for process in (server, other):
            process.kill()
            process.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the death signal is Linux's")
def test_run_history_server_dies_with_a_killed_run(tmp_path: Path) -> None:
    # the run: starts a child the way flows.server starts Prefect's server, then is killed -9
    script = ("import subprocess, sys, time; from flows.server import _die_with_parent; "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
              "preexec_fn=_die_with_parent()); print(child.pid, flush=True); time.sleep(120)")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    server_pid = int(run.stdout.readline())
    assert process_alive(server_pid)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert _wait_gone(server_pid)
    assert _die_with_parent() is not None


def test_run_history_change_report_ignores_the_ratings_of_a_killed_run(prefect_harness, flow_model: Path,
                                                                       small_demo_corpus: Path, tmp_path: Path) -> None:
    from flows.code_transcripts import code_transcripts
    from flows.config import RunConfig

    config = RunConfig(folders=[small_demo_corpus], home=tmp_path / "home", model=str(flow_model))
    first = code_transcripts(config)
    assert first["ratings_changed"]
    # a killed run: its row stays 'running' and it already rewrote ratings.json
    ratings_file = config.home / "reports" / "ratings.json"
    written = json.loads(ratings_file.read_text(encoding="utf-8"))
    flipped = next(row for row in written if row["rating"] in ("voldoende", "matig", "onvoldoende"))
    flipped["rating"] = "onvoldoende" if flipped["rating"] != "onvoldoende" else "voldoende"
    ratings_file.write_text(json.dumps(written), encoding="utf-8")
    store = open_store(config.url)
    killed = store.begin_run("code-transcripts", {})
    with store.transaction() as connection:
        connection.execute(store.runs.update().where(store.runs.c.id == killed).values(pid=_dead_pid()))

    second = code_transcripts(config)
    assert second["ratings_changed"] == []  # compared with the first run, not with the killed run's file
    statuses = {r["id"]: r["status"] for r in store.list_runs()}
    assert statuses[killed] == "interrupted" and statuses[second["run_id"]] == "completed"
    store.close()
