"""Training jobs: the seed model a fresh workspace gets when it has none."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.coding.embedding_cache import EmbeddingCache
from pipeline.coding.models import current_model_id
from pipeline.coding.training import TrainingConfig, load_or_train_current
from pipeline.corpus.annotations import read_annotations
from pipeline.errors import ModelNotFoundError
from pipeline.resources import packaged_models_dir, seed_dir

# two transcripts, two folds: a real training run that is quick on two cores
FAST = TrainingConfig(encoder="use", n_splits=2, min_examples=3)


def test_training_load_or_train_current_loads_the_project_model(tmp_path: Path) -> None:
    calls: list[str] = []
    loaded, trained = load_or_train_current(
        "current", tmp_path / "models", codebook_version="garvin2008", config=FAST,
        training_annotations=lambda book: calls.append("annotations") or [],
        before_training=lambda: calls.append("before"))
    assert (loaded.model_id, loaded.path.parent, trained) == (current_model_id(packaged_models_dir()), packaged_models_dir(), None)
    assert calls == [] and not (tmp_path / "models").exists()


def test_training_load_or_train_current_trains_only_for_current(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no model 'garvin2008-nope'"):
        load_or_train_current("garvin2008-nope", tmp_path / "models", codebook_version="garvin2008", search_dirs=(),
                              before_training=lambda: pytest.fail("trained for a model id"))
    assert not (tmp_path / "models").exists()


def test_training_load_or_train_current_trains_and_promotes_the_seed_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    calls: list[str] = []

    def open_cache() -> EmbeddingCache:
        calls.append("cache")
        return EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite")

    def annotations(book):  # type: ignore[no-untyped-def]
        calls.append(f"annotations {book.version}")
        return read_annotations([seed_dir() / "BE.jsonl", seed_dir() / "BK.jsonl"], book)

    loaded, trained = load_or_train_current("current", models, codebook_version="garvin2008", config=FAST,
                                            training_annotations=annotations, open_cache=open_cache,
                                            search_dirs=(), before_training=lambda: calls.append("before"))
    assert calls == ["before", "annotations garvin2008", "cache"]
    assert trained is not None and trained.promoted and loaded.model_id == trained.model_id
    assert current_model_id(models) == loaded.model_id and loaded.card["encoder"] == "use"
    again, retrained = load_or_train_current("current", models, codebook_version="garvin2008", search_dirs=(),
                                             before_training=lambda: pytest.fail("trained twice"))
    assert (again.model_id, retrained) == (loaded.model_id, None)


def test_review_decisions_of_another_codebook_version_are_left_out_aloud(monkeypatch, caplog) -> None:
    import logging

    import pipeline.review
    from pipeline.codebook import load_codebook
    from pipeline.coding.training import reviewed_annotations
    from pipeline.records import Annotation

    def decision(version: str) -> Annotation:
        return Annotation(utterance_id=f"u-{version}", source_file="a.txt", content_hash="h", start=0, end=4,
                          text="tekst", codings=(), annotator="anna", created_at="2026-12-04T10:00:00+00:00",
                          codebook_version=version, origin="review")

    monkeypatch.setattr(pipeline.review, "review_annotations",
                        lambda store: [decision("garvin2008"), decision("scriptie2017"), decision("scriptie2017")])
    with caplog.at_level(logging.WARNING, logger="pipeline.coding.training"):
        kept = reviewed_annotations(None, load_codebook("garvin2008"))  # type: ignore[arg-type]
    assert [a.utterance_id for a in kept] == ["u-garvin2008"]
    assert "2 review decision(s) of codebook version(s) scriptie2017 left out" in caplog.text
