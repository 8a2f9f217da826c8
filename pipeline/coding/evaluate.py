"""Evaluation grouped by transcript: per-code scores, agreement, calibration, learning curve,
direction accuracy, and baselines in the same run (TF-IDF + logistic regression, zero-shot
similarity to the codebook)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import GroupKFold

from pipeline.coding.classify import CodingModel, TrainingSet
from pipeline.coding.stack import Features

if TYPE_CHECKING:
    from pipeline.codebook import Codebook

logger = logging.getLogger(__name__)


@dataclass
class FoldPredictions:
    """Out-of-fold predictions of one configuration."""

    proba: np.ndarray
    predicted: np.ndarray
    direction_true: list[str] = field(default_factory=list)
    direction_pred: list[str] = field(default_factory=list)


def grouped_cross_validation(
    X: Features, data: TrainingSet, fit: Callable[[Features, TrainingSet], CodingModel], *, n_splits: int = 5,
    show_progress: bool = False,
) -> FoldPredictions:
    """Out-of-fold predictions with folds grouped by transcript (no utterance of a test
    transcript is ever in training). ``fit`` builds a model from a training part;
    ``show_progress`` reports each fold (:mod:`pipeline.progress`)."""
    from pipeline.progress import progress

    groups = np.asarray(data.groups)
    n_splits = min(n_splits, len(np.unique(groups)))
    proba = np.zeros(data.Y.shape)
    predicted = np.zeros(data.Y.shape, dtype=int)
    direction_true: list[str] = []
    direction_pred: list[str] = []
    splits = list(GroupKFold(n_splits=n_splits).split(data.Y, data.Y, groups))
    for train, test in progress(splits, "cross-validation", unit="fold", enabled=show_progress):
        model = fit(X[train], data.subset(train))
        proba[test], decided = model.decide(X[test])
        predicted[test] = decided.astype(int)
        test_set = data.subset(test)
        if test_set.coding_rows:
            pairs = [(s, j) for s, j, _, _ in test_set.coding_rows]
            direction = model.predict_direction(X[test], pairs)
            classes = model.direction_.classes_
            direction_true += [d for _, _, d, _ in test_set.coding_rows]
            direction_pred += [str(classes[k]) for k in np.argmax(direction, axis=1)]
    return FoldPredictions(proba, predicted, direction_true, direction_pred)


def code_scores(Y: np.ndarray, predicted: np.ndarray, codes: Sequence[str], min_support: int = 1) -> dict[str, Any]:
    """Per-code precision, recall, F1, Cohen's kappa and support; macro and micro F1 over the
    codes with at least ``min_support`` positive examples."""
    per_code: dict[str, dict[str, float]] = {}
    tp_all = fp_all = fn_all = 0
    f1s = []
    for j, code in enumerate(codes):
        y, p = Y[:, j], predicted[:, j]
        support = int(y.sum())
        if support < min_support:
            continue
        tp, fp, fn = int((y & p).sum()), int(((1 - y) & p).sum()), int((y & (1 - p)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        kappa = float(cohen_kappa_score(y, p)) if len(np.unique(np.concatenate([y, p]))) > 1 else 0.0
        per_code[code] = {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
                          "kappa": round(kappa, 3), "support": support}
        f1s.append(f1)
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
    micro = 2 * tp_all / (2 * tp_all + fp_all + fn_all) if tp_all else 0.0
    return {"macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 3), "micro_f1": round(micro, 3), "per_code": per_code}


def krippendorff_alpha(Y: np.ndarray, predicted: np.ndarray) -> float:
    """Krippendorff's alpha (nominal, two coders: human and model) over every (utterance, code)
    decision."""
    a, b = Y.ravel(), predicted.ravel()
    values = np.concatenate([a, b])
    n = len(values)
    observed = float(np.mean(a != b))
    p1 = values.mean()
    expected = 2 * p1 * (1 - p1) * n / (n - 1)
    return round(1 - observed / expected, 3) if expected else 1.0


def calibration(Y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Expected calibration error over all (utterance, code) probabilities and the
    reliability table (mean predicted vs observed frequency per bin)."""
    p, y = proba.ravel(), Y.ravel()
    edges = np.linspace(0, 1, n_bins + 1)
    bins = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    table, ece = [], 0.0
    for k in range(n_bins):
        mask = bins == k
        if not mask.any():
            continue
        confidence, frequency = float(p[mask].mean()), float(y[mask].mean())
        ece += mask.mean() * abs(confidence - frequency)
        table.append({"bin": k, "n": int(mask.sum()), "mean_p": round(confidence, 3), "observed": round(frequency, 3)})
    return {"ece": round(float(ece), 4), "reliability": table}


def direction_accuracy(fold: FoldPredictions) -> float | None:
    """Share of human-coded (utterance, code) pairs whose direction the model gets right."""
    if not fold.direction_true:
        return None
    return round(float(np.mean(np.array(fold.direction_true) == np.array(fold.direction_pred))), 3)


def learning_curve(X: Features, data: TrainingSet, fit: Callable[[Features, TrainingSet], CodingModel],
                   *, fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0), n_splits: int = 5,
                   random_state: int = 0) -> list[dict[str, float]]:
    """Macro-F1 (grouped CV) when training on a share of the training transcripts of each fold."""
    rng = np.random.default_rng(random_state)
    groups = np.asarray(data.groups)
    points = []
    for fraction in fractions:
        proba = np.zeros(data.Y.shape)
        predicted = np.zeros(data.Y.shape, dtype=int)
        n_train = []
        for train, test in GroupKFold(n_splits=min(n_splits, len(np.unique(groups)))).split(data.Y, data.Y, groups):
            train_groups = np.unique(groups[train])
            keep = rng.choice(train_groups, size=max(2, int(round(fraction * len(train_groups)))), replace=False)
            rows = train[np.isin(groups[train], keep)]
            n_train.append(len(rows))
            model = fit(X[rows], data.subset(rows))
            proba[test], decided = model.decide(X[test])
            predicted[test] = decided.astype(int)
        points.append({"fraction": fraction, "n_utterances": int(np.mean(n_train)),
                       "macro_f1": code_scores(data.Y, predicted, data.codes, min_support=8)["macro_f1"]})
    return points


def tfidf_baseline(data: TrainingSet, *, n_splits: int = 5) -> dict[str, Any]:
    """TF-IDF (word 1-2 grams) + class-balanced logistic regression per code, same folds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    groups = np.asarray(data.groups)
    texts = np.array([f"{q} || {t}" for t, q in zip(data.texts, data.questions, strict=True)], dtype=object)
    predicted = np.zeros(data.Y.shape, dtype=int)
    for train, test in GroupKFold(n_splits=min(n_splits, len(np.unique(groups)))).split(texts, data.Y, groups):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        X_train, X_test = vectorizer.fit_transform(texts[train]), vectorizer.transform(texts[test])
        for j in range(data.Y.shape[1]):
            y = data.Y[train, j]
            if y.sum() < 3:
                continue
            model = LogisticRegression(class_weight="balanced", max_iter=2000).fit(X_train, y)
            predicted[test, j] = model.predict(X_test)
    return code_scores(data.Y, predicted, data.codes, min_support=8)


def zero_shot_baseline(text_vectors: np.ndarray, code_vectors: np.ndarray, data: TrainingSet, *, top_k: int = 1) -> dict[str, Any]:
    """No training at all: each utterance gets the ``top_k`` codes whose codebook description
    and examples are most similar (cosine) to it, when that similarity is above the
    utterance's mean similarity by two standard deviations."""
    similarity = text_vectors @ code_vectors.T
    predicted = np.zeros(data.Y.shape, dtype=int)
    order = np.argsort(-similarity, axis=1)[:, :top_k]
    cut = similarity.mean(axis=1) + 2 * similarity.std(axis=1)
    for i in range(len(similarity)):
        for j in order[i]:
            if similarity[i, j] >= cut[i]:
                predicted[i, j] = 1
    return code_scores(data.Y, predicted, data.codes, min_support=8)


def code_descriptions(codebook: Codebook, codes: Sequence[str]) -> list[str]:
    """Definition, guidance and example fragments per code (the zero-shot prototypes)."""
    texts = []
    for code in codes:
        entry = codebook[code]
        examples = " ".join(example.text for example in entry.examples if example.direction != "0")
        texts.append(f"{entry.description()} {examples}")
    return texts


def plot_reliability(table: list[dict[str, Any]], path: Path, title: str) -> None:
    """Reliability diagram as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="#999999", label="perfect")
    axis.plot([r["mean_p"] for r in table], [r["observed"] for r in table], marker="o", label="model")
    axis.set_xlabel("predicted probability")
    axis.set_ylabel("observed frequency")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_learning_curve(points: list[dict[str, float]], path: Path) -> None:
    """Learning curve (macro-F1 against annotated utterances) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot([p["n_utterances"] for p in points], [p["macro_f1"] for p in points], marker="o")
    axis.set_xlabel("annotated utterances in training")
    axis.set_ylabel("macro-F1 (grouped CV)")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the evaluation report as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
