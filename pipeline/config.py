"""Settings: defaults in code, overridden by ``CODEER_*`` environment variables and CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One typed settings object, validated once and saved with every run."""

    model_config = SettingsConfigDict(env_prefix="CODEER_", extra="ignore")

    home: Path = Field(Path("."), description="Workspace folder: codeer.db, models/, reports/, cache/.")
    db: SecretStr | None = Field(None, description="SQLAlchemy URL; default sqlite:///<home>/codeer.db.")
    codebook_version: str = Field("garvin2008", description="Codebook version the project codes with.")
    window: int = Field(1, ge=1, le=10, description="Sentences per utterance (a window within one turn).")
    encoder: str = Field("default", description="Encoder name or model folder; 'default' picks the packaged best.")
    threads: int | None = Field(None, ge=1, description="CPU threads for the encoder (default: all cores).")
    device: str = Field("cpu", description="'cpu' or 'cuda' (sentence-transformers backend only).")
    batch_size: int = Field(64, ge=1, description="Texts per encoder call.")
    review_threshold: float = Field(0.45, ge=0, le=1, description="Top probability under which an item goes to review (review.priority.MIN_CONFIDENCE).")

    @property
    def database_url(self) -> str:
        """The database URL in use."""
        if self.db is not None:
            return self.db.get_secret_value()
        return f"sqlite:///{(self.home / 'codeer.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        """Folder of trained models in the workspace."""
        return self.home / "models"

    @property
    def reports_dir(self) -> Path:
        """Folder of reports in the workspace."""
        return self.home / "reports"

    @property
    def cache_dir(self) -> Path:
        """Folder of caches (embeddings) in the workspace."""
        return self.home / "cache"

    def public_dict(self) -> dict[str, object]:
        """Settings as JSON-ready values, with the database password masked."""
        values = self.model_dump(mode="json", exclude={"db"})
        url = self.database_url
        if "@" in url:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://***@{rest.split('@', 1)[1]}"
        values["database_url"] = url
        return values
