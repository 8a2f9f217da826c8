"""The GPU experiments, run on the device machine over the bundle that ``prepare.py`` wrote.

A. Does SetFit-style contrastive fine-tuning of multilingual-e5-small pay on the real-text
   yardstick? Frozen encoder vs fine-tuned encoder, each followed by the same logistic-regression
   head, plus the zero-shot prototype similarity; fine-tuned on the knowledge set only and on
   seed + knowledge, several seeds each.
B. Encoder throughput on the demo utterances: fp32 (with and without TF32), fp16, bf16; batch
   sizes 64/256/1024; texts sorted by length.

Needs only numpy, torch, transformers and scikit-learn (no codeer): the texts arrive as token
ids, the model as raw 4-bit blocks. ``--cpu --tiny`` runs everything end to end on a CPU on a
small subset (to test the script before spending device time).

Run there: ``python3 .gpu/device.py --bundle .gpu --out $OUT``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

# fixed before looking at the yardstick: SetFit's defaults (body lr 2e-5, 20 pair iterations,
# 1 epoch, CosineSimilarityLoss) with batch 32 pairs instead of 16 and 10% linear warm-up
FT_LR = 2e-5
FT_ITERATIONS = 20
FT_BATCH = 32
FT_EPOCHS = 1
FT_WARMUP = 0.1
LR_C = 1.0


# --------------------------------------------------------------------------- bundle and model

class Bundle:
    """The files ``prepare.py`` wrote: model blocks, token ids, labels."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        self.model = np.load(self.folder / "model.npz")
        self.texts = np.load(self.folder / "texts.npz")
        self.pad_id = int(self.meta["pad_id"])

    def ids(self, name: str) -> list[np.ndarray]:
        """Token ids (compact vocabulary) of each text of set ``name``."""
        flat, lengths = self.texts[name + ":ids"], self.texts[name + ":len"]
        return np.split(flat, np.cumsum(lengths)[:-1])


def dequantise_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Rows of Q4_0 blocks (fp16 scale + 16 bytes of nibbles per 32 weights) to float32 rows."""
    rows = blocks.shape[0]
    b = blocks.reshape(-1, 18)
    scale = np.ascontiguousarray(b[:, :2]).view("<f2").astype(np.float32)
    qs = b[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(rows, -1)


def load_model(bundle: Bundle, device: torch.device):  # type: ignore[no-untyped-def]
    """A ``transformers`` BertModel (no pooler) with the bundle's weights, fp32, in eval mode."""
    from transformers import BertConfig, BertModel

    config = BertConfig(**json.loads(bytes(bundle.model["config"]).decode()))
    state = {}
    for key in bundle.model.files:
        if key.startswith("q4:"):
            state[key[3:]] = torch.from_numpy(dequantise_q4_0(bundle.model[key]))
        elif key.startswith("f32:"):
            state[key[4:]] = torch.from_numpy(bundle.model[key].copy())
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")
    return model.to(device).eval()


def _batch(ids_lists: list[np.ndarray], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in ids_lists)
    ids = np.full((len(ids_lists), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids_lists), width), dtype=np.int64)
    for i, r in enumerate(ids_lists):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return torch.from_numpy(ids).to(device, non_blocking=True), torch.from_numpy(mask).to(device, non_blocking=True)


def _pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """e5's recipe: mean over the real tokens, then L2 normalisation (in fp32)."""
    m = mask.unsqueeze(-1).to(torch.float32)
    mean = (hidden.to(torch.float32) * m).sum(1) / m.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(mean, dim=-1)


def encode(model, ids_lists: list[np.ndarray], pad_id: int, *, batch_size: int, dtype: torch.dtype,  # type: ignore[no-untyped-def]
           device: torch.device, sort: bool = True) -> np.ndarray:
    """Normalised embeddings (float32, input order). ``model`` must already be in ``dtype``."""
    order = np.argsort([-len(r) for r in ids_lists], kind="stable") if sort else np.arange(len(ids_lists))
    out = torch.empty((len(ids_lists), model.config.hidden_size), dtype=torch.float32, device=device)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            ids, mask = _batch([ids_lists[i] for i in idx], pad_id, device)
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            out[torch.from_numpy(idx).to(device)] = _pool(hidden, mask)
    return out.cpu().numpy()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- B: throughput

def throughput(bundle: Bundle, base, device: torch.device, *, batch_sizes: list[int], dtypes: list[str],  # type: ignore[no-untyped-def]
               texts: int | None, repeats: int) -> list[dict]:
    """Texts per second encoding the demo utterances: one warm-up pass, then ``repeats`` timed
    passes (median), per dtype and batch size; sorted by length, plus one unsorted contrast."""
    demo = bundle.ids("demo")[:texts]
    n_tokens = int(sum(len(r) for r in demo))
    rows = []
    reference = None
    for name in dtypes:
        dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
        torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
        torch.backends.cudnn.allow_tf32 = name == "tf32"
        model = copy.deepcopy(base).to(dtype)
        cases = [(bs, True) for bs in batch_sizes] + ([(batch_sizes[1], False)] if name == "fp16" else [])
        for bs, sort in cases:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            vectors = encode(model, demo, bundle.pad_id, batch_size=bs, dtype=dtype, device=device, sort=sort)
            times = []
            for _ in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                encode(model, demo, bundle.pad_id, batch_size=bs, dtype=dtype, device=device, sort=sort)
                _sync(device)
                times.append(time.perf_counter() - t0)
            if reference is None:
                reference = vectors
            cos = np.sum(vectors * reference, axis=1)
            wall = statistics.median(times)
            row = {"dtype": name, "batch": bs, "sorted": sort, "texts": len(demo), "tokens": n_tokens,
                   "seconds": round(wall, 4), "texts_per_s": round(len(demo) / wall, 1),
                   "tokens_per_s": round(n_tokens / wall), "cos_to_fp32_min": round(float(cos.min()), 5),
                   "peak_mem_mib": round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else None}
            print("throughput", row, flush=True)
            rows.append(row)
        del model
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return rows


# --------------------------------------------------------------------------- A: coding on the yardstick

def yard_scores(scores: np.ndarray, labels: list[str], gold: list[str], also: list[list[str]]) -> dict:
    """Top-1 (strict, lenient), top-3 and macro-F1 over ``labels`` on the items whose code is one
    of them, as ``pipeline.coding.yardstick._rank_scores`` does."""
    from sklearn.metrics import f1_score

    rows = [i for i, g in enumerate(gold) if g in labels]
    top3 = [[labels[j] for j in np.argsort(-scores[i], kind="stable")[:3]] for i in rows]
    first = [t[0] for t in top3]
    g = [gold[i] for i in rows]
    return {"n": len(rows),
            "top1": round(float(np.mean([f == x for f, x in zip(first, g)])), 3),
            "top1_lenient": round(float(np.mean([f == gold[i] or f in also[i] for f, i in zip(first, rows)])), 3),
            "top3": round(float(np.mean([x in t for x, t in zip(g, top3)])), 3),
            "macro_f1": round(float(f1_score(g, first, labels=labels, average="macro", zero_division=0)), 3)}


def head_scores(X: np.ndarray, label_sets: list[list[str]], weights: np.ndarray, Z: np.ndarray,
                meta: dict) -> dict:
    """Logistic regression (balanced, C fixed) on ``X`` (one row per text and code; ``none`` is a
    class), scored on the yardstick vectors ``Z`` over the 13 incentives."""
    from sklearn.linear_model import LogisticRegression

    rows, y, w = [], [], []
    for i, labels in enumerate(label_sets):
        for code in labels:
            rows.append(i)
            y.append(code)
            w.append(weights[i])
    clf = LogisticRegression(C=LR_C, class_weight="balanced", max_iter=3000)
    clf.fit(X[rows], y, sample_weight=np.asarray(w))
    proba = clf.predict_proba(Z)
    classes = list(clf.classes_)
    incentives = meta["incentives"]
    cols = [classes.index(c) for c in incentives]  # every incentive has training texts
    return yard_scores(proba[:, cols], incentives, meta["yard_codes"], meta["yard_also"])


def evaluate_encoder(model, bundle: Bundle, device: torch.device, subset: dict) -> dict:  # type: ignore[no-untyped-def]
    """Zero-shot prototype similarity and the LR head on knowledge only / seed + knowledge."""
    meta = bundle.meta
    vec = {name: encode(model, [bundle.ids(name)[i] for i in subset[name]], bundle.pad_id, batch_size=256,
                        dtype=torch.float32, device=device) for name in ("seed", "know", "yard", "proto")}
    zero = yard_scores(vec["yard"] @ vec["proto"].T, meta["incentives"], meta["yard_codes"], meta["yard_also"])
    seed_l = [meta["seed_labels"][i] for i in subset["seed"]]
    know_l = [meta["know_labels"][i] for i in subset["know"]]
    know_w = np.array([meta["know_weights"][i] for i in subset["know"]])
    out = {"zero_shot": zero,
           "lr_know": head_scores(vec["know"], know_l, know_w, vec["yard"], meta),
           "lr_seed_know": head_scores(np.vstack([vec["seed"], vec["know"]]), seed_l + know_l,
                                       np.concatenate([np.ones(len(seed_l)), know_w]), vec["yard"], meta)}
    print("scores", json.dumps(out), flush=True)
    return out


def sample_pairs(label_sets: list[list[str]], iterations: int, rng: np.random.Generator) -> list[tuple[int, int, float]]:
    """SetFit-style pairs: per text and iteration one positive (shares a code) and one negative
    (shares none). Texts whose code no other text carries get no positive."""
    by_code: dict[str, list[int]] = {}
    for i, labels in enumerate(label_sets):
        for c in labels:
            by_code.setdefault(c, []).append(i)
    sets = [set(s) for s in label_sets]
    n = len(label_sets)
    pairs = []
    for _ in range(iterations):
        for i in range(n):
            code = label_sets[i][rng.integers(len(label_sets[i]))]
            others = by_code[code]
            if len(others) > 1:
                j = i
                while j == i:
                    j = others[rng.integers(len(others))]
                pairs.append((i, j, 1.0))
            for _ in range(50):
                j = int(rng.integers(n))
                if not sets[i] & sets[j]:
                    pairs.append((i, j, 0.0))
                    break
    order = rng.permutation(len(pairs))
    return [pairs[k] for k in order]


def fine_tune(base, ids_lists: list[np.ndarray], label_sets: list[list[str]], pad_id: int, device: torch.device,  # type: ignore[no-untyped-def]
              *, seed: int, iterations: int, max_steps: int | None = None) -> tuple[object, dict]:
    """Contrastive fine-tuning (CosineSimilarityLoss on sampled pairs, AdamW, linear warm-up and
    decay; bf16 autocast on a GPU). Returns the tuned copy (eval mode) and its log."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pairs = sample_pairs(label_sets, iterations, rng) * FT_EPOCHS
    steps = math.ceil(len(pairs) / FT_BATCH)
    if max_steps is not None:
        steps = min(steps, max_steps)
    model = copy.deepcopy(base).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=FT_LR, weight_decay=0.01, fused=device.type == "cuda")
    warm = max(1, int(FT_WARMUP * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    losses = []
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(steps):
        chunk = pairs[step * FT_BATCH:(step + 1) * FT_BATCH]
        texts = [ids_lists[a] for a, _, _ in chunk] + [ids_lists[b] for _, b, _ in chunk]
        ids, mask = _batch(texts, pad_id, device)
        target = torch.tensor([t for _, _, t in chunk], device=device)
        with autocast:
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        v = _pool(hidden, mask)
        cos = (v[:len(chunk)] * v[len(chunk):]).sum(-1)
        loss = torch.nn.functional.mse_loss(cos, target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append((step, round(float(loss.detach()), 4)))
    _sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    log = {"pairs": len(pairs), "steps": steps, "batch_pairs": FT_BATCH, "seconds": round(wall, 2),
           "cpu_seconds": round(cpu, 2),
           "s_per_step": round(wall / max(1, steps), 4), "loss": losses}
    print("fine-tune", {k: v for k, v in log.items() if k != "loss"}, "loss", losses[0], losses[-1], flush=True)
    return model.eval(), log


# --------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (test run)")
    parser.add_argument("--tiny", action="store_true", help="a small subset of everything (test run)")
    parser.add_argument("--seeds", type=int, default=3, help="fine-tuning repeats per training material")
    parser.add_argument("--budget", type=float, default=330.0,
                        help="seconds after which no new fine-tuning run starts")
    parser.add_argument("--time-steps", type=int, default=0,
                        help="only time this many fine-tuning steps (for the CPU estimate) and stop")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-frozen", action="store_true", help="no frozen-encoder scores (a rerun for more seeds)")
    parser.add_argument("--first-seed", type=int, default=0, help="fine-tuning seeds run from here to --seeds - 1")
    parser.add_argument("--materials", default="know,seed_know", help="comma-separated: know, seed_know")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on fine-tuning steps (test runs)")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device("cpu" if args.cpu or not torch.cuda.is_available() else "cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    bundle = Bundle(args.bundle)
    meta = bundle.meta
    results: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                     "torch": torch.__version__, "threads": torch.get_num_threads(), "tiny": args.tiny,
                     "hyperparameters": {"lr": FT_LR, "iterations": FT_ITERATIONS, "batch_pairs": FT_BATCH,
                                         "epochs": FT_EPOCHS, "warmup": FT_WARMUP, "loss": "CosineSimilarity (MSE)",
                                         "head": f"LogisticRegression(C={LR_C}, balanced)"},
                     "n_texts": meta["n_texts"], "vocab_compact": meta["vocab_compact"]}

    def save() -> None:
        results["elapsed_s"] = round(time.perf_counter() - started, 1)
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")

    import transformers
    results["transformers"] = transformers.__version__
    base = load_model(bundle, device)
    rng = np.random.default_rng(0)
    full = {name: np.arange(meta["n_texts"][name]) for name in ("seed", "know", "yard", "proto")}
    subset = ({"seed": np.sort(rng.choice(full["seed"], 80, replace=False)),
               "know": np.sort(rng.choice(full["know"], 120, replace=False)), "yard": full["yard"],
               "proto": full["proto"]} if args.tiny else full)
    iterations = 1 if args.tiny else FT_ITERATIONS

    if args.time_steps:
        ids = bundle.ids("seed") + bundle.ids("know")
        labels = meta["seed_labels"] + meta["know_labels"]
        _, log = fine_tune(base, ids, labels, bundle.pad_id, device, seed=0, iterations=1, max_steps=args.time_steps)
        results["time_steps"] = log
        save()
        return

    if not args.skip_throughput:
        results["throughput"] = throughput(
            bundle, base, device, batch_sizes=[8, 16] if args.tiny else [64, 256, 1024],
            dtypes=["fp32", "bf16"] if device.type == "cpu" else ["fp32", "tf32", "fp16", "bf16"],
            texts=64 if args.tiny else None, repeats=1 if args.tiny else 3)
        save()

    if not args.skip_frozen:
        results["frozen"] = evaluate_encoder(base, bundle, device, subset)
        save()

    materials = {
        "know": ([bundle.ids("know")[i] for i in subset["know"]], [meta["know_labels"][i] for i in subset["know"]]),
        "seed_know": ([bundle.ids("seed")[i] for i in subset["seed"]] + [bundle.ids("know")[i] for i in subset["know"]],
                      [meta["seed_labels"][i] for i in subset["seed"]] + [meta["know_labels"][i] for i in subset["know"]]),
    }
    materials = {name: materials[name] for name in args.materials.split(",")}
    results["fine_tuned"] = []
    for seed in range(args.first_seed, args.seeds):
        for material, (ids, labels) in materials.items():
            if time.perf_counter() - started > args.budget:
                results.setdefault("skipped", []).append({"material": material, "seed": seed})
                continue
            tuned, log = fine_tune(base, ids, labels, bundle.pad_id, device, seed=seed, iterations=iterations,
                                   max_steps=args.max_steps or (3 if args.tiny else None))
            scores = evaluate_encoder(tuned, bundle, device, subset)
            results["fine_tuned"].append({"material": material, "seed": seed, "train": log, "scores": scores})
            del tuned
            if device.type == "cuda":
                torch.cuda.empty_cache()
            save()
    save()
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
