"""The typed run configuration passed to every flow, and per-process resources built from it."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from pipeline.config import InputLimits, Settings, WorkspacePaths

if TYPE_CHECKING:
    from pipeline.coding import EmbeddingCache, LoadedModel
    from pipeline.coding.embed import Encoder
    from pipeline.corpus import Deidentifier, Pseudonymizer, Segmenter
    from pipeline.store import Store
    from prefect.task_runners import TaskRunner


class RunConfig(BaseModel):
    """Everything a run needs, validated once; picklable so it travels to Dask workers.

    The database URL is a secret: it is masked wherever Prefect or the ``runs`` table
    records the parameters, so a served deployment leaves it out and reads ``CODEER_DB``
    from the serving process instead.
    """

    folders: list[Path] = Field(default_factory=list, description="Input folders (or files) with transcripts.")
    home: Path = Field(Path("."), validate_default=True, description="Workspace: codeer.db, models/, reports/, cache/.")
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL; default $CODEER_DB where the flow runs, else sqlite:///<home>/codeer.db.")
    model: str = Field("current", description="current, a model id, or a model folder.")
    codebook_version: str = Field("garvin2008")
    encoder: str = Field("default", description="Encoder for a model trained by the flow (seed model, retraining).")
    encoder_threads: int | None = Field(None, ge=1)
    device: str = Field("auto")
    batch_size: int = Field(2000, ge=1, description="Utterances per classification batch.")
    review_threshold: float = Field(0.45, ge=0, le=1)
    review_budget: int | None = Field(None, ge=0, description="Review items per night; default 10% of the utterances.")
    review_batch_size: int = Field(10, ge=1)
    window: int = Field(1, ge=1, le=10)
    privacy_allow: list[str] = Field(default_factory=list, description="Words de-identification never takes for names.")
    fictional: bool = Field(False, description="Mark the report as made from fictional data.")
    region_name: str = Field("de regio")
    review_url: str | None = Field(None, description="The review web app's address; the report links fragments to it.")
    show_progress: bool = Field(False, description="Report each stage's progress on stderr (a bar on a terminal, "
                                                   "plain lines in a log).")
    min_new_corrections: int = Field(20, ge=1, description="Retrain when at least this many reviewed corrections are new.")
    cache_dir: Path | None = Field(
        None, description="Embedding cache folder (default <home>/cache); on Dask workers of several machines a "
                          "local disk that exists on each of them.")
    dask_address: str | None = Field(None, description="Run per-transcript tasks on this Dask scheduler (tcp://host:8786).")
    dask_workers: int | None = Field(None, ge=1, description="Run per-transcript tasks on a local Dask cluster of N worker processes.")
    input_limits: InputLimits = Field(default_factory=InputLimits, description="Limits on untrusted input files (issue 20).")

    @field_validator("home", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # workers and served runs may start elsewhere: pin paths where the run was configured
        return None if value is None else value.expanduser().resolve()

    @field_validator("folders")
    @classmethod
    def _absolute_folders(cls, value: list[Path]) -> list[Path]:
        return [path.expanduser().resolve() for path in value]

    @model_validator(mode="after")
    def _one_dask_option(self) -> RunConfig:
        if self.dask_address and self.dask_workers:
            raise ValueError("give dask_address (an existing cluster) or dask_workers (a local one), not both")
        return self

    @classmethod
    def from_settings(cls, settings: Settings, folders: Sequence[Path] = (), **run_options: Any) -> RunConfig:
        """The run configuration of ``settings`` (flags, environment, ``codeer.toml``) plus the
        options of one run (``model``, ``fictional``, the Dask options ...)."""
        return cls(folders=list(folders), home=settings.home,
                   database_url=settings.db,
                   codebook_version=settings.codebook_version, encoder_threads=settings.threads,
                   device=settings.device, review_threshold=settings.review_threshold, window=settings.window,
                   review_budget=settings.review_budget, review_batch_size=settings.review_batch_size,
                   encoder=settings.encoder, input_limits=settings.input_limits, review_url=settings.review_url,
                   privacy_allow=list(settings.privacy_allow), **run_options)

    @property
    def url(self) -> str:
        """The database URL in use."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return os.environ.get("CODEER_DB") or self.paths.default_database_url

    @property
    def paths(self) -> WorkspacePaths:
        """The workspace layout (with the run's cache folder)."""
        return WorkspacePaths(self.home, self.cache_dir)

    @property
    def uses_dask(self) -> bool:
        """Whether per-transcript tasks run on Dask worker processes."""
        return bool(self.dask_address or self.dask_workers)


def task_runner_for(config: RunConfig) -> TaskRunner[Any]:
    """The task runner for ``config``: one task at a time in-process, or Dask.

    Raises :class:`~pipeline.errors.ConfigError` when Dask workers would share a SQLite file.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    if not config.uses_dask:
        # one task at a time: spaCy pipelines and SQLite writers are not made for threads; Dask scales out
        return ThreadPoolTaskRunner(max_workers=1)
    from pipeline.errors import ConfigError

    if config.url.startswith("sqlite"):
        raise ConfigError(
            "Dask workers are separate processes (often on other machines) and cannot share a SQLite database. "
            "Give a PostgreSQL database with --db postgresql+psycopg://user:password@host/codeer (or CODEER_DB), "
            "or run without --dask-address/--dask-workers.")
    from prefect.settings import PREFECT_API_URL
    from prefect_dask.task_runners import DaskTaskRunner

    if config.dask_address:
        if not PREFECT_API_URL.value():
            raise ConfigError(
                "Dask workers on other machines report to Prefect: start 'prefect server start --host 0.0.0.0' on "
                "this machine and set PREFECT_API_URL=http://<this machine>:4200/api here and on every worker.")
        return DaskTaskRunner(address=config.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": config.dask_workers, "threads_per_worker": 1, "processes": True})


# Heavy resources are loaded once per process (a flow run, or a Dask worker), however many runs
# and tasks ask; the lock keeps concurrent tasks from loading the same one twice.
_loading = threading.Lock()


@lru_cache(maxsize=4)
def _store(url: str) -> Store:
    from pipeline.store import open_store

    return open_store(url)


@lru_cache(maxsize=2)
def _segmenter(window: int) -> Segmenter:
    from pipeline.corpus import load_segmenter

    return load_segmenter(window)


@lru_cache(maxsize=2)
def _deidentifier(allow: tuple[str, ...]) -> Deidentifier:
    from pipeline.corpus import load_deidentifier

    return load_deidentifier(allow)


@lru_cache(maxsize=2)
def _model(path: str, codebook_version: str) -> LoadedModel:
    from pipeline.coding import load_model_folder

    return load_model_folder(Path(path), codebook_version=codebook_version)


@lru_cache(maxsize=2)
def _encoder(name: str, threads: int | None, device: str, folder: str | None) -> Encoder:
    from pipeline.coding import load_encoder

    return load_encoder(name, threads=threads, device=device, model_folder=Path(folder) if folder else None)


class RunContext:
    """What a run opens once and hands down to its tasks: the settings (``config``), the
    workspace layout, the store, the sentence splitter, the models and their encoders, and the
    embedding cache.

    Get it with :func:`run_context`. Tasks receive the picklable :class:`RunConfig` and look up
    their process's context, so nothing unpicklable travels to a Dask worker.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.paths = config.paths
        with _loading:
            self.store = _store(config.url)

    def segmenter(self) -> Segmenter:
        """The sentence splitter."""
        with _loading:
            return _segmenter(self.config.window)

    def deidentifier(self) -> Deidentifier:
        """The de-identifier (deduce and the allow-lists)."""
        with _loading:
            return _deidentifier(tuple(self.config.privacy_allow))

    def pseudonyms(self) -> Pseudonymizer:
        """The workspace's respondent code registry and key."""
        from pipeline.corpus import store_pseudonymizer

        return store_pseudonymizer(self.store, self.paths.key_file)

    def model(self, path: str) -> LoadedModel:
        """The model in folder ``path``, checked against the codebook version."""
        with _loading:
            return _model(path, self.config.codebook_version)

    def encoder(self, loaded: LoadedModel) -> Encoder:
        """The encoder ``loaded`` was trained with; refuses another version of it."""
        from pipeline.coding import check_encoder

        # a fine-tuned encoder is its model's own (read from its folder); other models share one
        folder = str(loaded.path) if loaded.card.get("fine_tune") else None
        with _loading:
            encoder = _encoder(loaded.card["encoder"], self.config.encoder_threads, self.config.device, folder)
        check_encoder(loaded, encoder)
        return encoder

    def open_cache(self) -> EmbeddingCache:
        """A new connection to the run's embedding cache (one per task: a SQLite connection stays
        in its thread); close it when done."""
        from pipeline.coding import EmbeddingCache

        return EmbeddingCache(self.paths.embedding_cache_file)


_contexts: dict[tuple[str, str], RunContext] = {}


def run_context(config: RunConfig) -> RunContext:
    """The :class:`RunContext` of ``config`` in this process, opened on first use."""
    key = (config.url, config.model_dump_json(exclude={"database_url"}))
    with _loading:
        context = _contexts.get(key)
    if context is None:
        context = RunContext(config)
        with _loading:
            if len(_contexts) >= 8:  # runs of other configurations in a long-lived process
                _contexts.pop(next(iter(_contexts)))
            context = _contexts.setdefault(key, context)
    return context
