"""The Prefect flows (issue 7): incremental and idempotent runs under a test harness, retries
on transient failures only, the nightly deployment on a real Prefect server, and Dask."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prefect import flow, task
from sqlalchemy.exc import OperationalError

from flows.code_transcripts import (
    DEPLOYMENT_NAME,
    RETRY,
    code_transcripts,
    is_transient,
    nightly_schedule,
    run_code_transcripts,
)
from flows.config import RunConfig
from pipeline.errors import ConfigError, ModelNotFoundError, TranscriptFormatError
from pipeline.store.database import open_store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BINARY = bytes(range(256)) * 40  # what a mis-saved recording or a zip renamed to .txt looks like


def _config(home: Path, corpus: Path, model: Path, **overrides: object) -> RunConfig:
    return RunConfig(folders=[corpus], home=home, model=str(model), **overrides)


def _rows(url: str) -> dict[str, int]:
    store = open_store(url)
    try:
        return {table: store.count_rows(table) for table in ("transcripts", "utterances", "predictions", "review_items")}
    finally:
        store.close()


def _ratings(home: Path) -> list[dict[str, object]]:
    return json.loads((home / "reports" / "ratings.json").read_text(encoding="utf-8"))


def test_flows_second_run_embeds_and_classifies_nothing(prefect_harness, flow_model: Path, small_demo_corpus: Path,
                                                       tmp_path: Path) -> None:
    from prefect.artifacts import Artifact

    config = _config(tmp_path / "home", small_demo_corpus, flow_model)
    config.home.mkdir()
    # the workspace's regions file, as `codeer rate` reads it: two regions from one input
    (config.home / "regions.yaml").write_text("regions:\n  Noord: [Eschveld]\n  Zuid: [Hulsterlo]\n", encoding="utf-8")
    first = code_transcripts(config)
    assert (first["transcripts_new"], first["transcripts_unchanged"], first["transcripts_failed"]) == (3, 0, [])
    assert first["utterances_classified"] > 100 and first["utterances_embedded"] > 100
    assert first["model"] == flow_model.name and first["ratings_changed"]
    ratings, rows = _ratings(config.home), _rows(config.url)
    assert {r["municipality"] for r in ratings} >= {"Eschveld", "Hulsterlo"}
    assert {r["municipality"] for r in ratings if r["level"] == "region"} == {"Noord", "Zuid"}

    second = code_transcripts(config)
    assert (second["transcripts_new"], second["transcripts_changed"], second["transcripts_unchanged"]) == (0, 0, 3)
    assert second["utterances_embedded"] == second["embedding_cache_hits"] == second["utterances_classified"] == 0
    assert second["review_items_added"] == 0 and second["ratings_changed"] == []
    assert _ratings(config.home) == ratings
    assert _rows(config.url) == rows
    assert json.loads((config.home / "reports" / "run-summary.json").read_text(encoding="utf-8")) == second
    artifact = Artifact.get("run-summary")
    assert artifact is not None and "| transcripts_unchanged | 3 |" in str(artifact.data)


def test_flows_corrupt_file_fails_alone_and_is_named(prefect_harness, flow_model: Path, small_demo_corpus: Path,
                                                    shared_embedding_cache: Path, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    (small_demo_corpus / "interviews" / "BX.txt").write_bytes(BINARY)
    config = _config(tmp_path / "home", small_demo_corpus, flow_model, cache_dir=shared_embedding_cache)
    state = code_transcripts(config, return_state=True)
    summary = state.result()
    assert summary["transcripts_new"] == 3
    [failure] = summary["transcripts_failed"]
    assert Path(failure["file"]).name == "BX.txt"
    assert (failure["stage"], failure["reason"]) == ("ingest", "binary or undecodable file")
    assert "BX.txt" in failure["error"]
    written = json.loads((config.home / "reports" / "run-summary.json").read_text(encoding="utf-8"))
    assert written["transcripts_failed"] == [failure]
    store = open_store(config.url)
    assert sorted(t.source for t in store.list_transcripts()) == ["interviews/BE.txt", "interviews/BH.txt",
                                                                  "interviews/ME.docx"]
    assert store.pending_transcript_ids(summary["model"]) == []
    store.close()
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    failed = [run for run in task_runs if run.state.is_failed()]
    assert [run.task_key.split("-")[0] for run in failed] == ["ingest_task"]
    assert failed[0].state.message == "interviews/BX.txt: binary or undecodable file"
    assert failed[0].run_count == 1  # bad input is not retried


def test_flows_rerun_after_crash_does_not_duplicate_rows(prefect_harness, flow_model: Path, small_demo_corpus: Path,
                                                        shared_embedding_cache: Path, tmp_path: Path) -> None:
    from flows.config import run_context
    from pipeline.codebook import load_codebook
    from pipeline.coding.embed import load_encoder
    from pipeline.coding.embedding_cache import EmbeddingCache
    from pipeline.coding.jobs import classify_pending
    from pipeline.corpus.ingest import ingest_paths
    from pipeline.corpus.segment import load_segmenter

    clean = _config(tmp_path / "clean", small_demo_corpus, flow_model, cache_dir=shared_embedding_cache)
    code_transcripts(clean)
    # What a run leaves behind when it dies after ingesting every file and classifying the
    # first transcript: a 'running' run record, two transcripts without predictions.
    crashed = _config(tmp_path / "crashed", small_demo_corpus, flow_model, cache_dir=shared_embedding_cache)
    store = open_store(crashed.url)
    store.begin_run("code-transcripts", {})
    assert not ingest_paths([small_demo_corpus], store, load_segmenter(1)).failed
    loaded = run_context(crashed).model(str(flow_model))
    first, *rest = store.pending_transcript_ids(loaded.model_id)
    cache = EmbeddingCache(shared_embedding_cache / "embeddings.sqlite")
    done = classify_pending(store, loaded, load_encoder("use"), load_codebook("garvin2008"), cache=cache,
                            transcript_id=first)
    cache.close()
    assert store.pending_transcript_ids(loaded.model_id) == rest and len(rest) == 2
    store.close()

    summary = code_transcripts(crashed)
    assert (summary["transcripts_new"], summary["transcripts_unchanged"]) == (0, 3)
    assert summary["utterances_classified"] == _rows(clean.url)["utterances"] - done.n_classified
    assert _rows(crashed.url) == _rows(clean.url)
    assert _ratings(crashed.home) == _ratings(clean.home)


def test_flows_retry_transient_failures_only(prefect_harness) -> None:
    attempts: list[str] = []
    fast = {**RETRY, "retry_delay_seconds": 0, "retry_jitter_factor": None}

    @task(**fast)
    def write_while_locked() -> str:
        attempts.append("locked")
        if attempts.count("locked") < 3:
            raise OperationalError("INSERT INTO predictions ...", {}, sqlite3.OperationalError("database is locked"))
        return "written"

    @task(**fast)
    def read_bad_transcript() -> str:
        attempts.append("bad")
        raise TranscriptFormatError("BX.txt", "no respondent turns", line=1)

    @flow
    def both() -> tuple[object, object]:
        return (write_while_locked.submit().result(raise_on_failure=False),
                read_bad_transcript.submit().result(raise_on_failure=False))

    written, refused = both()
    assert written == "written" and attempts.count("locked") == 3
    assert isinstance(refused, TranscriptFormatError) and attempts.count("bad") == 1


@pytest.mark.parametrize(("error", "transient"), [
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")), True),
    (OSError(5, "Input/output error"), True),
    (TimeoutError(), True),
    (FileNotFoundError(2, "No such file"), False),
    (PermissionError(13, "Permission denied"), False),
    (ModelNotFoundError("no model"), False),  # a FileNotFoundError too, but bad input
    (TranscriptFormatError("BX.txt", "binary"), False),
    (ValueError("bad"), False),
])
def test_flows_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_flows_dask_refuses_sqlite(small_demo_corpus: Path, tmp_path: Path) -> None:
    config = _config(tmp_path / "home", small_demo_corpus, tmp_path / "model", dask_workers=2)
    with pytest.raises(ConfigError, match="cannot share a SQLite database.*postgresql"):
        run_code_transcripts(config)
    with pytest.raises(ValueError, match="not both"):
        _config(tmp_path / "home", small_demo_corpus, tmp_path / "model", dask_workers=2,
                dask_address="tcp://127.0.0.1:8786")


def test_flows_cli_run_dask_on_sqlite_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    # what 'codeer run' sets in the environment, undone after the test
    for name, value in {"PREFECT_HOME": str(tmp_path / ".prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                        "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "run", "--dask-workers", "2", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: Dask workers are separate processes" in result.output and "--db postgresql" in result.output


def test_flows_nightly_schedule_validates() -> None:
    schedule = nightly_schedule("0 2 * * *", "Europe/Amsterdam")
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "Europe/Amsterdam")
    with pytest.raises(ConfigError, match="invalid cron schedule '0 2 \\* \\*'"):
        nightly_schedule("0 2 * *", "Europe/Amsterdam")
    with pytest.raises(ConfigError, match="unknown time zone 'Europe/Lindeland'"):
        nightly_schedule("0 2 * * *", "Europe/Lindeland")


def test_flows_database_password_stays_out_of_parameters(tmp_path: Path) -> None:
    config = RunConfig(home=tmp_path, database_url="postgresql+psycopg://codeer:geheim@db/codeer")
    assert config.url == "postgresql+psycopg://codeer:geheim@db/codeer"
    assert "geheim" not in config.model_dump_json()


@pytest.mark.postgres
def test_flows_dask_cluster_gives_the_ratings_of_the_sequential_run(
        prefect_harness, flow_model: Path, small_demo_corpus: Path, shared_embedding_cache: Path, new_pg_database,
        tmp_path: Path) -> None:
    (small_demo_corpus / "interviews" / "BX.txt").write_bytes(BINARY)
    sequential = _config(tmp_path / "sequential", small_demo_corpus, flow_model, database_url=new_pg_database(),
                         cache_dir=shared_embedding_cache)
    on_dask = _config(tmp_path / "dask", small_demo_corpus, flow_model, database_url=new_pg_database(), dask_workers=2)
    expected = run_code_transcripts(sequential)
    summary = run_code_transcripts(on_dask)
    assert summary["transcripts_new"] == expected["transcripts_new"] == 3
    assert summary["utterances_classified"] == expected["utterances_classified"]
    assert summary["utterances_embedded"] > 0  # the workers embedded for themselves (own cache)
    assert [Path(f["file"]).name for f in summary["transcripts_failed"]] == ["BX.txt"]
    assert _rows(on_dask.url) == _rows(sequential.url)
    assert _ratings(on_dask.home) == _ratings(sequential.home)


# the nightly deployment on a real Prefect server ---------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(check, what: str, process: subprocess.Popen, log: Path, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what}: the process ended ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            found = check()
        except Exception:  # noqa: BLE001 - not up yet
            found = None
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: not ready after {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def _health(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
        return response.status == 200


def test_flows_nightly_deployment_runs_on_a_real_server(flow_model: Path, small_demo_corpus: Path,
                                                        shared_embedding_cache: Path, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "home"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false", "PREFECT_RUNNER_POLL_FREQUENCY": "1",
           "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("CODEER_DB", None)
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    with open(server_log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    serve = None
    try:
        _wait_for(lambda: _health(api_url), "prefect server start", server, server_log, 150)
        with open(serve_log, "wb") as out:
            serve = subprocess.Popen(
                [sys.executable, "-c", "from pipeline.cli import main; main()", "--home", str(home), "schedule",
                 "--model", str(flow_model), "--cache-dir", str(shared_embedding_cache), str(small_demo_corpus)],
                env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            def registered():  # type: ignore[no-untyped-def]
                with get_client(sync_client=True) as client:
                    return client.read_deployment_by_name(f"nightly/{DEPLOYMENT_NAME}")

            deployment = _wait_for(registered, "codeer schedule", serve, serve_log, 90)
            [schedule] = deployment.schedules
            assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
                "0 2 * * *", "Europe/Amsterdam", True)
            assert deployment.parameters["config"]["model"] == str(flow_model)
            flow_run = run_deployment(f"nightly/{DEPLOYMENT_NAME}", timeout=240, poll_interval=1)
            assert flow_run.state.is_completed(), f"{flow_run.state}\n{serve_log.read_text(errors='replace')[-3000:]}"
        store = open_store(f"sqlite:///{home / 'codeer.db'}")
        assert len(store.list_transcripts()) == 3
        assert store.pending_transcript_ids(flow_model.name) == []
        store.close()
        summary = json.loads((home / "reports" / "run-summary.json").read_text(encoding="utf-8"))
        assert (summary["transcripts_new"], summary["transcripts_failed"]) == (3, [])
        paused = subprocess.run([sys.executable, "-m", "prefect", "deployment", "schedule", "pause",
                                 f"nightly/{DEPLOYMENT_NAME}", str(schedule.id)], env=env, capture_output=True, text=True)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            assert not registered().schedules[0].active
    finally:
        for process in (serve, server):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
