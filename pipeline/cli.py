"""The ``codeer`` command line: parse options, call one library function, report."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from pipeline import __version__
from pipeline.config import Settings
from pipeline.errors import CodeerError
from pipeline.records import Speaker

logger = logging.getLogger("pipeline")


class Context:
    """Settings and lazily opened resources shared by the commands of one invocation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store = None

    @property
    def store(self):  # type: ignore[no-untyped-def]
        if self._store is None:
            from pipeline.store import open_store

            self.settings.home.mkdir(parents=True, exist_ok=True)
            self._store = open_store(self.settings.database_url)
        return self._store


def friendly(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a :class:`CodeerError` into ``Error: ...`` and exit status 1."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CodeerError as err:
            raise click.ClickException(str(err)) from err

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codeer")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="CODEER_HOME",
              help="Workspace folder (codeer.db, models/, reports/, cache/). Default: the current folder.")
@click.option("--db", envvar="CODEER_DB", help="SQLAlchemy database URL, e.g. postgresql+psycopg://user@host/db.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, db: str | None, verbose: int) -> None:
    """codeer codes Dutch interview transcripts against a codebook of learning incentives.

    Typical session: ingest transcripts, import seed annotations, train, classify, rate.
    Run 'codeer COMMAND --help' for the options of a command.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    if db:
        overrides["db"] = db
    try:
        settings = Settings(**overrides)
    except Exception as err:  # pydantic.ValidationError: show field, value and rule
        raise click.ClickException(f"invalid setting: {err}") from err
    ctx.obj = Context(settings)


def _parse_speakers(values: tuple[str, ...]) -> dict[str, Speaker]:
    aliases: dict[str, Speaker] = {}
    for value in values:
        label, sep, side = value.partition("=")
        if not sep or side.strip().lower() not in ("interviewer", "respondent"):
            raise click.BadParameter(f"{value!r}: use LABEL=interviewer or LABEL=respondent", param_hint="--speaker")
        aliases[label.strip()] = Speaker(side.strip().lower())
    return aliases


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="metadata.csv (file,municipality,respondent,role); default: one found beside the files.")
@click.option("--speaker", "speakers", multiple=True, metavar="LABEL=SIDE",
              help="Map an unknown speaker label, e.g. --speaker 'Jan=respondent'. Repeatable.")
@click.option("--window", type=click.IntRange(1, 10), default=None, help="Sentences per utterance (default 1).")
@click.pass_obj
@friendly
def ingest(obj: Context, paths: tuple[Path, ...], metadata: Path | None, speakers: tuple[str, ...], window: int | None) -> None:
    """Read, segment and store transcripts and documents (.txt, .docx, .pdf).

    Every readable file is stored; each file that fails is named with its reason, and the
    exit status is 1 when any file failed. Re-ingesting unchanged files changes nothing.

    Example:

        codeer ingest data/demo --metadata data/demo/metadata.csv
    """
    from pipeline.ingest import ingest_paths
    from pipeline.segment import load_segmenter

    settings = obj.settings
    segmenter = load_segmenter(window or settings.window)
    store = obj.store
    run_id = store.begin_run("ingest", settings.public_dict(), segmenter.name)
    report = ingest_paths(list(paths), store, segmenter, metadata_file=metadata,
                          speaker_aliases=_parse_speakers(speakers), run_id=run_id, show_progress=True)
    for result in report.failed:
        click.echo(f"FAILED ({result.reason}) {result.error}", err=True)
    summary = {s: report.count(s) for s in ("new", "changed", "unchanged", "failed")}
    summary["utterances"] = sum(r.n_utterances for r in report.results if r.status in ("new", "changed"))
    store.finish_run(run_id, "failed" if report.failed else "completed", summary)
    click.echo(f"{len(report.results)} file(s): {summary['new']} new, {summary['changed']} changed, "
               f"{summary['unchanged']} unchanged, {summary['failed']} failed; "
               f"{summary['utterances']} utterances stored (segmenter: {segmenter.name}).")
    if report.failed:
        sys.exit(1)


@cli.command()
@click.option("--transcript", help="Only this transcript id (or a prefix of it).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.pass_obj
@friendly
def utterances(obj: Context, transcript: str | None, fmt: str) -> None:
    """List the stored utterances of the active transcript versions.

    Example:

        codeer utterances --format jsonl > utterances.jsonl
    """
    from pipeline.tables import utterance_json

    for utterance in obj.store.iter_utterances(transcript):
        if fmt == "jsonl":
            click.echo(json.dumps(utterance_json(utterance), ensure_ascii=False))
        else:
            text = utterance.text if len(utterance.text) <= 70 else utterance.text[:67] + "..."
            click.echo(f"{utterance.utterance_id}  {utterance.municipality:12.12s} {utterance.respondent:6s} "
                       f"{utterance.start:>6}-{utterance.end:<6} {text}")


@cli.command()
@click.pass_obj
@friendly
def transcripts(obj: Context) -> None:
    """List stored transcripts: id, source, municipality, respondent, role, utterances.

    Example:

        codeer transcripts
    """
    for t in obj.store.list_transcripts():
        click.echo(f"{t.transcript_id}  {t.source:40.40s} {t.municipality:12.12s} {t.respondent:6s} "
                   f"{t.role:18s} {t.n_utterances:5d}")


@cli.command("ingest-table")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@friendly
def ingest_table(obj: Context, file: Path) -> None:
    """Store utterances that are already segmented (.csv, .jsonl, .xlsx).

    Columns: id, text, municipality, respondent, and optionally role, transcript, turn.

    Example:

        codeer ingest-table exported.csv
    """
    from pipeline.tables import read_table, transcripts_from_table

    frame = read_table(file, required=("id", "text", "municipality", "respondent"))
    counts = {"new": 0, "changed": 0, "unchanged": 0}
    n_utterances = 0
    for transcript, rows in transcripts_from_table(frame, file):
        counts[obj.store.save_transcript(transcript, rows, segmenter="table")] += 1
        n_utterances += len(rows)
    click.echo(f"{n_utterances} utterances in {sum(counts.values())} transcript(s): "
               f"{counts['new']} new, {counts['changed']} changed, {counts['unchanged']} unchanged.")


@cli.group()
def codebook() -> None:
    """Show and validate codebooks."""


@codebook.command("show")
@click.option("--version", "version", default=None, help="Codebook version (default: the configured one).")
@click.pass_obj
@friendly
def codebook_show(obj: Context, version: str | None) -> None:
    """Print the code tree; rated codes are marked with *.

    Example:

        codeer codebook show --version scriptie2017
    """
    from pipeline.codebook import load_codebook

    book = load_codebook(version or obj.settings.codebook_version)
    click.echo(f"codebook {book.version}: {book.title_en}")
    for line in book.tree_lines():
        click.echo(line)


@codebook.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@friendly
def codebook_validate(file: Path) -> None:
    """Check a codebook YAML file: unique ids, parents exist, no cycles.

    Example:

        codeer codebook validate annotations/codebook/garvin2008.yaml
    """
    from pipeline.codebook import load_codebook_file

    book = load_codebook_file(file)
    click.echo(f"{file}: valid codebook {book.version!r} with {len(book.codes)} codes "
               f"({len(book.incentives)} incentives, {len(book.context_codes)} context codes).")


@cli.command()
@click.option("--annotations", "annotation_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Annotation files or folders (default: annotations/seed). Reviewed corrections in the database are always added.")
@click.option("--encoder", default=None, help="e5, use, e5+use, minilm, a model folder or hub name (default: the configured one).")
@click.option("--semi-supervised/--no-semi-supervised", default=False, show_default=True,
              help="Self-training on the stored utterances that carry no annotation.")
@click.option("--force", is_flag=True, help="Make the new model current even if it scores worse.")
@click.pass_obj
@friendly
def train(obj: Context, annotation_paths: tuple[Path, ...], encoder: str | None, semi_supervised: bool, force: bool) -> None:
    """Train a model on the seed annotations plus reviewed corrections.

    The model is saved in models/<id>/ with its card and becomes current only if its
    grouped-CV macro-F1 is not worse than the current model's (beyond 0.01).

    Example:

        codeer train
    """
    from pipeline.codebook import load_codebook
    from pipeline.store import EmbeddingCache
    from pipeline.training import TrainingConfig, reviewed_annotations, seed_annotations, train_model, unlabelled_pool

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    records = seed_annotations(book, list(annotation_paths) or None) + reviewed_annotations(obj.store, book)
    config = TrainingConfig(encoder=encoder or settings.encoder, semi_supervised=semi_supervised)
    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
    result = train_model(records, book, models_dir=settings.models_dir, cache=cache, config=config,
                         unlabelled=unlabelled_pool(obj.store) if semi_supervised else (), force=force,
                         show_progress=True)
    click.echo(f"trained {result.model_id} on {result.n_utterances} utterances in {result.seconds:.0f} s: "
               f"grouped-CV macro-F1 {result.metrics['macro_f1']}, micro-F1 {result.metrics['micro_f1']}, "
               f"direction accuracy {result.metrics['direction_accuracy']}")
    if result.skipped_codes:
        click.echo(f"left out (too few examples): {', '.join(result.skipped_codes)}")
    click.echo(result.reason)


@cli.command()
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output JSONL file.")
@click.option("--model", "model_ref", default="current", show_default=True, help="current, a model id, or a model folder.")
@click.pass_obj
@friendly
def classify(obj: Context, input_file: Path, output: Path, model_ref: str) -> None:
    """Code any Dutch text: INPUT is .jsonl or .csv with 'id' and 'text' columns.

    An optional 'question' column gives the interviewer's question as context; other columns
    are passed through. Each output line has every code with its probability, the predicted
    codes, a direction per predicted code, needs_review and the model id.

    Example:

        codeer classify zinnen.jsonl --output gecodeerd.jsonl
    """
    from pipeline.classify import code_rows, coded_row_json, featurize
    from pipeline.codebook import load_codebook
    from pipeline.embed import load_encoder
    from pipeline.store import EmbeddingCache
    from pipeline.tables import read_table

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    loaded = _load_or_train_model(obj, model_ref)
    frame = read_table(input_file, required=("id", "text"))
    questions = frame["question"].astype(str).tolist() if "question" in frame.columns else [""] * len(frame)
    encoder = load_encoder(loaded.card["encoder"], threads=settings.threads, device=settings.device)
    _check_encoder(loaded, encoder)
    X, _, _ = featurize(frame["text"].tolist(), questions, encoder, context_weight=loaded.model.context_weight,
                        cache=EmbeddingCache(settings.cache_dir / "embeddings.sqlite"), show_progress=True)
    rows = code_rows(frame["id"].tolist(), X, loaded.model, loaded.model_id, book,
                     review_threshold=settings.review_threshold)
    extra = [c for c in frame.columns if c not in ("id", "text")]
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as handle:
        for row, (_, source) in zip(rows, frame.iterrows(), strict=True):
            record = {**{c: source[c] for c in extra}, **coded_row_json(row)}
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    n_review = sum(row.needs_review for row in rows)
    click.echo(f"coded {len(rows)} rows with model {loaded.model_id}; {n_review} need review; written to {output}")


def _load_or_train_model(obj: Context, model_ref: str):  # type: ignore[no-untyped-def]
    from pipeline.errors import ModelNotFoundError
    from pipeline.models import PROJECT_MODELS, resolve_model
    from pipeline.training import SEED_DIR

    settings = obj.settings
    dirs = [settings.models_dir, PROJECT_MODELS]
    try:
        return resolve_model(model_ref, dirs, codebook_version=settings.codebook_version)
    except ModelNotFoundError:
        if model_ref != "current" or not SEED_DIR.is_dir():
            raise
    click.echo("no trained model yet: training the default seed model on annotations/seed (about a minute) ...", err=True)
    ctx = click.get_current_context()
    ctx.invoke(train, annotation_paths=(), encoder=None, semi_supervised=False, force=False)
    return resolve_model("current", dirs, codebook_version=settings.codebook_version)


def _check_encoder(loaded, encoder) -> None:  # type: ignore[no-untyped-def]
    from pipeline.errors import ModelCardMismatchError

    if encoder.encoder_id != loaded.card["encoder_id"]:
        raise ModelCardMismatchError(
            f"model {loaded.model_id} was trained with encoder {loaded.card['encoder_id']!r}, but "
            f"{encoder.encoder_id!r} is installed. Re-train with 'codeer train' or install the encoder version on the card.")


@cli.command()
@click.option("--encoders", default="e5,use,e5+use,minilm", show_default=True, help="Encoders to compare, comma-separated.")
@click.option("--no-learning-curve", is_flag=True, help="Skip the learning curve (faster).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Report folder (default: reports/).")
@click.pass_obj
@friendly
def evaluate(obj: Context, encoders: str, no_learning_curve: bool, output: Path | None) -> None:
    """Evaluate with cross-validation grouped by transcript, baselines beside the model.

    Writes reports/evaluation.md, evaluation.json and PNG plots: encoders compared, per-code
    precision/recall/F1/kappa, Krippendorff's alpha, calibration, learning curve, direction
    accuracy, TF-IDF and zero-shot baselines, and scores on the held-out transcripts.

    Example:

        codeer evaluate --encoders e5,use,e5+use
    """
    from pipeline.codebook import load_codebook
    from pipeline.store import EmbeddingCache
    from pipeline.training import TrainingConfig, holdout_annotations, reviewed_annotations, run_evaluation, seed_annotations

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    holdout = holdout_annotations(book)
    report = run_evaluation(
        seed_annotations(book) + reviewed_annotations(obj.store, book), book,
        out_dir=output or settings.reports_dir, cache=EmbeddingCache(settings.cache_dir / "embeddings.sqlite"),
        encoders=[e.strip() for e in encoders.split(",") if e.strip()], config=TrainingConfig(encoder=settings.encoder),
        holdout=holdout, unlabelled=[(a.text, a.question) for a in holdout], learning_curve=not no_learning_curve)
    click.echo(f"grouped-CV macro-F1 {report['model']['macro_f1']} (TF-IDF {report['baselines']['tfidf_logreg']['macro_f1']}, "
               f"zero-shot {report['baselines']['zero_shot']['macro_f1']}); held-out "
               f"{report.get('holdout', {}).get('macro_f1', 'n/a')}; report in {output or settings.reports_dir}/evaluation.md")


@cli.group()
def models() -> None:
    """List trained models."""


@models.command("list")
@click.pass_obj
@friendly
def models_list(obj: Context) -> None:
    """List the models in the workspace, newest first; * marks the current one.

    Example:

        codeer models list
    """
    from pipeline.models import list_models

    cards = list_models(obj.settings.models_dir)
    if not cards:
        click.echo(f"no models in {obj.settings.models_dir}; train one with 'codeer train'")
    for card in cards:
        mark = "*" if card["current"] else " "
        click.echo(f"{mark} {card['model_id']}  macro-F1 {card['metrics']['macro_f1']}  {card['encoder_id']}  "
                   f"{card['n_utterances']} utterances  {card['created_at']}")


def _prefect_environment(home: Path) -> None:
    """Without a Prefect server configured, run ephemeral with the workspace's own Prefect
    home (its own small database), no telemetry."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        prefect_home = (home / ".prefect").resolve()
        prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the last folder
        os.environ.setdefault("PREFECT_HOME", str(prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # the first start of an ephemeral server migrates its database: give it time on slow machines
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def _run_config(obj: Context, folders: tuple[Path, ...] = (), **overrides: Any):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from flows.config import RunConfig

    settings = obj.settings
    try:
        return RunConfig(folders=list(folders), home=settings.home,
                         database_url=settings.db.get_secret_value() if settings.db else None,
                         codebook_version=settings.codebook_version, encoder_threads=settings.threads,
                         device=settings.device, review_threshold=settings.review_threshold, window=settings.window,
                         encoder=settings.encoder, **overrides)
    except ValidationError as err:  # show field, value and rule, not a traceback
        raise click.ClickException(f"invalid run configuration: {err}") from err


def _dask_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--dask-address and --dask-workers: per-transcript tasks on Dask (PostgreSQL store only)."""
    command = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                           help="Embedding cache folder (default: cache/ in the workspace); with Dask workers on "
                                "several machines a local folder that exists on each.")(command)
    command = click.option("--dask-workers", type=click.IntRange(1), default=None,
                           help="Run the per-transcript tasks on a local Dask cluster of N worker processes (needs --db postgresql+...).")(command)
    return click.option("--dask-address", metavar="tcp://HOST:PORT", default=None,
                        help="Run the per-transcript tasks on this Dask scheduler (needs --db postgresql+...).")(command)


@cli.command()
@click.argument("folders", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--model", "model_ref", default="current", show_default=True, help="current, a model id, or a model folder.")
@click.option("--fictional", is_flag=True, help="Mark the report as made from fictional data (the demo).")
@_dask_options
@click.pass_obj
@friendly
def run(obj: Context, folders: tuple[Path, ...], model_ref: str, fictional: bool, dask_address: str | None,
        dask_workers: int | None, cache_dir: Path | None) -> None:
    """Run the main job in-process (Prefect, no server needed): ingest new or changed files,
    classify, fill the review queue, rate and report.

    Unchanged files and utterances already classified by the model cost nothing. Writes
    reports/run-summary.json, ratings.json/.csv and the report. With --dask-workers or
    --dask-address each transcript is ingested and classified on a Dask worker; the
    database must then be PostgreSQL (--db).

    Examples:

    \b
        codeer run data/demo
        codeer --db postgresql+psycopg://codeer@dbhost/codeer run --dask-workers 4 data/interviews
    """
    _prefect_environment(obj.settings.home)
    from flows.code_transcripts import run_code_transcripts

    summary = run_code_transcripts(_run_config(obj, folders, model=model_ref, fictional=fictional,
                                               dask_address=dask_address, dask_workers=dask_workers,
                                               cache_dir=cache_dir))
    failed = summary["transcripts_failed"]
    click.echo(f"run: {summary['transcripts_new']} new, {summary['transcripts_changed']} changed, "
               f"{summary['transcripts_unchanged']} unchanged, {len(failed)} failed transcript(s); "
               f"{summary['utterances_classified']} utterances classified ({summary['utterances_embedded']} texts "
               f"embedded, {summary['embedding_cache_hits']} from cache); {summary['review_items_added']} review "
               f"item(s) added; {len(summary['ratings_changed'])} rating(s) changed; model {summary['model']}")
    for item in failed:
        click.echo(f"FAILED ({item['reason']}) {item['error']}", err=True)
    click.echo(f"summary: {obj.settings.reports_dir / 'run-summary.json'}")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("folders", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--cron", default="0 2 * * *", show_default=True, help="When to run: minute hour day month weekday.")
@click.option("--timezone", default="Europe/Amsterdam", show_default=True, help="Time zone of --cron (IANA name).")
@click.option("--model", "model_ref", default="current", show_default=True, help="current, a model id, or a model folder.")
@click.option("--name", default="codeer-nightly", show_default=True, help="Deployment name on the Prefect server.")
@click.option("--fictional", is_flag=True, help="Mark the report as made from fictional data (the demo).")
@_dask_options
@click.pass_obj
@friendly
def schedule(obj: Context, folders: tuple[Path, ...], cron: str, timezone: str, model_ref: str, name: str,
             fictional: bool, dask_address: str | None, dask_workers: int | None, cache_dir: Path | None) -> None:
    """Register the nightly job (retrain when corrections came in, then run) on a Prefect
    server and serve it until stopped with Ctrl-C (the schedule is then paused).

    Needs a running 'prefect server start' and PREFECT_API_URL pointing at it. Runs and
    their logs appear in the Prefect UI and in this terminal.

    Example:

        PREFECT_API_URL=http://127.0.0.1:4200/api codeer --home werk schedule data/interviews
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    from flows.code_transcripts import nightly_schedule, serve_nightly

    nightly_schedule(cron, timezone)  # a bad schedule is an error before any server is asked
    api_url = get_current_settings().api.url
    if not api_url:
        raise click.ClickException(
            "no Prefect server configured: start one with 'prefect server start' and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (a nightly schedule cannot live on a temporary server).")
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise click.ClickException(f"the Prefect server at {api_url} does not answer ({problem}). "
                                   "Is 'prefect server start' running?")
    config = _run_config(obj, folders, model=model_ref, fictional=fictional, dask_address=dask_address,
                         dask_workers=dask_workers, cache_dir=cache_dir)
    click.echo(f"serving deployment 'nightly/{name}' ({cron}, {timezone}) on {api_url}; Ctrl-C stops it")
    serve_nightly(config, cron=cron, timezone=timezone, name=name)


@cli.command()
@click.option("--utterances", "table", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rate this table (.jsonl/.csv: id,text,municipality,respondent[,role]) alone, without the database.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: reports/).")
@click.option("--model", "model_ref", default="current", show_default=True)
@click.pass_obj
@friendly
def rate(obj: Context, table: Path | None, output: Path | None, model_ref: str) -> None:
    """Rate each incentive per municipality and for the region; write ratings.json and .csv.

    Without --utterances it rates what is in the database (human annotations override the
    current model's predictions).

    Example:

        codeer rate --utterances nieuwe-gemeente.csv --output uit/
    """
    result = _rate(obj, table, output, model_ref, report=False)
    _echo_ratings(result, output or obj.settings.reports_dir)


@cli.command()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: reports/).")
@click.option("--model", "model_ref", default="current", show_default=True)
@click.option("--fictional", is_flag=True, help="Mark the report as made from fictional data (the demo).")
@click.pass_obj
@friendly
def report(obj: Context, output: Path | None, model_ref: str, fictional: bool) -> None:
    """Write the report: one self-contained HTML file, Markdown and an Excel workbook.

    Example:

        codeer report --output reports/
    """
    result = _rate(obj, None, output, model_ref, report=True, fictional=fictional)
    _echo_ratings(result, output or obj.settings.reports_dir)


def _rate(obj: Context, table: Path | None, output: Path | None, model_ref: str, *, report: bool,  # type: ignore[no-untyped-def]
          fictional: bool = False):
    from pipeline.codebook import load_codebook
    from pipeline.embed import load_encoder
    from pipeline.jobs import classify_table, questionnaire_evidence_of, rate_codings
    from pipeline.store import EmbeddingCache
    from pipeline.tables import read_table

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    loaded = _load_or_train_model(obj, model_ref)
    out_dir = output or settings.reports_dir
    if table is not None:
        frame = read_table(table, required=("id", "text", "municipality", "respondent"))
        encoder = load_encoder(loaded.card["encoder"], threads=settings.threads, device=settings.device)
        _check_encoder(loaded, encoder)
        codings = classify_table(frame, loaded, encoder, book, cache=EmbeddingCache(settings.cache_dir / "embeddings.sqlite"))
        return rate_codings(codings, book, out_dir, model_id=loaded.model_id, report=report)
    store = obj.store
    from pipeline.jobs import rate_store

    return rate_store(store, book, out_dir, model_id=loaded.model_id, questionnaire=questionnaire_evidence_of(store),
                      report=report, fictional=fictional)


def _echo_ratings(result, out_dir: Path) -> None:  # type: ignore[no-untyped-def]
    counts: dict[str, int] = {}
    for rating in result.ratings:
        if rating.municipality != "regio":
            counts[rating.rating] = counts.get(rating.rating, 0) + 1
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    click.echo(f"{len(result.ratings)} ratings ({summary}); written: " + ", ".join(str(p) for p in result.files))


@cli.command()
@click.pass_obj
@friendly
def demo(obj: Context) -> None:
    """Run the whole main job on the fictional demo corpus (what 'make demo' does).

    Ingests data/demo, attaches the seed annotations and questionnaires, then runs the
    flow: classify, review queue, ratings, report (in the workspace's reports/ folder).

    Example:

        CODEER_HOME=demo-workspace codeer demo
    """
    from pipeline.training import PROJECT_ROOT

    demo_dir = PROJECT_ROOT / "data" / "demo"
    ctx = click.get_current_context()
    click.echo("== codeer demo: the corpus is FICTIONAL (region Lindeland, eight invented municipalities)")
    click.echo("== 1/4 ingest transcripts and documents")
    try:
        ctx.invoke(ingest, paths=(demo_dir,), metadata=demo_dir / "metadata.csv", speakers=(), window=None)
    except SystemExit as stop:
        if stop.code:
            raise
    click.echo("== 2/4 attach the hand-coded seed annotations")
    ctx.invoke(annotations_import, paths=(PROJECT_ROOT / "annotations" / "seed",))
    click.echo("== 3/4 questionnaires")
    for csv_file in sorted((demo_dir / "questionnaires").glob("*.csv")):
        ctx.invoke(ingest_questionnaire_command, file=csv_file, version=None)
    click.echo("== 4/4 the main job: classify, review queue, ratings, report")
    ctx.invoke(run, folders=(demo_dir,), model_ref="current", fictional=True)
    click.echo(f"== done: open {obj.settings.reports_dir / 'rapport.html'}")


@cli.group()
def annotations() -> None:
    """Import and count hand-coded seed annotations."""


@annotations.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
@friendly
def annotations_import(obj: Context, paths: tuple[Path, ...]) -> None:
    """Attach annotation records (JSONL) to the stored utterances they were made on.

    Each record's transcript hash, offsets and text are checked; records that do not match
    are listed and the exit status is 1. Importing twice adds nothing.

    Example:

        codeer annotations import annotations/seed
    """
    from pipeline.annotations import import_annotations, read_annotations
    from pipeline.codebook import load_codebook

    records = read_annotations(list(paths), load_codebook(obj.settings.codebook_version))
    report = import_annotations(records, obj.store)
    for problem in report.problems:
        click.echo(f"NOT IMPORTED {problem}", err=True)
    click.echo(f"{report.n_records} record(s): {report.n_codings_added} coding(s) added, "
               f"{report.n_codings_present} already present, {len(report.problems)} not imported.")
    if report.problems:
        sys.exit(1)


@annotations.command("stats")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
@friendly
def annotations_stats(obj: Context, paths: tuple[Path, ...], fmt: str) -> None:
    """Count annotations per code and direction; flag codes under the minimum.

    Minimum: 40 per incentive, 15 per context code. Default PATH: annotations/seed.

    Example:

        codeer annotations stats --format json
    """
    from pipeline.annotations import annotation_stats, read_annotations
    from pipeline.codebook import load_codebook

    records = read_annotations(list(paths) or [Path("annotations/seed")], load_codebook(obj.settings.codebook_version))
    table = annotation_stats(records, load_codebook(obj.settings.codebook_version))
    if fmt == "json":
        click.echo(json.dumps({row.code: {"+": int(row["+"]), "-": int(row["-"]), "0": int(row["0"]),
                                          "total": int(row.total)} for _, row in table.iterrows()}, indent=1))
        return
    click.echo(f"{'code':30s} {'+':>5s} {'-':>5s} {'0':>5s} {'total':>6s}  minimum")
    for _, row in table.iterrows():
        flag = "  BELOW MINIMUM" if row.below_minimum else ""
        click.echo(f"{row.code:30s} {row['+']:5d} {row['-']:5d} {row['0']:5d} {row.total:6d}  {row.minimum}{flag}")
    click.echo(f"{len(records)} annotated utterances")


@cli.command("ingest-questionnaire")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", default=None, metavar="VERSION",
              help="Questionnaire version: beleidsmedewerker or manager (default: told from the headers).")
@click.pass_obj
@friendly
def ingest_questionnaire_command(obj: Context, file: Path, version: str | None) -> None:
    """Validate and store questionnaire answers (a Google Forms export, .csv or .xlsx).

    Every answer is checked against the printed options of annotations/questionnaires.yaml;
    any unknown option is listed with its row and column, nothing is stored and the exit
    status is 1. Importing the same file twice changes nothing.

    Example:

        codeer ingest-questionnaire data/demo/questionnaires/managers.csv
    """
    from pipeline.questionnaire import ingest_questionnaire, questionnaire_evidence, summarise

    result = ingest_questionnaire(file, obj.store, version)
    responses = result.responses
    municipalities = sorted({response.municipality for response in responses.responses})
    click.echo(f"{file}: {responses.version} questionnaire, {len(responses.responses)} respondent(s) "
               f"({', '.join(responses.respondents)}) in {len(municipalities)} municipalit"
               f"{'y' if len(municipalities) == 1 else 'ies'}; {responses.n_answers} answers: "
               f"{result.n_added} added, {result.n_updated} updated.")
    if responses.ignored_columns:
        click.echo(f"ignored {len(responses.ignored_columns)} column(s) that are no question of this version: "
                   + "; ".join(repr(c[:40]) for c in responses.ignored_columns), err=True)
    click.echo(f"  {'item':5s} {'incentive':28s} positive/answered")
    for row in summarise(questionnaire_evidence(responses)).itertuples(index=False):
        click.echo(f"  {row.item:5s} {row.code:28s} {row.label}")


# REFI-QDA (issue 9) ----------------------------------------------------------------
@cli.command("import-qdpx")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML mapping of the project's codes to codebook ids (see --suggest-mapping).")
@click.option("--suggest-mapping", is_flag=True,
              help="Propose a mapping (to --mapping FILE, or to stdout) and import nothing.")
@click.pass_obj
@friendly
def import_qdpx_command(obj: Context, file: Path, mapping: Path | None, suggest_mapping: bool) -> None:
    """Import a REFI-QDA project (.qdpx) from NVivo, ATLAS.ti, MAXQDA or QualCoder.

    Text sources become transcripts, coded selections become annotations under the
    program's user names. What cannot be mapped or placed is listed, and the exit status
    is then 1. Codes exported by codeer need no mapping.

    Example:

        codeer import-qdpx project.qdpx --suggest-mapping --mapping map.yaml
        codeer import-qdpx project.qdpx --mapping map.yaml
    """
    from pipeline.codebook import load_codebook
    from pipeline.qda import import_qdpx, load_qda_mapping, propose_mapping

    book = load_codebook(obj.settings.codebook_version)
    if suggest_mapping:
        if mapping is not None and mapping.exists():
            raise click.ClickException(f"{mapping} exists; choose another file or remove it first.")
        text, n_codes, n_proposed = propose_mapping(file, book)
        if mapping is None:
            click.echo(text, nl=False)
            return
        mapping.write_text(text, encoding="utf-8")
        click.echo(f"{n_codes} code(s), {n_proposed} with a proposal: written to {mapping}. Check it, then run "
                   f"'codeer import-qdpx {file} --mapping {mapping}'.")
        return
    if mapping is not None and not mapping.is_file():
        raise click.ClickException(f"{mapping}: no such mapping file. Create one with --suggest-mapping.")
    from pipeline.segment import load_segmenter

    settings = obj.settings
    segmenter = load_segmenter(settings.window)
    store = obj.store
    run_id = store.begin_run("import-qdpx", settings.public_dict(), segmenter.name)
    report = import_qdpx(file, store, segmenter, book, load_qda_mapping(mapping, book) if mapping else None,
                         run_id=run_id)
    for line in report.notes:
        click.echo(f"NOTE {line}", err=True)
    for line in (*report.unmapped, *report.problems):
        click.echo(f"NOT IMPORTED {line}", err=True)
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items())) or "none stored"
    store.finish_run(run_id, "completed" if report.ok else "incomplete",
                     {"sources": report.n_sources, **report.statuses, "codings_added": report.n_codings_added})
    click.echo(f"{report.n_sources} source(s): {statuses}; {report.n_placed} of {report.n_selections} selection(s) "
               f"placed; {report.n_codings_added} coding(s) added, {report.n_codings_present} already present; "
               f"{len(report.unmapped)} unmapped code(s), {len(report.problems)} problem(s).")
    if not report.ok:
        sys.exit(1)


@cli.command("export-qdpx")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include", type=click.Choice(["predicted", "reviewed", "all"]), default="all", show_default=True,
              help="reviewed: human codings; predicted: machine codings; all: both.")
@click.option("--model", "models", multiple=True, help="Only these model ids' predictions (default: all). Repeatable.")
@click.pass_obj
@friendly
def export_qdpx_command(obj: Context, out: Path, include: str, models: tuple[str, ...]) -> None:
    """Export transcripts, codebook and codings as a REFI-QDA project (.qdpx).

    Human codings are filed under their annotators, machine codings under one user per
    model ('codeer model <id>') with probability and direction in the selection's
    description. GUIDs derive from codeer's ids, so a re-export updates the project.

    Example:

        codeer export-qdpx codeer.qdpx --include all
    """
    from pipeline.codebook import load_codebook
    from pipeline.qda import export_qdpx

    report = export_qdpx(obj.store, load_codebook(obj.settings.codebook_version), out, include=include,
                         model_ids=list(models) or None)
    for line in report.problems:
        click.echo(f"NOT EXPORTED {line}", err=True)
    click.echo(f"{out}: {report.n_sources} source(s), {report.n_selections} selection(s), "
               f"{report.n_human_codings} human and {report.n_machine_codings} machine coding(s), "
               f"{len(report.users)} user(s).")


@codebook.command("export-qdc")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", default=None, help="Codebook version (default: the configured one).")
@click.pass_obj
@friendly
def codebook_export_qdc(obj: Context, out: Path, version: str | None) -> None:
    """Write the codebook as a REFI-QDA codebook (.qdc) for NVivo, ATLAS.ti or MAXQDA.

    Example:

        codeer codebook export-qdc garvin2008.qdc
    """
    from pipeline.codebook import load_codebook
    from pipeline.qda import export_qdc

    n = export_qdc(load_codebook(version or obj.settings.codebook_version), out)
    click.echo(f"{out}: {n} codes.")


@codebook.command("import-qdc")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", required=True, help="Version name of the new codebook, e.g. mijnboom2026.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML to write (default: stdout); it must not exist yet.")
@friendly
def codebook_import_qdc(file: Path, version: str, out: Path | None) -> None:
    """Turn a REFI-QDA codebook (.qdc, or the code tree of a .qdpx) into a codebook YAML.

    Codes exported by codeer keep ids, kinds and definitions; other codes become context
    codes (folders become groups): set kinds and 'rated' in the YAML afterwards.

    Example:

        codeer codebook import-qdc boom.qdc --version mijnboom2026 --out annotations/codebook/mijnboom2026.yaml
    """
    from pipeline.qda import codebook_from_qda, codebook_yaml, read_qdc

    if out is not None and out.exists():
        raise click.ClickException(f"{out} exists; choose another file or remove it first.")
    book = codebook_from_qda(read_qdc(file), version, source=str(file))
    text = codebook_yaml(book)
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"{out}: codebook {version!r} with {len(book.codes)} codes ({len(book.codable)} codable).")


# review queue, annotators, review page, terminal review, exchange (issue 6) ----------------


@cli.group()
def users() -> None:
    """Add and list the people who review (annotators and admins)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["annotator", "admin"]), default="annotator", show_default=True,
              help="Annotators see the queue; admins also see users and the audit trail.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the password from the first line of this file (default: prompt for it).")
@click.pass_obj
@friendly
def users_add(obj: Context, name: str, role: str, password_file: Path | None) -> None:
    """Create a user; the password is stored as an argon2id hash.

    Example:

        codeer users add anna --role annotator
    """
    from pipeline.users import add_user

    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    user = add_user(obj.store, name, role, password)
    click.echo(f"user {user.name!r} added ({user.role}).")


@users.command("list")
@click.pass_obj
@friendly
def users_list(obj: Context) -> None:
    """List users: name, role, active, created.

    Example:

        codeer users list
    """
    from pipeline.users import list_users

    for user in list_users(obj.store):
        click.echo(f"{user.name:24s} {user.role:10s} {'active' if user.active else 'inactive':9s} {user.created_at}")


@cli.command("serve-review")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but the loopback address needs HTTPS (cookies are Secure).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS certificate.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS private key.")
@click.pass_obj
@friendly
def serve_review(obj: Context, host: str, port: int, ssl_certfile: Path | None, ssl_keyfile: Path | None) -> None:
    """Serve the annotator web page (log in, review the queue, keyboard shortcuts).

    Example:

        codeer serve-review --port 8000
    """
    from pipeline.codebook import load_codebook
    from pipeline.web import serve

    click.echo(f"review page on {'https' if ssl_certfile else 'http'}://{host}:{port}/ (Ctrl+C stops)")
    if host not in ("127.0.0.1", "localhost", "::1") and not ssl_certfile:
        click.echo("Note: off the loopback address the session cookie is Secure; browsers only keep it over "
                   "HTTPS. Pass --ssl-certfile/--ssl-keyfile or put a TLS proxy in front.", err=True)
    serve(obj.store, load_codebook(obj.settings.codebook_version), home=obj.settings.home, host=host, port=port,
          ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


@cli.group("review", invoke_without_command=True)
@click.option("--user", "user_name", help="Your user name (see 'codeer users list'); needed to review.")
@click.option("--batch", type=click.IntRange(1, 100), default=10, show_default=True, help="Items claimed at a time.")
@click.pass_context
@friendly
def review_group(ctx: click.Context, user_name: str | None, batch: int) -> None:
    """Review the queue in the terminal; or export and import it (subcommands).

    Without a subcommand, claims items and asks for a decision on each: a accept, c correct
    (codes as '1- 3+ analyse0'), s skip, u undo, j/k next/previous, q quit.

    Example:

        codeer review --user anna
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.codebook import load_codebook
    from pipeline.terminal import run_terminal_review

    obj: Context = ctx.obj
    if not user_name:
        raise click.UsageError("give your user name: codeer review --user NAME")
    if obj.store.user_with_hash(user_name) is None:
        raise click.ClickException(f"no user {user_name!r}; add one with 'codeer users add {user_name}'.")
    n = run_terminal_review(obj.store, load_codebook(obj.settings.codebook_version), user_name, batch=batch)
    click.echo(f"{n} decision(s) recorded.")


@review_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "label-studio"]), default="csv", show_default=True)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@friendly
def review_export(obj: Context, fmt: str, out: Path) -> None:
    """Write the queue and decisions (CSV), or the open items as Label Studio tasks (JSON).

    The Label Studio export also writes OUT's labelling configuration as <name>.label_config.xml.

    Example:

        codeer review export --format label-studio tasks.json
    """
    if fmt == "csv":
        from pipeline.review import export_review_csv

        n = export_review_csv(obj.store, out)
        click.echo(f"{n} review item(s) written to {out}.")
        return
    from pipeline.codebook import load_codebook
    from pipeline.labelstudio import export_label_studio

    n = export_label_studio(obj.store, out, load_codebook(obj.settings.codebook_version))
    click.echo(f"{n} task(s) written to {out}; labelling configuration in {out.stem}.label_config.xml.")


@review_group.command("import-label-studio")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--annotator", help="Record the decisions under this name (default: label-studio:<the LS user>).")
@click.pass_obj
@friendly
def review_import_label_studio(obj: Context, file: Path, annotator: str | None) -> None:
    """Record Label Studio annotations of exported tasks as review decisions.

    Example:

        codeer review import-label-studio export.json --annotator anna
    """
    from pipeline.codebook import load_codebook
    from pipeline.labelstudio import import_label_studio

    report = import_label_studio(obj.store, file, load_codebook(obj.settings.codebook_version), annotator=annotator)
    for problem in report.problems:
        click.echo(f"NOT IMPORTED {problem}", err=True)
    click.echo(f"{report.n_tasks} task(s): {report.n_accepted} accepted, {report.n_corrected} corrected, "
               f"{report.n_skipped} skipped, {len(report.problems)} not imported.")
    if report.problems:
        sys.exit(1)


def main() -> None:
    """Entry point of the ``codeer`` script."""
    cli(prog_name="codeer")
