"""The typed run configuration passed to every flow, and per-process resources built from it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field


class RunConfig(BaseModel):
    """Everything a run needs, validated once; picklable so it travels to Dask workers."""

    folders: list[Path] = Field(default_factory=list, description="Input folders (or files) with transcripts.")
    home: Path = Field(Path("."), description="Workspace: codeer.db, models/, reports/, cache/.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<home>/codeer.db.")
    model: str = Field("current", description="current, a model id, or a model folder.")
    codebook_version: str = Field("garvin2008")
    encoder_threads: int | None = Field(None, ge=1)
    device: str = Field("cpu")
    batch_size: int = Field(2000, ge=1, description="Utterances per classification batch.")
    review_threshold: float = Field(0.6, ge=0, le=1)
    window: int = Field(1, ge=1, le=10)
    fictional: bool = Field(False, description="Mark the report as made from fictional data.")
    region_name: str = Field("de regio")
    min_new_corrections: int = Field(20, ge=1, description="Retrain when at least this many reviewed corrections are new.")

    @property
    def url(self) -> str:
        """The database URL in use."""
        return self.database_url or f"sqlite:///{(self.home / 'codeer.db').resolve()}"


# Loaded once per process (a flow run, or a Dask worker), not per task.
@lru_cache(maxsize=4)
def store_for(url: str):  # type: ignore[no-untyped-def]
    """The store at ``url``."""
    from pipeline.store import open_store

    return open_store(url)


@lru_cache(maxsize=2)
def segmenter_for(window: int):  # type: ignore[no-untyped-def]
    """The sentence splitter."""
    from pipeline.segment import load_segmenter

    return load_segmenter(window)


@lru_cache(maxsize=2)
def encoder_for(name: str, threads: int | None, device: str):  # type: ignore[no-untyped-def]
    """The encoder a model was trained with."""
    from pipeline.embed import load_encoder

    return load_encoder(name, threads=threads, device=device)


def cache_for(home: Path):  # type: ignore[no-untyped-def]
    """The workspace's embedding cache."""
    from pipeline.store import EmbeddingCache

    return EmbeddingCache(home / "cache" / "embeddings.sqlite")
