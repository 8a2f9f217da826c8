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
