"""Scores on the real-text yardstick: thesis sentences that no model trains on.

One table for every model choice (issue "coding validity on real Dutch text"): top-1 and top-3
over the 13 incentives, macro-F1 over them, direction accuracy, the needs-review share and its
precision, calibration per frequent code, and the two zero-shot baselines on the same items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.preprocessing import normalize

from pipeline.codebook import Codebook
from pipeline.coding.classify import CodingModel
from pipeline.coding.predict import code_rows
from pipeline.coding.sources import RealItem
from pipeline.coding.stack import Features

if TYPE_CHECKING:
    from pipeline.coding.embed import EmbeddingCacheLike, Encoder

MIN_CODE_ITEMS = 10  # codes with fewer yardstick items get no calibration row of their own


def _top(scores: np.ndarray, labels: Sequence[str], k: int) -> list[list[str]]:
    return [[labels[j] for j in np.argsort(-row, kind="stable")[:k]] for row in scores]


def _rank_scores(scores: np.ndarray, items: Sequence[RealItem], labels: Sequence[str]) -> dict[str, Any]:
    """Top-1 (strict and counting the item's other codes), top-3 and macro-F1 of a score matrix
    whose columns are ``labels``, on the items whose main code is one of them."""
    rows = [i for i, item in enumerate(items) if item.code in labels]
    if not rows:
        return {"n": 0}
    top3 = _top(scores[rows], labels, 3)
    gold = [items[i].code for i in rows]
    first = [t[0] for t in top3]
    return {
        "n": len(rows),
        "top1": round(float(np.mean([f == g for f, g in zip(first, gold, strict=True)])), 3),
        "top1_lenient": round(float(np.mean([f == items[i].code or f in items[i].also
                                             for f, i in zip(first, rows, strict=True)])), 3),
        "top3": round(float(np.mean([g in t for g, t in zip(gold, top3, strict=True)])), 3),
        "macro_f1": round(float(f1_score(gold, first, labels=list(labels), average="macro", zero_division=0)), 3),
    }


def _ece(proba: np.ndarray, hit: np.ndarray, n_bins: int = 5) -> float:
    edges = np.linspace(0.0, 1.0 + 1e-9, n_bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (proba >= low) & (proba < high)
        if inside.any():
            total += abs(float(proba[inside].mean()) - float(hit[inside].mean())) * float(inside.mean())
    return round(total, 3)


def model_scores(model: CodingModel, F: Features, items: Sequence[RealItem], codebook: Codebook) -> dict[str, Any]:
    """Everything the evaluation reports of ``model`` on the yardstick items (features ``F``)."""
    incentives = [c for c in codebook.incentives if c in model.codes]
    proba = model.predict_proba(F)
    columns = [model.codes.index(c) for c in incentives]
    report: dict[str, Any] = {"incentives": _rank_scores(proba[:, columns], items, incentives)}
    coded = [i for i, item in enumerate(items) if item.code in model.codes]
    report["all_codes"] = _rank_scores(proba[coded], [items[i] for i in coded], model.codes)
    # direction given the right code, as a human coder would be asked it
    pairs = [(i, model.codes.index(item.code)) for i, item in enumerate(items)
             if item.direction in ("+", "-", "0") and item.code in model.codes]
    if pairs:
        direction = model.predict_direction(F, pairs)
        labels = model.direction_.classes_[np.argmax(direction, axis=1)]
        right = np.array([label == items[i].direction for label, (i, _) in zip(labels, pairs, strict=True)])
        on_incentive = np.array([items[i].code in incentives for i, _ in pairs])
        report["direction"] = {"n": len(pairs), "accuracy": round(float(right.mean()), 3),
                               "n_incentives": int(on_incentive.sum()),
                               "accuracy_incentives": round(float(right[on_incentive].mean()), 3) if on_incentive.any() else None}
    rows = code_rows([item.id for item in items], F, model, "yardstick", codebook)
    flagged = np.array([row.needs_review for row in rows])
    wrong = np.array([_wrong(row.predicted, row.codes, item, model.codes) for row, item in zip(rows, items, strict=True)])
    # a coding is its code and its direction: the right code with the wrong direction is wrong too
    wrong_either = wrong | np.array([_wrong_direction(row.direction, item) for row, item in zip(rows, items, strict=True)])
    report["needs_review"] = {
        "share": round(float(flagged.mean()), 3),
        "precision": round(float(wrong[flagged].mean()), 3) if flagged.any() else None,
        "recall": round(float(flagged[wrong].mean()), 3) if wrong.any() else None,
        "wrong_share": round(float(wrong.mean()), 3),
        "precision_with_direction": round(float(wrong_either[flagged].mean()), 3) if flagged.any() else None,
        "wrong_share_with_direction": round(float(wrong_either.mean()), 3)}
    top = proba[coded].max(axis=1)
    top_code = [model.codes[j] for j in proba[coded].argmax(axis=1)]
    hit = np.array([c == items[i].code or c in items[i].also for c, i in zip(top_code, coded, strict=True)])
    report["calibration"] = {"top_code_ece": _ece(top, hit), "per_code": {}}
    for j, code in enumerate(model.codes):
        truth = np.array([code == item.code or code in item.also for item in items])
        if truth.sum() >= MIN_CODE_ITEMS:
            report["calibration"]["per_code"][code] = {"n": int(truth.sum()), "ece": _ece(proba[:, j], truth),
                                                       "mean_p": round(float(proba[truth, j].mean()), 3)}
    return report


def _wrong(predicted: Sequence[str], codes: Sequence[tuple[str, float]], item: RealItem, model_codes: Sequence[str]) -> bool:
    """A coding is wrong when its strongest code is not the item's (or, for a sentence about no
    code, when anything is predicted)."""
    chosen = [c for c in predicted if c in model_codes]
    if item.code == "none":
        return bool(chosen)
    best = next(code for code, _ in codes if code in model_codes)
    return not (best == item.code or best in item.also)


def _wrong_direction(directions: Sequence[tuple[str, str, float]], item: RealItem) -> bool:
    """The item's code was coded, and with another direction than the item states."""
    coded = {code: label for code, label, _ in directions}
    return item.direction in ("+", "-", "0") and item.code in coded and coded[item.code] != item.direction


def zero_shot_scores(items: Sequence[RealItem], codebook: Codebook, encoder: Encoder, *, name: str = "e5",
                     cache: EmbeddingCacheLike | None = None) -> dict[str, Any]:
    """The two baselines without any training: similarity of each item to the one-sentence
    definition (label and definition) of each incentive, by TF-IDF character 3-5 grams and by
    the encoder's embeddings."""
    from pipeline.coding.embed import embed_texts

    incentives = list(codebook.incentives)
    definitions = [f"{codebook[c].label_nl}. {codebook[c].definition_nl}" for c in incentives]
    texts = [item.text for item in items]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit(texts + definitions)
    tfidf = normalize(vectorizer.transform(texts)) @ normalize(vectorizer.transform(definitions)).T
    text_vectors, _ = embed_texts(texts, encoder, cache=cache)
    definition_vectors, _ = embed_texts(definitions, encoder, cache=cache)
    return {"tfidf_definitions": _rank_scores(np.asarray(tfidf.todense()), items, incentives),
            f"{name}_definitions": _rank_scores(text_vectors @ definition_vectors.T, items, incentives)}


def markdown(report: dict[str, Any]) -> list[str]:
    """The yardstick section of reports/evaluation.md."""
    inc = report["model"]["incentives"]
    lines = ["## Real text: the yardstick (first)", "",
             f"{report['n_items']} hand-labelled sentences from the thesis (pipeline/resources/annotations/realtext/, split "
             "`yardstick`); no model trains on them. Top-1/top-3/macro-F1 over the 13 incentives on the "
             f"{inc['n']} items whose main code is an incentive; lenient top-1 also accepts the item's other codes.", "",
             "| method | top-1 | top-1 lenient | top-3 | macro-F1 (13) |", "|---|---|---|---|---|",
             f"| **codeer model** | **{inc['top1']}** | {inc['top1_lenient']} | {inc['top3']} | {inc['macro_f1']} |"]
    for name, row in report["baselines"].items():
        lines.append(f"| zero-shot {name.replace('_', ' ')} (no training) | {row['top1']} | {row['top1_lenient']} | "
                     f"{row['top3']} | {row['macro_f1']} |")
    model = report["model"]
    review = model["needs_review"]
    lines += [""]
    if "direction" in model:
        d = model["direction"]
        lines.append(f"- direction (given the right code): {d['accuracy']} on {d['n']} items; "
                     f"{d['accuracy_incentives']} on the {d['n_incentives']} incentive items")
    lines += [f"- all codes incl. context codes ({model['all_codes']['n']} items): top-1 {model['all_codes']['top1']}, "
              f"lenient {model['all_codes']['top1_lenient']}",
              f"- needs review: {review['share']:.0%} of the items; {review['precision']} of the flagged items are "
              f"wrong (precision), {review['recall']} of the wrong items are flagged (recall); "
              f"{review['wrong_share']:.0%} of all items are coded wrong; counting a right code with a wrong "
              f"direction as wrong too, {review['precision_with_direction']} of the flagged items are wrong and "
              f"{review['wrong_share_with_direction']:.0%} of all items",
              f"- calibration: ECE of the top code's probability {model['calibration']['top_code_ece']}; per code "
              f"(≥ {MIN_CODE_ITEMS} items):"]
    for code, row in model["calibration"]["per_code"].items():
        lines.append(f"  - `{code}`: ECE {row['ece']}, mean probability on its {row['n']} items {row['mean_p']}")
    lines.append("")
    return lines
