"""The ``codeer`` command line: parse options, call one library function, report.

The group, its options and the error translation live here; the commands live in one
module per family (corpus, model, report, runs, qda, review)."""

from __future__ import annotations

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


def main() -> None:
    """Entry point of the ``codeer`` script."""
    cli(prog_name="codeer")


# The commands register themselves on `cli` when their modules are imported, so these
# imports come after `cli` and `friendly` exist.
from pipeline.cli import corpus, model, privacy, qda, report, review, runs  # noqa: E402,F401
