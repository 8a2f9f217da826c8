"""codeer's own GPU path, measured on a GPU machine (issue 22, item 3): `codeer --device cuda classify`.

Runs on the device (see bench/gpu/README.md, "The product's GPU path"); needs codeer's checkout
on PYTHONPATH and its dependencies. For each device and size, in one run:

* ``classify``: the whole command ``codeer --device D classify texts.jsonl --model M`` in a fresh
  workspace (start-up, imports, model, encoder, embedding, coding, writing), wall clock;
* ``raw``: the same encoder's ``encode`` called directly on the same texts, in the same calls of
  ``ENCODE_BATCH`` texts, models loaded beforehand: the raw cost of the model.

Writes ``product.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = "import sys; from pipeline.cli import main; sys.argv[0] = 'codeer'; main()"


def _texts(path: Path, n: int) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines()[:n]
    out = Path(tempfile.mkdtemp(prefix="texts-")) / f"texts-{n}.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _classify(device: str, texts: Path, model: Path) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="ws-"))
    env = {**os.environ, "CODEER_HOME": str(home)}
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", CLI, "--device", device, "classify", str(texts), "-o", str(home / "out.jsonl"),
                          "--model", str(model)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode:
        raise SystemExit(f"classify failed on {device}:\n{run.stderr[-3000:]}")
    rows = sum(1 for _ in open(home / "out.jsonl", encoding="utf-8"))
    return {"seconds": round(seconds, 2), "rows": rows, "utterances_per_s": round(rows / seconds, 1),
            "stdout": run.stdout.strip()[-300:]}


def _raw(device: str, encoder_name: str, texts: list[str]) -> dict[str, float]:
    from pipeline.coding.embed import ENCODE_BATCH, load_encoder

    encoder = load_encoder(encoder_name, device=device)
    encoder.encode(texts[:64])
    started = time.perf_counter()
    for start in range(0, len(texts), ENCODE_BATCH):
        encoder.encode(texts[start : start + ENCODE_BATCH])
    seconds = time.perf_counter() - started
    return {"encoder_id": encoder.encoder_id, "seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--gpu-sizes", default="1500,60000")
    parser.add_argument("--cpu-sizes", default="20000")
    parser.add_argument("--encoder", default="e5-int8", help="the model's encoder (its card's 'encoder')")
    args = parser.parse_args()
    import torch

    from pipeline.coding.e5local import converted_folder, onnx_folder

    report: dict[str, object] = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                                 "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                                 "cpus": os.cpu_count(), "runs": []}
    started = time.perf_counter()
    converted_folder()
    report["convert_s"] = round(time.perf_counter() - started, 1)
    all_texts = [json.loads(line)["text"] for line in args.texts.read_text(encoding="utf-8").splitlines()]
    plan = [("cuda", int(n)) for n in args.gpu_sizes.split(",") if n and torch.cuda.is_available()]
    if args.cpu_sizes:
        started = time.perf_counter()
        onnx_folder()
        report["onnx_build_s"] = round(time.perf_counter() - started, 1)
        plan += [("cpu", int(n)) for n in args.cpu_sizes.split(",") if n]
    runs: list[dict[str, object]] = []
    for device, n in plan:
        texts = _texts(args.texts, n)
        result = {"device": device, "n": n, "classify": _classify(device, texts, args.model),
                  "raw": _raw(device, args.encoder, all_texts[:n])}
        runs.append(result)
        print(json.dumps(result), flush=True)
    report["runs"] = runs
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "product.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
