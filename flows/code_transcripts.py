"""The main job as Prefect flows: code new transcripts, retrain when corrections came in.

Each task calls one ``pipeline`` function. The store is the record: no task result is
persisted by Prefect, and re-running after a crash continues where the data says it stopped.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from flows.config import RunConfig, cache_for, encoder_for, segmenter_for, store_for
from pipeline.records import IngestResult


def _transient(task, task_run, state) -> bool:  # type: ignore[no-untyped-def]
    """Retry a locked database or an I/O hiccup, never bad input."""
    try:
        state.result()
    except (OperationalError, OSError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 - any other failure is not transient
        return False
    return False


RETRY = {"retries": 3, "retry_delay_seconds": [1, 4, 15], "retry_condition_fn": _transient, "cache_policy": NO_CACHE}


@task(**RETRY)
def ingest_task(path: str, source: str, config: RunConfig) -> IngestResult:
    """Ingest one file (its own transaction)."""
    from pipeline.ingest import ingest_file
    from pipeline.transcripts import metadata_for

    return ingest_file(Path(path), source, store_for(config.url), segmenter_for(config.window),
                       metadata=metadata_for(Path(path), {}, None))


@task(cache_policy=NO_CACHE)
def model_task(config: RunConfig) -> str:
    """The model to code with (trains the seed model when the workspace has none)."""
    from pipeline.codebook import load_codebook
    from pipeline.errors import ModelNotFoundError
    from pipeline.models import PROJECT_MODELS, resolve_model
    from pipeline.training import SEED_DIR, TrainingConfig, seed_annotations, train_model

    dirs = [config.home / "models", PROJECT_MODELS]
    try:
        return str(resolve_model(config.model, dirs, codebook_version=config.codebook_version).path)
    except ModelNotFoundError:
        if config.model != "current" or not SEED_DIR.is_dir():
            raise
    get_run_logger().info("no model yet: training the seed model on annotations/seed")
    book = load_codebook(config.codebook_version)
    result = train_model(seed_annotations(book), book, models_dir=config.home / "models", cache=cache_for(config.home),
                         config=TrainingConfig())
    return str(result.path)


@task(**RETRY)
def classify_task(model_path: str, config: RunConfig) -> dict[str, float]:
    """Classify what this model has not classified yet; queue uncertain items for review."""
    from pipeline.codebook import load_codebook
    from pipeline.jobs import classify_pending
    from pipeline.models import load_model_folder

    loaded = load_model_folder(Path(model_path), codebook_version=config.codebook_version)
    encoder = encoder_for(loaded.card["encoder"], config.encoder_threads, config.device)
    stats = classify_pending(store_for(config.url), loaded, encoder, load_codebook(config.codebook_version),
                             cache=cache_for(config.home), batch_size=config.batch_size,
                             review_threshold=config.review_threshold)
    return asdict(stats)


@task(**RETRY)
def rate_task(model_path: str, config: RunConfig) -> list[dict[str, object]]:
    """Rate from the store, write ratings and the report; return the ratings that moved."""
    from pipeline.codebook import load_codebook
    from pipeline.jobs import previous_ratings, questionnaire_evidence_of, rate_codings, rating_changes
    from pipeline.models import load_model_folder

    loaded = load_model_folder(Path(model_path), codebook_version=config.codebook_version)
    store = store_for(config.url)
    out_dir = config.home / "reports"
    before = previous_ratings(out_dir)
    result = rate_codings(store.codings_frame(loaded.model_id), load_codebook(config.codebook_version), out_dir,
                          model_id=loaded.model_id, questionnaire=questionnaire_evidence_of(store),
                          fictional=config.fictional, region_name=config.region_name)
    return rating_changes(before, result.ratings)


@flow(name="code-transcripts", log_prints=False)
def code_transcripts(config: RunConfig) -> dict[str, object]:
    """Find new or changed files → ingest → segment → embed → classify → review queue → rate → report."""
    from pipeline.transcripts import find_sources

    logger = get_run_logger()
    store = store_for(config.url)
    run_id = store.begin_run("code-transcripts", json.loads(config.model_dump_json()))
    futures = [(path, ingest_task.submit(str(path), source, config)) for path, source in find_sources(config.folders)]
    results: list[IngestResult] = []
    for path, future in futures:
        try:
            results.append(future.result())
        except Exception as err:  # noqa: BLE001 - a task that failed after its retries fails alone
            results.append(IngestResult(str(path), "failed", error=f"{path}: {err}", reason=type(err).__name__))
    model_path = model_task(config)
    stats = classify_task(model_path, config)
    changes = rate_task(model_path, config)
    summary = {
        "run_id": run_id,
        "transcripts_new": sum(r.status == "new" for r in results),
        "transcripts_changed": sum(r.status == "changed" for r in results),
        "transcripts_unchanged": sum(r.status == "unchanged" for r in results),
        "transcripts_failed": [{"file": r.path, "reason": r.reason, "error": r.error} for r in results if r.status == "failed"],
        "utterances_embedded": stats["n_embedded"],
        "embedding_cache_hits": stats["n_cache_hits"],
        "utterances_classified": stats["n_classified"],
        "review_items_added": stats["n_review_added"],
        "ratings_changed": changes,
        "model": Path(model_path).name,
    }
    write_summary(summary, config.home / "reports")
    store.finish_run(run_id, "failed" if summary["transcripts_failed"] else "completed", summary)
    logger.info("run summary: %s", json.dumps({k: v for k, v in summary.items() if k != "ratings_changed"}))
    create_markdown_artifact(key="run-summary", markdown=summary_markdown(summary), description="codeer run summary")
    return summary


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
    lines += ["", f"**Failed files: {len(failed)}**"] + [f"- `{Path(f['file']).name}`: {f['reason']}" for f in failed]  # type: ignore[union-attr]
    changes = summary["ratings_changed"]
    lines += ["", f"**Ratings changed: {len(changes)}**"] + [  # type: ignore[arg-type]
        f"- {c['municipality']} / {c['code']}: {c['from']} → {c['to']}" for c in changes[:50]]  # type: ignore[union-attr]
    return "\n".join(lines) + "\n"


@flow(name="retrain")
def retrain(config: RunConfig, force: bool = False) -> dict[str, object]:
    """Train on seed plus reviewed annotations, evaluate, promote only if not worse."""
    from pipeline.codebook import load_codebook
    from pipeline.training import TrainingConfig, reviewed_annotations, seed_annotations, train_model

    book = load_codebook(config.codebook_version)
    records = seed_annotations(book) + reviewed_annotations(store_for(config.url), book)
    result = train_model(records, book, models_dir=config.home / "models", cache=cache_for(config.home),
                         config=TrainingConfig(), force=force)
    get_run_logger().info("%s: macro-F1 %s; %s", result.model_id, result.metrics["macro_f1"], result.reason)
    return {"model_id": result.model_id, "macro_f1": result.metrics["macro_f1"], "promoted": result.promoted,
            "reason": result.reason}


@flow(name="nightly")
def nightly(config: RunConfig) -> dict[str, object]:
    """Retrain when enough corrections arrived since the current model, then code transcripts."""
    from pipeline.models import current_model_id
    from pipeline.review import review_annotations

    models_dir = config.home / "models"
    current = current_model_id(models_dir)
    trained_at = ""
    if current and (models_dir / current / "card.json").is_file():
        trained_at = json.loads((models_dir / current / "card.json").read_text(encoding="utf-8"))["created_at"]
    new = [a for a in review_annotations(store_for(config.url)) if a.created_at > trained_at]
    retrained = retrain(config) if len(new) >= config.min_new_corrections else None
    summary = code_transcripts(config)
    summary["retrained"] = retrained
    return summary


