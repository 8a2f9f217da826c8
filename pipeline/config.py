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
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class InputLimits:
    """How much codeer reads from one untrusted file before it refuses it (issue 20).

    Archives (``.docx``, ``.qdpx``) are checked on their table of contents before anything is
    unpacked, and read in chunks that stop at the limit, so a zip bomb costs neither time nor
    memory.

    Parameters
    ----------
    max_file_bytes : int
        Largest ``.docx``, ``.pdf`` or ``.qdpx`` file on disk.
    max_text_bytes : int
        Largest text of one transcript or document: a ``.txt`` file, the text of a ``.docx``
        or ``.pdf``, a text source in a ``.qdpx``.
    max_unpacked_bytes : int
        Most bytes unpacked from one archive, all members together (one member included).
    max_compression_ratio : float
        Largest ratio of unpacked to packed size of one archive member.
    max_members : int
        Most members in one archive.
    """

    max_file_bytes: int = 200 * MB
    max_text_bytes: int = 10 * MB
    max_unpacked_bytes: int = 200 * MB
    max_compression_ratio: float = 100.0
    max_members: int = 10_000


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
    def regions_file(self) -> Path | None:
        """The workspace's municipality -> region file (``regions.yaml``, ``.yml`` or ``.csv``), if any."""
        found = (self.home / name for name in ("regions.yaml", "regions.yml", "regions.csv"))
        return next((path for path in found if path.is_file()), None)

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
    device: str = Field("auto", description="Encoder device: 'cpu', 'cuda', 'cuda:N' or 'auto' (a CUDA GPU when torch sees one).")
    review_threshold: float = Field(0.45, ge=0, le=1, description="Top probability under which an item goes to review (review.priority.MIN_CONFIDENCE).")
    max_file_mb: float = Field(200, gt=0, description="Largest .docx, .pdf or .qdpx file read, in MB (issue 20).")
    max_text_mb: float = Field(10, gt=0, description="Largest text of one transcript or document (a .txt file, the text of a .docx, .pdf or .qdpx source), in MB.")
    max_unpacked_mb: float = Field(200, gt=0, description="Most MB unpacked from one archive (.docx, .qdpx), all members together.")
    max_compression_ratio: float = Field(100, ge=1, description="Largest unpacked-to-packed size ratio of an archive member; zip bombs have about 1000.")
    max_archive_members: int = Field(10_000, ge=1, description="Most members in one archive (.docx, .qdpx).")
    session_idle_minutes: int = Field(60, ge=1, description="Review page: a session unused this long ends (minutes).")
    session_max_hours: int = Field(8, ge=1, description="Review page: a session ends this long after login, used or not (hours).")
    trusted_proxies: list[str] = Field(default_factory=list, description="Review page: addresses of reverse proxies whose X-Forwarded-For is believed; empty: none.")
    review_budget: int | None = Field(
        None, ge=0, description="Review items handed out per night (claimed ones included); default 10% of the "
                                "active utterances (review.plan.DEFAULT_BUDGET_SHARE).")
    review_batch_size: int = Field(10, ge=1, description="Review items per batch: one sitting of an annotator.")
    review_url: str | None = Field(
        None, pattern=r"^https?://\S+$",
        description="Address of the review web app (codeer serve-review), e.g. http://localhost:8000: the report "
                    "links each fragment to its place in the transcript there. Unset: the report names transcript and turn.")
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

    @property
    def input_limits(self) -> InputLimits:
        """The limits on untrusted input files, in bytes."""
        return InputLimits(
            max_file_bytes=int(self.max_file_mb * MB), max_text_bytes=int(self.max_text_mb * MB),
            max_unpacked_bytes=int(self.max_unpacked_mb * MB), max_compression_ratio=self.max_compression_ratio,
            max_members=self.max_archive_members)

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
