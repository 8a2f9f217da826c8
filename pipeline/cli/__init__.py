"""The ``codeer`` command line: parse options, call one library function, report.

The group, its options and the error translation live here; the commands live in one
module per family (corpus, model, report, runs, qda, review)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline import __version__
from pipeline.config import Settings
from pipeline.errors import CodeerError, WorkspaceNotFoundError

if TYPE_CHECKING:
    from pipeline.store import Store

logger = logging.getLogger("pipeline")


class Context:
    """Settings and lazily opened resources shared by the commands of one invocation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The workspace's store, opened on first use."""
        if self._store is None:
            from pipeline.store import open_store

            self.settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._store = open_store(self.settings.database_url)
        return self._store


def require_workspace(settings: Settings) -> None:
    """Refuse a workspace without a database, creating nothing (a mistyped ``--home``).

    A database given with ``--db``/``CODEER_DB`` is the server's business: not checked here.
    """
    if settings.db is not None:
        return
    database = settings.paths.database_file
    if not database.is_file():
        where = "does not exist" if not settings.home.exists() else f"has no database ({database.name})"
        raise WorkspaceNotFoundError(
            f"no codeer workspace at {settings.home}: the folder {where}. Check --home (or CODEER_HOME); "
            f"to create a workspace there, ingest transcripts first: codeer --home {settings.home} ingest FOLDER "
            "(or run 'make demo' for the demo workspace).")


def reads_workspace(function: Callable[..., Any]) -> Callable[..., Any]:
    """For commands that only read a workspace: refuse one that does not exist (see
    :func:`require_workspace`) before anything else happens. Goes below ``@friendly``."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        obj = click.get_current_context().find_object(Context)
        if obj is not None:
            require_workspace(obj.settings)
        return function(*args, **kwargs)

    return wrapper


def friendly(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a :class:`CodeerError` into ``Error: ...`` and exit status 1."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CodeerError as err:
            raise click.ClickException(str(err)) from err

    return wrapper


def echo_import(summary: str, problems: Sequence[str]) -> None:
    """Print what an import could not take (stderr) and its summary; exit 1 when anything was left out."""
    for problem in problems:
        click.echo(f"NOT IMPORTED {problem}", err=True)
    click.echo(summary)
    if problems:
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codeer")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="CODEER_HOME",
              help="Workspace folder (codeer.db, models/, reports/, cache/). Default: the current folder.")
@click.option("--db", envvar="CODEER_DB", help="SQLAlchemy database URL, e.g. postgresql+psycopg://user@host/db.")
@click.option("--device", envvar="CODEER_DEVICE", help="Where the encoder runs: cpu, cuda, cuda:N or auto "
              "(default: a CUDA GPU when torch sees one, else the CPU).")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, db: str | None, device: str | None, verbose: int) -> None:
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
    if device:
        overrides["device"] = device
    try:
        settings = Settings(**overrides)
    except Exception as err:  # pydantic.ValidationError: show field, value and rule
        raise click.ClickException(f"invalid setting: {err}") from err
    ctx.obj = Context(settings)


def main() -> None:
    """Entry point of the ``codeer`` script."""
    # transcripts, the database (password hashes) and reports hold personal data: what codeer
    # creates is readable by the user only, 0600 files and 0700 folders (issue 20). Set here,
    # not in the group, so that a program or test calling ``cli`` keeps its own umask.
    os.umask(0o077)
    cli(prog_name="codeer")


# The commands register themselves on `cli` when their modules are imported, so these
# imports come after `cli` and `friendly` exist.
from pipeline.cli import corpus, model, privacy, qda, report, review, runs  # noqa: E402,F401
