"""Settings and the workspace layout (pipeline/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings, WorkspacePaths, masked_url


def test_config_workspace_paths_layout(tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    assert (paths.models_dir, paths.reports_dir, paths.embedding_cache_file, paths.config_file) == (
        tmp_path / "models", tmp_path / "reports", tmp_path / "cache" / "embeddings.sqlite", tmp_path / "codeer.toml")
    assert paths.default_database_url == f"sqlite:///{(tmp_path / 'codeer.db').resolve()}"
    assert WorkspacePaths(tmp_path, tmp_path / "local").embedding_cache_file == tmp_path / "local" / "embeddings.sqlite"


def test_config_settings_flags_over_environment_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CODEER_HOME", "CODEER_ENCODER", "CODEER_WINDOW", "CODEER_DB"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "codeer.toml").write_text('encoder = "use"\nwindow = 2\n', encoding="utf-8")
    assert (Settings(home=tmp_path).encoder, Settings(home=tmp_path).window) == ("use", 2)
    monkeypatch.setenv("CODEER_ENCODER", "e5")
    assert Settings(home=tmp_path).encoder == "e5"
    assert Settings(home=tmp_path, encoder="minilm").encoder == "minilm"
    monkeypatch.setenv("CODEER_HOME", str(tmp_path))  # the workspace named by the environment has the file
    assert Settings().window == 2
    assert Settings(home=tmp_path / "elsewhere").window == 1


def test_config_settings_mask_the_database_password(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, db="postgresql+psycopg://codeer:geheim@db/codeer")
    assert settings.public_dict()["database_url"] == "postgresql+psycopg://***@db/codeer"
    assert masked_url("sqlite:///x.db") == "sqlite:///x.db"
