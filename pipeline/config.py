"""Settings and the workspace layout.

:class:`Settings` is the one settings class: defaults in code, overridden by the workspace's
``codeer.toml`` (when present), then by ``CODEER_*`` environment variables, then by flags
(keyword arguments). :class:`WorkspacePaths` is the one place that knows where a workspace keeps
its database, models, reports and caches (issue 15).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE = "codeer.toml"


@dataclass(frozen=True, slots=True)
class WorkspacePaths:
    """Where a workspace keeps its files.

    Parameters
    ----------
    home : Path
        The workspace folder.
    cache_root : Path, optional
        A cache folder elsewhere (a local disk on each Dask worker machine); default ``<home>/cache``.

    Examples
    --------
    >>> WorkspacePaths(Path("werk")).embedding_cache_file.as_posix()
    'werk/cache/embeddings.sqlite'
    """

    home: Path
    cache_root: Path | None = None

    @property
    def config_file(self) -> Path:
        """The workspace's optional settings file (``codeer.toml``)."""
        return self.home / CONFIG_FILE

    @property
    def database_file(self) -> Path:
        """The SQLite database of a workspace without a database URL."""
        return self.home / "codeer.db"

    @property
    def default_database_url(self) -> str:
        """The SQLAlchemy URL of :attr:`database_file` (absolute)."""
        return f"sqlite:///{self.database_file.resolve()}"

    @property
    def models_dir(self) -> Path:
        """Trained models, one folder each, and ``CURRENT``."""
        return self.home / "models"

    @property
    def reports_dir(self) -> Path:
        """Ratings, reports, run summaries and evaluations."""
        return self.home / "reports"

    @property
    def cache_dir(self) -> Path:
        """Caches (embeddings)."""
        return self.cache_root if self.cache_root is not None else self.home / "cache"

    @property
    def embedding_cache_file(self) -> Path:
        """The embedding cache (SQLite), keyed by encoder id and text hash."""
        return self.cache_dir / "embeddings.sqlite"

    @property
    def key_file(self) -> Path:
        """The workspace key (mode 0600) that keys respondent pseudonyms; never exported."""
        return self.home / "codeer.key"

    @property
    def prefect_home(self) -> Path:
        """The workspace's own Prefect home for runs without a Prefect server."""
        return self.home / ".prefect"


class _WorkspaceToml(TomlConfigSettingsSource):
    """``codeer.toml`` in the workspace that the flags or the environment name (else the current folder)."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource) -> None:
        flags = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        home = Path(flags.get("home") or os.environ.get("CODEER_HOME") or ".")
        super().__init__(settings_cls, toml_file=WorkspacePaths(home).config_file)


class Settings(BaseSettings):
    """One typed settings object, validated once and saved with every run.

    Precedence: defaults < ``<home>/codeer.toml`` < ``CODEER_*`` environment variables < flags.

    Examples
    --------
    >>> Settings(home=Path("werk"), encoder="use").paths.models_dir.as_posix()
    'werk/models'
    """

    model_config = SettingsConfigDict(env_prefix="CODEER_", extra="ignore")

    home: Path = Field(Path("."), description="Workspace folder: codeer.db, models/, reports/, cache/.")
    db: SecretStr | None = Field(None, description="SQLAlchemy URL; default sqlite:///<home>/codeer.db.")
    codebook_version: str = Field("garvin2008", description="Codebook version the project codes with.")
    window: int = Field(1, ge=1, le=10, description="Sentences per utterance (a window within one turn).")
    encoder: str = Field("default", description="Encoder name or model folder; 'default' picks the packaged best.")
    threads: int | None = Field(None, ge=1, description="CPU threads for the encoder (default: all cores).")
    device: str = Field("cpu", description="'cpu' or 'cuda' (sentence-transformers backend only).")
    review_threshold: float = Field(0.45, ge=0, le=1, description="Top probability under which an item goes to review (review.priority.MIN_CONFIDENCE).")
    privacy_allow: list[str] = Field(default_factory=list, description="Words de-identification never takes for a person's name (organisations, places, project terms).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then the environment, then the workspace's ``codeer.toml``."""
        return init_settings, env_settings, _WorkspaceToml(settings_cls, init_settings)

    @property
    def paths(self) -> WorkspacePaths:
        """The workspace layout."""
        return WorkspacePaths(self.home)

    @property
    def database_url(self) -> str:
        """The database URL in use."""
        if self.db is not None:
            return self.db.get_secret_value()
        return self.paths.default_database_url

    def public_dict(self) -> dict[str, Any]:
        """Settings as JSON-ready values, with the database password masked."""
        values = self.model_dump(mode="json", exclude={"db"})
        values["database_url"] = masked_url(self.database_url)
        return values


def masked_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
