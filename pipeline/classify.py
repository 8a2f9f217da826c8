"""The code classifier: one calibrated decision per code, plus direction and facet heads.

:class:`CodeClassifier` is a scikit-learn estimator over embeddings (multi-label with an
indicator ``y``; multiclass with a 1-D ``y``). :class:`CodingModel` puts it together with the
direction (``+``/``-``/``0``) and facet (provision/practice) heads, the code ids and the
codebook rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.codebook import Codebook
from pipeline.errors import ModelCardMismatchError
from pipeline.records import Annotation

logger = logging.getLogger(__name__)

DIRECTIONS = ("+", "-", "0")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


class CodeClassifier(ClassifierMixin, BaseEstimator):
    """One-vs-rest logistic regression with per-label Platt calibration and tuned thresholds.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength of each logistic regression.
    class_weight : "balanced" or None, default="balanced"
        Class weighting of each binary problem.
    n_splits : int, default=4
        Folds for the out-of-fold scores used to calibrate and to tune thresholds; folds are
        grouped when ``groups`` is passed to :meth:`fit` (by transcript, so no leakage).
    min_positive : int, default=3
        Labels with fewer positive examples get a constant prior and are never predicted;
        they are listed in ``skipped_``.
    random_state : int or None, default=None
        Seed for the fold shuffling when no groups are given.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (1-D ``y``) or label column indices (indicator ``y``).
    coef_, intercept_ : ndarray
        One row / value per label.
    calibration_ : ndarray of shape (n_labels, 2)
        Platt slope and offset per label.
    thresholds_ : ndarray of shape (n_labels,)
        Decision threshold per label on the calibrated probability, tuned for F1.
    skipped_ : list of int
        Label indices with too few examples.
    """

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", n_splits: int = 4,
                 min_positive: int = 3, random_state: int | None = None) -> None:
        self.C = C
        self.class_weight = class_weight
        self.n_splits = n_splits
        self.min_positive = min_positive
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, groups: Sequence[object] | None = None) -> CodeClassifier:
        """Fit one calibrated binary model per label; ``groups`` keep transcripts together."""
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.float64)
        if self.C <= 0:
            raise ValueError(f"The 'C' parameter of CodeClassifier must be > 0. Got {self.C!r} instead.")
        target = type_of_target(y)
        if target == "multilabel-indicator":
            self.multilabel_ = True
            Y = np.asarray(y, dtype=int)
            self.classes_ = np.arange(Y.shape[1])
        elif target in ("binary", "multiclass"):
            self.multilabel_ = False
            self.classes_ = np.unique(y)
            Y = (np.asarray(y)[:, None] == self.classes_[None, :]).astype(int)
        else:
            raise ValueError(f"Unknown label type: {target!r}. Use a 1-D label array or a binary indicator matrix.")
        if Y.shape[1] == 1 and not self.multilabel_:
            raise ValueError("Classifier can't train when only one class is present.")
        n_labels = Y.shape[1]
        self.coef_ = np.zeros((n_labels, X.shape[1]))
        self.intercept_ = np.zeros(n_labels)
        self.calibration_ = np.tile([1.0, 0.0], (n_labels, 1))
        self.thresholds_ = np.full(n_labels, 0.5)
        self.skipped_: list[int] = []
        groups_array = None if groups is None else np.asarray(groups)
        for j in range(n_labels):
            column = Y[:, j]
            n_positive = int(column.sum())
            if n_positive < self.min_positive or n_positive == len(column):
                prior = n_positive / len(column)
                self.intercept_[j] = np.log(max(prior, 1e-6) / max(1 - prior, 1e-6))
                self.thresholds_[j] = 1.01 if n_positive < self.min_positive else 0.0
                self.skipped_.append(j)
                continue
            model = self._binary().fit(X, column)
            self.coef_[j], self.intercept_[j] = model.coef_[0], model.intercept_[0]
            oof = self._out_of_fold_scores(X, column, groups_array)
            if oof is not None:
                self.calibration_[j] = _platt(oof, column)
                self.thresholds_[j] = _best_threshold(_sigmoid(self.calibration_[j, 0] * oof + self.calibration_[j, 1]), column)
        return self

    def _binary(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000)

    def _out_of_fold_scores(self, X: np.ndarray, column: np.ndarray, groups: np.ndarray | None) -> np.ndarray | None:
        n_positive = int(column.sum())
        if groups is not None:
            n_splits = min(self.n_splits, len(np.unique(groups)))
            splitter = GroupKFold(n_splits=n_splits) if n_splits >= 2 else None
            splits = list(splitter.split(X, column, groups)) if splitter else []
        else:
            n_splits = min(self.n_splits, n_positive, len(column) - n_positive)
            splits = list(StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state).split(X, column)) \
                if n_splits >= 2 else []
        if not splits:
            return None
        scores = np.zeros(len(column))
        for train, test in splits:
            if len(np.unique(column[train])) < 2:
                return None
            scores[test] = self._binary().fit(X[train], column[train]).decision_function(X[test])
        return scores

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Raw logistic scores, one column per label."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_.T + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, columns in the order of ``classes_``.

        Multi-label: independent per label. Multiclass: normalised to sum to one.
        """
        scores = self.decision_function(X)
        proba = _sigmoid(scores * self.calibration_[:, 0] + self.calibration_[:, 1])
        if not self.multilabel_:
            proba = proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Indicator matrix (multi-label, per-label thresholds) or class labels (multiclass)."""
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba >= self.thresholds_).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _platt(scores: np.ndarray, column: np.ndarray) -> np.ndarray:
    model = LogisticRegression(C=1e4, max_iter=1000).fit(scores.reshape(-1, 1), column)
    return np.array([model.coef_[0, 0], model.intercept_[0]])


def _best_threshold(proba: np.ndarray, column: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for threshold in np.linspace(0.1, 0.9, 33):
        predicted = proba >= threshold
        tp = float((predicted & (column == 1)).sum())
        f1 = 2 * tp / max(predicted.sum() + column.sum(), 1)
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(threshold), f1
    return best


def make_features(text_vectors: np.ndarray, question_vectors: np.ndarray | None, context_weight: float) -> np.ndarray:
    """Utterance embedding, optionally followed by the weighted embedding of its question."""
    if not context_weight or question_vectors is None:
        return text_vectors
    return np.hstack([text_vectors, context_weight * question_vectors]).astype(np.float32)


@dataclass
class TrainingSet:
    """Annotated utterances as arrays: codes indicator, groups and per-coding rows."""

    texts: list[str]
    questions: list[str]
    groups: list[str]
    codes: list[str]
    Y: np.ndarray
    coding_rows: list[tuple[int, int, str, str | None]]  # (sample, code index, direction, facet)


def training_set(annotations: Sequence[Annotation], codebook: Codebook) -> TrainingSet:
    """Turn annotations (one per utterance; several annotators merged) into arrays.

    Refuses annotations made with another codebook version.
    """
    by_utterance: dict[str, list[Annotation]] = {}
    for annotation in annotations:
        if annotation.codebook_version != codebook.version:
            raise ModelCardMismatchError(
                f"annotation of utterance {annotation.utterance_id} ({annotation.source_file}) was made with codebook "
                f"version {annotation.codebook_version!r}; this model uses {codebook.version!r}. "
                "Convert the annotations or train with the matching codebook.")
        by_utterance.setdefault(annotation.utterance_id, []).append(annotation)
    codes = list(codebook.codable)
    index = {code: i for i, code in enumerate(codes)}
    texts, questions, groups, rows, coding_rows = [], [], [], [], []
    for sample, (_, items) in enumerate(by_utterance.items()):
        # the newest annotation wins (review corrections override seed codings)
        latest = max(items, key=lambda a: (a.origin == "review", a.created_at))
        first = items[0]
        texts.append(first.text)
        questions.append(first.question)
        groups.append(first.transcript_id or first.source_file)
        row = np.zeros(len(codes), dtype=int)
        for coding in latest.codings:
            row[index[coding.code]] = 1
            coding_rows.append((sample, index[coding.code], coding.direction, coding.facet))
        rows.append(row)
    Y = np.vstack(rows) if rows else np.zeros((0, len(codes)), dtype=int)
    return TrainingSet(texts, questions, groups, codes, Y, coding_rows)


def coding_features(X: np.ndarray, rows: Sequence[tuple[int, int]], n_codes: int) -> np.ndarray:
    """Features of (utterance, code) pairs for the direction and facet heads."""
    samples = np.array([r[0] for r in rows], dtype=int)
    onehot = np.zeros((len(rows), n_codes), dtype=np.float32)
    onehot[np.arange(len(rows)), [r[1] for r in rows]] = 1.0
    return np.hstack([X[samples], onehot])


class CodingModel:
    """Everything a trained model holds: code ids, the code classifier, direction and facet
    heads, and the settings the features were made with. Saved with skops (never pickle)."""

    def __init__(self, codes: list[str], codebook_version: str, encoder_id: str, dim: int,
                 context_weight: float = 0.0, C: float = 1.0, random_state: int = 0) -> None:
        self.codes = list(codes)
        self.codebook_version = codebook_version
        self.encoder_id = encoder_id
        self.dim = dim
        self.context_weight = context_weight
        self.C = C
        self.random_state = random_state

    def fit(self, X: np.ndarray, data: TrainingSet) -> CodingModel:
        """Fit all heads on features ``X`` (rows of ``data``)."""
        self.classifier_ = CodeClassifier(C=self.C, random_state=self.random_state).fit(X, data.Y, groups=data.groups)
        self.skipped_codes_ = [self.codes[j] for j in self.classifier_.skipped_]
        pairs = [(s, j) for s, j, _, _ in data.coding_rows]
        directions = np.array([d for _, _, d, _ in data.coding_rows])
        features = coding_features(X, pairs, len(self.codes))
        self.direction_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000).fit(features, directions)
        facet_rows = [(i, f) for i, (_, _, _, f) in enumerate(data.coding_rows) if f]
        self.facet_ = None
        if len({f for _, f in facet_rows}) == 2:
            self.facet_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000).fit(
                features[[i for i, _ in facet_rows]], np.array([f for _, f in facet_rows]))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability per code (columns in ``codes`` order)."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict_proba(X)

    def predict_direction(self, X: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        """Direction probabilities (columns ``direction_.classes_``) for (sample, code index) pairs."""
        if not pairs:
            return np.zeros((0, len(self.direction_.classes_)))
        return self.direction_.predict_proba(coding_features(X, pairs, len(self.codes)))

    def predict_facet(self, X: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray | None:
        """Facet probabilities (columns ``facet_.classes_``) or None without a facet head."""
        if self.facet_ is None or not pairs:
            return None
        return self.facet_.predict_proba(coding_features(X, pairs, len(self.codes)))

    @property
    def thresholds(self) -> np.ndarray:
        """Decision threshold per code."""
        return self.classifier_.thresholds_
