"""Shared fixtures: a real spaCy segmenter, fresh stores, small transcript files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline.corpus.segment import Segmenter, load_segmenter
from pipeline.store.database import Store, open_store
from pipeline.resources import seed_dir

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


# review queue (issue 6) ---------------------------------------------------------------------
REVIEW_INTERVIEW = """Naam respondent: BQ
Functie: beleidsmedewerker Wmo
Werkend bij: gemeente Testerveen
Tijd interview: 7 april 2026, 10.00 uur
Tijdsduur interview: 45 minuten

Onderzoeker: Hoe ervaart u de werkdruk?

Respondent: De werkdruk is heel erg hoog hier bij ons. We hebben eigenlijk nooit tijd om samen te evalueren. De werkdruk is heel erg hoog hier bij ons, echt. Er is wel budget voor cursussen. Maar bijna niemand gaat op cursus.

Onderzoeker: En nieuwe ideeën?

Respondent: Nieuwe ideeën worden bij ons gewaardeerd. We mogen experimenteren met kleine pilots. Mijn leidinggevende vraagt vaak hoe het werk gaat. Koffie drinken we om tien uur.
"""


@pytest.fixture()
def review_interview_file(tmp_path: Path) -> Path:
    """A fictional interview whose respondent sentences become nine utterances (two near-duplicates)."""
    path = tmp_path / "BQ-review.txt"
    path.write_text(REVIEW_INTERVIEW, encoding="utf-8")
    return path


@pytest.fixture()
def review_store(any_store: Store, segmenter: Segmenter, review_interview_file: Path) -> Store:
    """A store (SQLite, and PostgreSQL where configured) with the review interview ingested."""
    from pipeline.corpus.ingest import ingest_paths

    assert not ingest_paths([review_interview_file], any_store, segmenter).failed
    return any_store


@pytest.fixture()
def sqlite_review_store(fresh_store: Store, segmenter: Segmenter, review_interview_file: Path) -> Store:
    """A SQLite store with the review interview ingested."""
    from pipeline.corpus.ingest import ingest_paths

    assert not ingest_paths([review_interview_file], fresh_store, segmenter).failed
    return fresh_store


@pytest.fixture(scope="session")
def use_encoder():
    """The packaged Universal Sentence Encoder (fast on CPU): a real encoder for the tests."""
    from pipeline.coding.embed import load_encoder

    return load_encoder("use")


@pytest.fixture(scope="session")
def small_training_annotations():
    """Seed annotations of six demo transcripts: enough for every incentive, quick to train."""
    from pipeline.codebook import load_codebook
    from pipeline.corpus.annotations import read_annotations

    seed = seed_dir()
    files = [seed / f"{name}.jsonl" for name in ("BE", "BK", "MK", "BR", "MS", "RL", "BV", "ML")]
    return read_annotations(files, load_codebook())


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, small_training_annotations, use_encoder):
    """A model trained once per session on the small seed set with the USE encoder."""
    from pipeline.codebook import load_codebook
    from pipeline.coding.embedding_cache import EmbeddingCache
    from pipeline.coding.training import TrainingConfig, train_model

    home = tmp_path_factory.mktemp("models-home")
    result = train_model(small_training_annotations, load_codebook(), models_dir=home / "models",
                         cache=EmbeddingCache(home / "cache.sqlite"), encoder=use_encoder,
                         config=TrainingConfig(encoder="use", n_splits=3))
    return result.path
# flows (issue 7) ------------------------------------------------------------------------------
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SMALL_DEMO = ("interviews/BE.txt", "interviews/ME.docx", "interviews/BH.txt")


@pytest.fixture(scope="session")
def prefect_harness() -> None:
    """Flows run against a temporary Prefect server and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def shared_embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedding cache folder shared by training and the flow runs that do not test embedding."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def flow_model(tmp_path_factory: pytest.TempPathFactory, shared_embedding_cache: Path) -> Path:
    """A model folder trained once per session on pipeline/resources/annotations/seed with the fast 'use' encoder
    (no question context: half the training time; the flows do not care how good it is)."""
    from pipeline.codebook import load_codebook
    from pipeline.coding.embedding_cache import EmbeddingCache
    from pipeline.coding.training import TrainingConfig, seed_annotations, train_model

    book = load_codebook("garvin2008")
    cache = EmbeddingCache(shared_embedding_cache / "embeddings.sqlite")
    result = train_model(seed_annotations(book), book, models_dir=tmp_path_factory.mktemp("flow-models"), cache=cache,
                         config=TrainingConfig(encoder="use", n_splits=3))
    cache.close()
    return result.path


@pytest.fixture()
def small_demo_corpus(tmp_path: Path) -> Path:
    """Three demo interviews (Eschveld's policy officer and manager, Hulsterlo's policy
    officer) with the demo's metadata.csv, copied to a fresh folder."""
    import shutil

    corpus = tmp_path / "corpus"
    (corpus / "interviews").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "data" / "demo" / "metadata.csv", corpus / "metadata.csv")
    for name in SMALL_DEMO:
        shutil.copy(PROJECT_ROOT / "data" / "demo" / name, corpus / name)
    return corpus


@pytest.fixture()
def new_pg_database():  # type: ignore[no-untyped-def]
    """A factory of fresh PostgreSQL databases, dropped afterwards; skips without CODEER_TEST_PG."""
    url = _pg_url()
    if not url:
        pytest.skip("CODEER_TEST_PG is not set (.ci/run starts a local PostgreSQL and sets it)")
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def create() -> str:
        name = f"codeer_test_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)

    yield create
    with admin.connect() as connection:
        for name in names:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture()
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A headless Chromium (Debian's chromium and chromium-driver); skips where they are absent."""
    if not CHROMIUM.exists() or not Path(CHROMEDRIVER).exists():
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
