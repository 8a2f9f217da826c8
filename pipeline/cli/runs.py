"""The main job: run it now, on a schedule, or on the demo corpus (Prefect flows, issue 7)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.cli import Context, cli, friendly
from pipeline.cli.corpus import annotations_import, ingest, ingest_questionnaire_command
from pipeline.config import WorkspacePaths

if TYPE_CHECKING:
    from flows.config import RunConfig


def _prefect_environment(paths: WorkspacePaths) -> None:
    """Without a Prefect server configured, run ephemeral with the workspace's own Prefect
    home (its own small database), no telemetry."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        prefect_home = paths.prefect_home.resolve()
        prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the last folder
        os.environ.setdefault("PREFECT_HOME", str(prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # the first start of an ephemeral server migrates its database: give it time on slow machines
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def _run_config(obj: Context, folders: tuple[Path, ...] = (), **overrides: Any) -> RunConfig:
    from pydantic import ValidationError

    from flows.config import RunConfig

    try:
        return RunConfig.from_settings(obj.settings, folders, **overrides)
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
    _prefect_environment(obj.settings.paths)
    from flows.code_transcripts import run_code_transcripts

    summary = run_code_transcripts(_run_config(obj, folders, model=model_ref, fictional=fictional,
                                               dask_address=dask_address, dask_workers=dask_workers,
                                               cache_dir=cache_dir, show_progress=True))
    failed = summary["transcripts_failed"]
    click.echo(f"run: {summary['transcripts_new']} new, {summary['transcripts_changed']} changed, "
               f"{summary['transcripts_unchanged']} unchanged, {len(failed)} failed transcript(s); "
               f"{summary['utterances_classified']} utterances classified ({summary['utterances_embedded']} texts "
               f"embedded, {summary['embedding_cache_hits']} from cache); {summary['review_items_added']} review "
               f"item(s) added; {len(summary['ratings_changed'])} rating(s) changed; model {summary['model']}")
    queue = summary.get("review_queue")
    if isinstance(queue, dict) and queue.get("handed_out"):
        click.echo(f"review queue tonight: {queue['handed_out']} item(s) of budget {queue['budget']} in "
                   f"{queue['batches']} batch(es), {queue['waiting']} waiting; first batch {queue['first_batch']}")
    for item in failed:
        click.echo(f"FAILED ({item['reason']}) {item['error']}", err=True)
    click.echo(f"summary: {obj.settings.paths.reports_dir / 'run-summary.json'}")
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
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
@friendly
def demo(obj: Context, folder: Path | None) -> None:
    """Run the whole main job on the fictional demo corpus (what 'make demo' does).

    Ingests FOLDER (default: data/demo of the codeer checkout), attaches the shipped seed
    annotations and the questionnaires, then runs the flow: classify, review queue, ratings,
    report (in the workspace's reports/ folder).

    Example:

        CODEER_HOME=demo-workspace codeer demo
    """
    from pipeline.resources import seed_dir

    demo_dir = folder or _checkout_demo_dir()
    ctx = click.get_current_context()
    click.echo("== codeer demo: the corpus is FICTIONAL (region Lindeland, eight invented municipalities)")
    click.echo("== 1/4 ingest transcripts and documents")
    try:
        ctx.invoke(ingest, paths=(demo_dir,), metadata=demo_dir / "metadata.csv", speakers=(), window=None)
    except SystemExit as stop:
        if stop.code:
            raise
    click.echo("== 2/4 attach the hand-coded seed annotations")
    ctx.invoke(annotations_import, paths=(seed_dir(),))
    click.echo("== 3/4 questionnaires")
    for csv_file in sorted((demo_dir / "questionnaires").glob("*.csv")):
        ctx.invoke(ingest_questionnaire_command, file=csv_file, version=None)
    click.echo("== 4/4 the main job: classify, review queue, ratings, report")
    ctx.invoke(run, folders=(demo_dir,), model_ref="current", fictional=True)
    _echo_answer_key(obj.settings.paths.reports_dir / "ratings.json", demo_dir / "intended_picture.yaml")
    reports = obj.settings.paths.reports_dir
    click.echo(f"== done: the report is {reports / 'rapport.html'}; how good the model is: {reports / 'evaluatie.html'}")


def _checkout_demo_dir() -> Path:
    """``data/demo`` of the codeer repository: below the current folder, or the checkout this code runs from."""
    import pipeline

    # The demo corpus is not shipped in the wheel (issue 15): it is found in a checkout only.
    candidates = (Path("data") / "demo", Path(pipeline.__file__).resolve().parents[1] / "data" / "demo")
    for candidate in candidates:
        if (candidate / "metadata.csv").is_file():
            return candidate
    raise click.ClickException(
        "no demo corpus found: 'codeer demo' reads data/demo of the codeer repository, which an installed "
        "package does not contain. Run it in a checkout of codeer, or give the folder: codeer demo PATH/TO/data/demo")


def _echo_answer_key(ratings_file: Path, key_file: Path) -> None:
    """How well the demo's ratings reproduce the answer key its fictional corpus was written to."""
    from pipeline.rating import agreement_with_answer_key

    share, misses = agreement_with_answer_key(json.loads(ratings_file.read_text(encoding="utf-8")), key_file)
    click.echo(f"== answer key ({key_file.name}): the ratings agree on {share:.1%} of the municipality x "
               f"incentive cells it specifies; {len(misses)} miss(es) (expected -> rated):")
    for municipality, code, expected, got in misses:
        click.echo(f"   {municipality:<12} {code:<28} {expected} -> {got}")
