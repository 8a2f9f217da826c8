"""Shared fixtures: a real spaCy segmenter, fresh stores, small transcript files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.segment import Segmenter, load_segmenter
from pipeline.store import Store, open_store

TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def segmenter() -> Segmenter:
    """The blank Dutch fallback, as on every machine without nl_core_news_lg."""
    return load_segmenter(model=None)


@pytest.fixture()
def fresh_store(tmp_path: Path) -> Store:
    store = open_store(f"sqlite:///{tmp_path / 'codeer.db'}")
    yield store
    store.close()


def _pg_url() -> str | None:
    return os.environ.get("CODEER_TEST_PG")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh store on SQLite and, where CODEER_TEST_PG is set, on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'codeer.db'}")
        yield store
        store.close()
        return
    url = _pg_url()
    if not url:
        pytest.skip("CODEER_TEST_PG is not set (.ci/run starts a local PostgreSQL and sets it)")
    import uuid

    import sqlalchemy as sa

    name = f"codeer_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(url)
    store = open_store(base.set(database=name).render_as_string(hide_password=False))
    yield store
    store.close()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


INTERVIEW = """Naam respondent: BQ
Functie: beleidsmedewerker Jeugd
Werkend bij: gemeente Testerveen
Tijd interview: 3 april 2026, 14.00 uur
Tijdsduur interview: 40 minuten

Onderzoeker: Hoe zou u uw team omschrijven?

Respondent: Nou ja, we zijn een klein team. Het is bijv. heel hectisch, d.w.z. we komen nergens aan toe… Maar goed (lacht).

Dat is eigenlijk al jaren zo.

Onderzoeker: En nieuwe ideeën?

Respondent: Die worden wel gewaardeerd. "Doe maar," zegt mijn teamleider dan.
"""


@pytest.fixture()
def interview_text() -> str:
    """A small fictional interview in the thesis format."""
    return INTERVIEW


@pytest.fixture()
def interview_file(tmp_path: Path) -> Path:
    path = tmp_path / "BQ.txt"
    path.write_text(INTERVIEW, encoding="utf-8")
    return path
