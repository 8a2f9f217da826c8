"""The main job as Prefect flows: code new transcripts, retrain when corrections came in.

Each task calls one ``pipeline`` function. The store is the record: no task result is
persisted by Prefect, and re-running after a crash continues where the data says it stopped.
"""

# No "from __future__ import annotations": Prefect resolves the flow parameter types of a
# served deployment from this module, and needs RunConfig as a class, not a string.
import json
import os
from contextlib import closing
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from sqlalchemy.exc import OperationalError

from flows.config import RunConfig, run_context, task_runner_for
from pipeline.errors import CodeerError
from pipeline.records import IngestResult

# A locked or lost database and I/O hiccups pass; bad input, a missing file or a missing
# permission do not, however often they are retried.
TRANSIENT_ERRORS = (OperationalError, TimeoutError, ConnectionError, OSError)
PERMANENT_ERRORS = (CodeerError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_transient(error: object) -> bool:
    """Whether a task that failed with ``error`` is worth another try."""
    return isinstance(error, TRANSIENT_ERRORS) and not isinstance(error, PERMANENT_ERRORS)


def retry_transient(task, task_run, state) -> bool:  # type: ignore[no-untyped-def]
    """Prefect ``retry_condition_fn``: retry transient failures only (see :func:`is_transient`)."""
    return is_transient(state.result(raise_on_failure=False))


# Results travel in memory between tasks and are never persisted (pickled): the store is the record.
RETRY = {"retries": 3, "retry_delay_seconds": [2, 10, 30], "retry_jitter_factor": 0.5,
         "retry_condition_fn": retry_transient, "cache_policy": NO_CACHE, "persist_result": False}


@task(**RETRY)
def ingest_task(path: str, source: str, config: RunConfig) -> IngestResult:
    """Ingest one file (its own transaction); a file that cannot be read fails this task alone."""
    from pipeline.corpus import ingest_file, metadata_for, metadata_places

    sidecars: dict = {}
    try:
        metadata = metadata_for(Path(path), sidecars, None)
    except CodeerError as err:  # a broken metadata.csv fails its files like broken transcripts
        result = IngestResult(path, "failed", error=str(err), reason=getattr(err, "reason", type(err).__name__))
    else:
        context = run_context(config)
        result = ingest_file(Path(path), source, context.store, context.segmenter(), metadata=metadata,
                             deidentifier=context.deidentifier(), pseudonyms=context.pseudonyms(),
                             allow=[*config.privacy_allow, *metadata_places(Path(path), sidecars)])
    if result.status == "failed":
        return Failed(message=f"{source}: {result.reason}", data=result)  # type: ignore[return-value]
    return result


@task(cache_policy=NO_CACHE, persist_result=False)
def model_task(config: RunConfig) -> str:
    """The model to code with (trains the seed model when the workspace has none)."""
    from pipeline.coding import TrainingConfig, load_or_train_current

    context = run_context(config)
    loaded, _ = load_or_train_current(
        config.model, context.paths.models_dir, codebook_version=config.codebook_version,
        config=TrainingConfig(encoder=config.encoder), open_cache=context.open_cache,
        before_training=lambda: get_run_logger().info("no model yet: training the seed model on the shipped seed annotations"))
    return str(loaded.path)


@task(cache_policy=NO_CACHE, persist_result=False)
def pending_task(model_path: str, config: RunConfig) -> list[str]:
    """The transcripts with utterances this model has not classified yet."""
    context = run_context(config)
    return context.store.pending_transcript_ids(context.model(model_path).model_id)


@task(**RETRY)
def classify_task(model_path: str, transcript_id: str, config: RunConfig) -> dict[str, float]:
    """Classify what this model has not classified yet in one transcript; queue uncertain items for review."""
    from dataclasses import asdict

    from pipeline.codebook import load_codebook
    from pipeline.coding import classify_pending

    context = run_context(config)
    loaded = context.model(model_path)
    encoder = context.encoder(loaded)
    with closing(context.open_cache()) as cache:
        stats = classify_pending(context.store, loaded, encoder, load_codebook(config.codebook_version),
                                 cache=cache, batch_size=config.batch_size, review_threshold=config.review_threshold,
                                 transcript_id=transcript_id)
    return asdict(stats)


@task(**RETRY)
def rate_task(model_path: str, config: RunConfig) -> list[dict[str, object]]:
    """Rate from the store, write ratings and the report; return the ratings that moved."""
    from pipeline.codebook import load_codebook
    from pipeline.rating import previous_ratings, questionnaire_evidence_of, rating_changes
    from pipeline.report import rate_store

    context = run_context(config)
    loaded, store, out_dir = context.model(model_path), context.store, context.paths.reports_dir
    before = previous_ratings(out_dir)
    result = rate_store(store, load_codebook(config.codebook_version), out_dir, model_id=loaded.model_id,
                        questionnaire=questionnaire_evidence_of(store), fictional=config.fictional,
                        region_name=config.region_name)
    return rating_changes(before, result.ratings)


def _failure(outcome: object, file: str, stage: str) -> dict[str, object]:
    """The summary entry of a failed task: a failed ingest result or the exception."""
    if isinstance(outcome, IngestResult):
        return {"file": file, "stage": stage, "reason": outcome.reason, "error": outcome.error}
    return {"file": file, "stage": stage, "reason": getattr(outcome, "reason", type(outcome).__name__),
            "error": str(outcome)}


@flow(name="code-transcripts", task_runner=ThreadPoolTaskRunner(max_workers=1), persist_result=False)
def code_transcripts(config: RunConfig) -> dict[str, object]:
    """Find new or changed files → ingest → segment → embed → classify → review queue → rate → report.

    Ingest and classification run one task per transcript (on Dask workers with
    :func:`run_code_transcripts`); a transcript that fails is reported and the rest go on.
    """
    from pipeline.corpus import find_sources

    logger = get_run_logger()
    context = run_context(config)
    store = context.store
    run_id = store.begin_run("code-transcripts", json.loads(config.model_dump_json()))
    try:
        summary = _code_transcripts(config, find_sources(config.folders))
    except BaseException as err:
        store.finish_run(run_id, "failed", {"error": type(err).__name__})
        raise
    summary = {"run_id": run_id, **summary}
    write_summary(summary, context.paths.reports_dir)
    store.finish_run(run_id, "failed" if summary["transcripts_failed"] else "completed", summary)
    logger.info("run summary: %s", json.dumps({k: v for k, v in summary.items() if k != "ratings_changed"}))
    create_markdown_artifact(key="run-summary", markdown=summary_markdown(summary), description="codeer run summary")
    return summary


def _code_transcripts(config: RunConfig, sources: list[tuple[Path, str]]) -> dict[str, object]:
    context = run_context(config)
    futures = [(path, ingest_task.submit(str(path), source, config)) for path, source in sources]
    ingested: list[IngestResult] = []
    failed: list[dict[str, object]] = []
    for path, future in futures:
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, IngestResult) and outcome.status != "failed":
            ingested.append(outcome)
        else:
            failed.append(_failure(outcome, str(path), "ingest"))
    model_path = model_task(config)
    pending = pending_task(model_path, config)
    classified = [(transcript_id, classify_task.submit(model_path, transcript_id, config)) for transcript_id in pending]
    totals = {"n_embedded": 0, "n_cache_hits": 0, "n_classified": 0, "n_review_added": 0}
    sources_by_id = None
    for transcript_id, future in classified:
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, dict):
            for key in totals:
                totals[key] += int(outcome[key])
            continue
        if sources_by_id is None:
            sources_by_id = {t.transcript_id: t.source for t in context.store.list_transcripts()}
        failed.append(_failure(outcome, sources_by_id.get(transcript_id, transcript_id), "classify"))
    changes = rate_task(model_path, config)
    return {
        "transcripts_new": sum(r.status == "new" for r in ingested),
        "transcripts_changed": sum(r.status == "changed" for r in ingested),
        "transcripts_unchanged": sum(r.status == "unchanged" for r in ingested),
        "transcripts_failed": failed,
        "utterances_embedded": totals["n_embedded"],
        "embedding_cache_hits": totals["n_cache_hits"],
        "utterances_classified": totals["n_classified"],
        "review_items_added": totals["n_review_added"],
        "ratings_changed": changes,
        "model": context.model(model_path).model_id,
    }


def run_code_transcripts(config: RunConfig) -> dict[str, object]:
    """Run :func:`code_transcripts` with the task runner ``config`` asks for: in-process, a
    local Dask cluster (``dask_workers``) or an existing one (``dask_address``).

    Raises :class:`~pipeline.errors.ConfigError` for Dask on a SQLite store.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from pydantic import SecretStr

    # pin the URL where the run starts: workers elsewhere need not have CODEER_DB set
    config = config.model_copy(update={"database_url": SecretStr(config.url)})
    run = code_transcripts.with_options(task_runner=task_runner_for(config))
    if not config.uses_dask or PREFECT_API_URL.value():
        return run(config)
    # Without a server each local worker process would start a temporary Prefect server of its
    # own on the same database: start this process's one now and hand its address to the workers.
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        return run(config)


def write_summary(summary: dict[str, object], out_dir: Path) -> Path:
    """Write ``run-summary.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "run-summary.json"
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def summary_markdown(summary: dict[str, object]) -> str:
    """The run summary as a Markdown artifact."""
    lines = ["# codeer run", "", "| | |", "|---|---|"]
    for key in ("transcripts_new", "transcripts_changed", "transcripts_unchanged", "utterances_embedded",
                "embedding_cache_hits", "utterances_classified", "review_items_added", "model"):
        lines.append(f"| {key} | {summary[key]} |")
    failed = summary["transcripts_failed"]
    lines += ["", f"**Failed: {len(failed)}**"] + [  # type: ignore[arg-type]
        f"- `{Path(f['file']).name}` ({f['stage']}): {f['reason']}" for f in failed]  # type: ignore[index,union-attr]
    changes = summary["ratings_changed"]
    lines += ["", f"**Ratings changed: {len(changes)}**"] + [  # type: ignore[arg-type]
        f"- {c['municipality']} / {c['code']}: {c['from']} → {c['to']}" for c in changes[:50]]  # type: ignore[index,union-attr]
    return "\n".join(lines) + "\n"


@flow(name="retrain", persist_result=False)
def retrain(config: RunConfig, force: bool = False) -> dict[str, object]:
    """Train on seed plus reviewed annotations, evaluate, promote only if not worse."""
    from pipeline.codebook import load_codebook
    from pipeline.coding import TrainingConfig, reviewed_annotations, seed_annotations, train_model

    context = run_context(config)
    book = load_codebook(config.codebook_version)
    records = seed_annotations(book) + reviewed_annotations(context.store, book)
    with closing(context.open_cache()) as cache:
        result = train_model(records, book, models_dir=context.paths.models_dir, cache=cache,
                             config=TrainingConfig(encoder=config.encoder), force=force)
    get_run_logger().info("%s: macro-F1 %s; %s", result.model_id, result.metrics["macro_f1"], result.reason)
    return {"model_id": result.model_id, "macro_f1": result.metrics["macro_f1"], "promoted": result.promoted,
            "reason": result.reason}


@flow(name="nightly", persist_result=False)
def nightly(config: RunConfig) -> dict[str, object]:
    """Retrain when enough corrections arrived since the current model, then code transcripts."""
    from pipeline.coding import n_new_corrections

    context = run_context(config)
    n_new = n_new_corrections(context.store, context.paths.models_dir)
    get_run_logger().info("%d review correction(s) since the current model (retrain from %d)", n_new,
                          config.min_new_corrections)
    retrained = retrain(config) if n_new >= config.min_new_corrections else None
    summary = run_code_transcripts(config)
    summary["retrained"] = retrained
    return summary


DEPLOYMENT_NAME = "codeer-nightly"


def nightly_schedule(cron: str, timezone: str):  # type: ignore[no-untyped-def]
    """A Prefect cron schedule; raises :class:`~pipeline.errors.ConfigError` for a bad cron
    string or an unknown time zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from prefect.schedules import Cron

    from pipeline.errors import ConfigError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"unknown time zone {timezone!r}: expected an IANA name such as 'Europe/Amsterdam'.") from err
    try:
        return Cron(cron, timezone=timezone)
    except ValueError as err:
        raise ConfigError(f"invalid cron schedule {cron!r}: expected five fields 'minute hour day month weekday', "
                          "e.g. '0 2 * * *' for 02:00 every night.") from err


def serve_nightly(config: RunConfig, *, cron: str = "0 2 * * *", timezone: str = "Europe/Amsterdam",
                  name: str = DEPLOYMENT_NAME) -> None:
    """Register the ``nightly`` deployment with a cron schedule on the Prefect server at
    ``PREFECT_API_URL`` and serve it: runs start in child processes until this one is
    stopped (the schedule is then paused).

    The database URL is not a deployment parameter (parameters are visible in the Prefect
    UI): the served runs read ``CODEER_DB`` from this process's environment.
    """
    schedule = nightly_schedule(cron, timezone)
    if config.database_url is not None:
        os.environ["CODEER_DB"] = config.database_url.get_secret_value()  # inherited by the served runs
    parameters = {"config": config.model_dump(mode="json", exclude={"database_url"})}
    nightly.serve(name=name, schedule=schedule, parameters=parameters, limit=1,
                  description="codeer: retrain when corrections came in, then code new transcripts")
