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
from typing import Any

from prefect import Task, flow, get_run_logger, task
from prefect.client.schemas.objects import TaskRun
from prefect.client.schemas.objects import State
from prefect.schedules import Schedule
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
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


def retry_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry transient failures only (see :func:`is_transient`)."""
    return is_transient(state.result(raise_on_failure=False))


RUN_KIND = "code-transcripts"

# Results travel in memory between tasks and are never persisted (pickled): the store is the record.
RETRY: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [2, 10, 30], "retry_jitter_factor": 0.5,
         "retry_condition_fn": retry_transient, "cache_policy": NO_CACHE, "persist_result": False}


@task(**RETRY)
def ingest_task(path: str, source: str, config: RunConfig) -> IngestResult | State[IngestResult]:
    """Ingest one file (its own transaction); a file that cannot be read fails this task alone."""
    from pipeline.corpus import SourceMetadata, ingest_file, metadata_for, metadata_places

    sidecars: dict[Path, dict[str, SourceMetadata]] = {}
    try:
        metadata = metadata_for(Path(path), sidecars, None)
    except CodeerError as err:  # a broken metadata.csv fails its files like broken transcripts
        result = IngestResult(path, "failed", error=str(err), reason=getattr(err, "reason", type(err).__name__))
    else:
        context = run_context(config)
        result = ingest_file(Path(path), source, context.store, context.segmenter(), metadata=metadata,
                             limits=config.input_limits,
                             deidentifier=context.deidentifier(), pseudonyms=context.pseudonyms(),
                             allow=[*config.privacy_allow, *metadata_places(Path(path), sidecars)])
    if result.status == "failed":
        # a failed state fails this task alone and keeps the result for the summary (Prefect's idiom)
        return Failed(message=f"{source}: {result.reason}", data=result)
    if result.note:  # e.g. a PDF read as an interview, and why (no text, no names)
        get_run_logger().info("%s: %s", source, result.note)
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
def plan_review_task(model_path: str, config: RunConfig) -> dict[str, object]:
    """Choose tonight's review queue: the budget, the items that can change a verdict first, diverse batches."""
    from pipeline.codebook import load_codebook
    from pipeline.rating import questionnaire_evidence_of, store_correction_effects
    from pipeline.review import plan_review_queue

    context = run_context(config)
    loaded, store = context.model(model_path), context.store
    effects = store_correction_effects(store, load_codebook(config.codebook_version), loaded.model_id,
                                       questionnaire=questionnaire_evidence_of(store))
    plan = plan_review_queue(store, effects, budget=config.review_budget, batch_size=config.review_batch_size)
    return {"budget": plan.budget, "handed_out": plan.n_planned, "waiting": plan.n_waiting,
            "batches": len(plan.batches), "first_batch": plan.batches[0].effect if plan.batches else ""}


@task(**RETRY)
def rate_task(model_path: str, config: RunConfig) -> dict[str, list[dict[str, Any]]]:
    """Rate from the store, write ratings and the report; return the ratings (``ratings``:
    municipality, code, rating) and those that moved since the last run that got to its end
    (``changes``), never since a ``ratings.json`` that a killed run left (issue 20)."""
    from pipeline.codebook import load_codebook
    from pipeline.rating import previous_ratings, questionnaire_evidence_of, rating_changes, read_regions
    from pipeline.report import rate_store

    context = run_context(config)
    loaded, store, out_dir = context.model(model_path), context.store, context.paths.reports_dir
    before = store.last_run_ratings(RUN_KIND)
    if before is None:  # a workspace from before migration 0006: its ratings.json is all there is
        before = previous_ratings(out_dir)
    regions_file = context.paths.regions_file  # the same workspace file `codeer rate` reads
    result = rate_store(store, load_codebook(config.codebook_version), out_dir, model_id=loaded.model_id,
                        model_card=loaded.card,
                        questionnaire=questionnaire_evidence_of(store), fictional=config.fictional,
                        region_name=config.region_name, review_url=config.review_url,
                        regions=read_regions(regions_file) if regions_file is not None else None)
    ratings = [{"municipality": r.municipality, "code": r.code, "rating": r.rating} for r in result.ratings]
    return {"ratings": ratings, "changes": rating_changes(before, result.ratings)}


def _failure(outcome: object, file: str, stage: str) -> dict[str, Any]:
    """The summary entry of a failed task: a failed ingest result or the exception."""
    if isinstance(outcome, IngestResult):
        return {"file": file, "stage": stage, "reason": outcome.reason, "error": outcome.error}
    return {"file": file, "stage": stage, "reason": getattr(outcome, "reason", type(outcome).__name__),
            "error": str(outcome)}


# one task at a time unless run_code_transcripts picks Dask (see flows.config.task_runner_for)
SEQUENTIAL: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=1)


@flow(name="code-transcripts", task_runner=SEQUENTIAL, persist_result=False)
def code_transcripts(config: RunConfig) -> dict[str, Any]:
    """Find new or changed files → ingest → segment → embed → classify → review queue → rate → report.

    Ingest and classification run one task per transcript (on Dask workers with
    :func:`run_code_transcripts`); a transcript that fails is reported and the rest go on.
    """
    from pipeline.corpus import find_sources

    logger = get_run_logger()
    context = run_context(config)
    store = context.store
    interrupted = store.mark_interrupted_runs()
    if interrupted:
        logger.warning("run(s) %s ended without finishing (killed?); recorded as interrupted",
                       ", ".join(map(str, interrupted)))
    run_id = store.begin_run(RUN_KIND, json.loads(config.model_dump_json()))
    try:
        summary = _code_transcripts(config, find_sources(config.folders))
    except BaseException as err:
        store.finish_run(run_id, "failed", {"error": type(err).__name__})
        raise
    ratings = summary.pop("ratings")
    summary = {"run_id": run_id, **summary, "files_skipped": _skipped(config.folders)}
    write_summary(summary, context.paths.reports_dir)
    store.finish_run(run_id, "failed" if summary["transcripts_failed"] else "completed", summary,
                     ratings=ratings)
    logger.info("run summary: %s", json.dumps({k: v for k, v in summary.items() if k != "ratings_changed"}))
    create_markdown_artifact(key="run-summary", markdown=summary_markdown(summary), description="codeer run summary")
    return summary


def _code_transcripts(config: RunConfig, sources: list[tuple[Path, str]]) -> dict[str, Any]:
    from pipeline.progress import progress, stage

    context = run_context(config)
    shown = config.show_progress
    futures = [(path, ingest_task.submit(str(path), source, config)) for path, source in sources]
    ingested: list[IngestResult] = []
    failed: list[dict[str, Any]] = []
    for path, future in progress(futures, "run: ingest", unit="file", enabled=shown):
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, IngestResult) and outcome.status != "failed":
            ingested.append(outcome)
        else:
            failed.append(_failure(outcome, str(path), "ingest"))
    with stage("run: model", enabled=shown):
        model_path = model_task(config)
        pending = pending_task(model_path, config)
    classified = [(transcript_id, classify_task.submit(model_path, transcript_id, config)) for transcript_id in pending]
    totals = {"n_embedded": 0, "n_cache_hits": 0, "n_classified": 0, "n_review_added": 0}
    sources_by_id = None
    for transcript_id, classifying in progress(classified, "run: classify", unit="transcript", enabled=shown):
        result = classifying.result(raise_on_failure=False)
        if isinstance(result, dict):
            for key in totals:
                totals[key] += int(result[key])
            continue
        if sources_by_id is None:
            sources_by_id = {t.transcript_id: t.source for t in context.store.list_transcripts()}
        failed.append(_failure(result, sources_by_id.get(transcript_id, transcript_id), "classify"))
    with stage("run: review queue", enabled=shown):
        queue = plan_review_task(model_path, config)
    with stage("run: ratings and report", enabled=shown):
        rated = rate_task(model_path, config)
    return {
        "transcripts_new": sum(r.status == "new" for r in ingested),
        "transcripts_changed": sum(r.status == "changed" for r in ingested),
        "transcripts_unchanged": sum(r.status == "unchanged" for r in ingested),
        "transcripts_renamed": [{"file": r.path, "note": r.reason} for r in ingested if r.status == "renamed"],
        "transcripts_duplicate": [{"file": r.path, "note": r.reason} for r in ingested if r.status == "duplicate"],
        "transcripts_failed": failed,
        "utterances_embedded": totals["n_embedded"],
        "embedding_cache_hits": totals["n_cache_hits"],
        "utterances_classified": totals["n_classified"],
        "review_items_added": totals["n_review_added"],
        "review_queue": queue,
        "ratings_changed": rated["changes"],
        "ratings": rated["ratings"],
        "model": context.model(model_path).model_id,
    }


def _skipped(folders: list[Path]) -> list[dict[str, str]]:
    """Hidden files and folders and Office lock files the run did not read (issue 20)."""
    from pipeline.corpus import find_skipped

    return [{"file": str(path), "reason": why} for path, why in find_skipped(folders)]


def run_code_transcripts(config: RunConfig) -> dict[str, Any]:
    """Run :func:`code_transcripts` with the task runner ``config`` asks for: in-process, a
    local Dask cluster (``dask_workers``) or an existing one (``dask_address``). Without a
    configured Prefect server, on a temporary one that dies with this process (:mod:`flows.server`).

    Raises :class:`~pipeline.errors.ConfigError` for Dask on a SQLite store.
    """
    from prefect.settings import PREFECT_API_URL
    from pydantic import SecretStr

    from flows.server import temporary_server

    # pin the URL where the run starts: workers elsewhere need not have CODEER_DB set
    config = config.model_copy(update={"database_url": SecretStr(config.url)})
    run = code_transcripts.with_options(task_runner=task_runner_for(config))
    if PREFECT_API_URL.value():
        return run(config)
    # Without a server Prefect would start a temporary one that outlives a killed run, and each
    # Dask worker one of its own on the same database: start one bound to this process and hand
    # its address to the workers (issue 20).
    with temporary_server(config.paths.prefect_home):
        return run(config)


def write_summary(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write ``run-summary.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "run-summary.json"
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run summary as a Markdown artifact."""
    lines = ["# codeer run", "", "| | |", "|---|---|"]
    for key in ("transcripts_new", "transcripts_changed", "transcripts_unchanged", "utterances_embedded",
                "embedding_cache_hits", "utterances_classified", "review_items_added", "model"):
        lines.append(f"| {key} | {summary[key]} |")
    queue = summary.get("review_queue")
    if isinstance(queue, dict):
        lines.append(f"| review queue tonight | {queue['handed_out']} of budget {queue['budget']} "
                     f"({queue['waiting']} waiting) |")
    failed = summary["transcripts_failed"]
    lines += ["", f"**Failed: {len(failed)}**"] + [
        f"- `{Path(f['file']).name}` ({f['stage']}): {f['reason']}" for f in failed]
    changes = summary["ratings_changed"]
    lines += ["", f"**Ratings changed: {len(changes)}**"] + [
        f"- {c['municipality']} / {c['code']}: {c['from']} → {c['to']}" for c in changes[:50]]
    return "\n".join(lines) + "\n"


@flow(name="retrain", persist_result=False)
def retrain(config: RunConfig, force: bool = False) -> dict[str, Any]:
    """Train a challenger on seed plus reviewed annotations; it replaces the champion only when
    it is not worse on the frozen held-out set (:mod:`pipeline.coding.promotion`). The decision,
    both scores and the reason go to the run log (the ``runs`` table) and the model card."""
    from pipeline.codebook import load_codebook
    from pipeline.coding import TrainingConfig, reviewed_annotations, seed_annotations, train_model

    context = run_context(config)
    book = load_codebook(config.codebook_version)
    run_id = context.store.begin_run("retrain", json.loads(config.model_dump_json()))
    try:
        records = seed_annotations(book) + reviewed_annotations(context.store, book)
        with closing(context.open_cache()) as cache:
            result = train_model(records, book, models_dir=context.paths.models_dir, cache=cache,
                                 config=TrainingConfig(encoder=config.encoder), force=force)
    except BaseException as err:
        context.store.finish_run(run_id, "failed", {"error": type(err).__name__})
        raise
    promotion = result.decision.to_json() if result.decision is not None else None
    summary = {"run_id": run_id, "model_id": result.model_id, "macro_f1": result.metrics["macro_f1"],
               "promoted": result.promoted, "reason": result.reason, "promotion": promotion}
    context.store.finish_run(run_id, "completed", summary)
    get_run_logger().info("%s: %s", result.model_id, result.reason)
    return summary


@flow(name="nightly", persist_result=False)
def nightly(config: RunConfig) -> dict[str, Any]:
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


def nightly_schedule(cron: str, timezone: str) -> Schedule:
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
