"""The code classifier: one calibrated decision per code, plus direction and facet heads.

:class:`CodeClassifier` is a scikit-learn estimator over embeddings (multi-label with an
indicator ``y``; multiclass with a 1-D ``y``). :class:`CodingModel` puts it together with the
direction (``+``/``-``/``0``) and facet (provision/practice) heads, the code ids and the
codebook rules.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning, NotFittedError
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
    """One-vs-rest class-balanced ridge classifiers with per-label Platt calibration and
    tuned thresholds.

    Each label is a weighted least-squares fit of +1/-1 targets (an LS-SVM with a linear
    kernel); all labels share one Gram matrix, so fitting 30 labels costs little more than
    one. Scores are calibrated into probabilities with Platt scaling on out-of-fold scores.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength (ridge penalty ``1 / C``).
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
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is raveled.",
                          DataConversionWarning, stacklevel=2)
            y = y.ravel()
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
            if len(self.classes_) < 2:
                raise ValueError("Classifier can't train when only one class is present.")
            # binary: one model for the second class; multiclass: one per class
            labels = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
            Y = (np.asarray(y)[:, None] == labels[None, :]).astype(int)
        else:
            raise ValueError(f"Unknown label type: {target!r}. Use a 1-D label array or a binary indicator matrix.")
        n_labels = Y.shape[1]
        self.calibration_ = np.tile([1.0, 0.0], (n_labels, 1))
        self.thresholds_ = np.full(n_labels, 0.5)
        self.skipped_: list[int] = []
        n_positive = Y.sum(axis=0)
        fitted = (n_positive >= self.min_positive) & (n_positive < len(Y))
        self.coef_, self.intercept_ = self._ridge(X, Y, fitted)
        for j in np.flatnonzero(~fitted):
            prior = n_positive[j] / len(Y)
            self.intercept_[j] = np.log(max(prior, 1e-6) / max(1 - prior, 1e-6))
            self.thresholds_[j] = 1.01 if n_positive[j] < self.min_positive else 0.0
            self.skipped_.append(int(j))
        oof = self._out_of_fold_scores(X, Y, fitted, None if groups is None else np.asarray(groups))
        if oof is not None:
            for j in np.flatnonzero(fitted):
                self.calibration_[j] = _platt(oof[:, j], Y[:, j])
                calibrated = _sigmoid(self.calibration_[j, 0] * oof[:, j] + self.calibration_[j, 1])
                self.thresholds_[j] = _best_threshold(calibrated, Y[:, j])
        return self

    def _ridge(self, X: np.ndarray, Y: np.ndarray, fitted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class-balanced ridge fits of +1/-1 targets for the ``fitted`` labels.

        Negatives weigh 1 and positives ``n_negative / n_positive`` (the balanced ratio), so
        ``X'WX = X'X + (w - 1) Xp'Xp``: one inverse of the shared Gram matrix plus a
        low-rank (Woodbury) update per label.
        """
        n_samples, n_features = X.shape
        Xa = np.hstack([X, np.ones((n_samples, 1))])
        penalty = np.full(n_features + 1, n_samples / (100 * self.C))
        penalty[-1] = 1e-6  # leave the intercept (almost) unpenalised
        inverse = np.linalg.inv(Xa.T @ Xa + np.diag(penalty))
        coef = np.zeros((Y.shape[1], n_features))
        intercept = np.zeros(Y.shape[1])
        for j in np.flatnonzero(fitted):
            positive = Y[:, j] == 1
            n_pos = int(positive.sum())
            weight = (n_samples - n_pos) / n_pos if self.class_weight == "balanced" else 1.0
            target = np.where(positive, weight, -1.0) @ Xa
            solution = inverse @ target
            if weight != 1.0:
                U = Xa[positive].T
                inverse_U = inverse @ U
                small = np.eye(n_pos) / (weight - 1.0) + U.T @ inverse_U
                solution -= inverse_U @ np.linalg.solve(small, U.T @ solution)
            coef[j], intercept[j] = solution[:-1], solution[-1]
        return coef, intercept

    def _out_of_fold_scores(self, X: np.ndarray, Y: np.ndarray, fitted: np.ndarray,
                            groups: np.ndarray | None) -> np.ndarray | None:
        if groups is not None:
            n_splits = min(self.n_splits, len(np.unique(groups)))
            splits = list(GroupKFold(n_splits=n_splits).split(X, Y, groups)) if n_splits >= 2 else []
        else:
            rarest = int(min(Y[:, fitted].sum(axis=0).min(initial=len(Y)), len(Y) - Y[:, fitted].sum(axis=0).max(initial=0)))
            n_splits = min(self.n_splits, rarest)
            stratify = Y[:, np.flatnonzero(fitted)[0]] if fitted.any() else np.zeros(len(Y))
            splits = list(StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state).split(X, stratify)) \
                if n_splits >= 2 else []
        if not splits:
            return None
        scores = np.zeros(Y.shape, dtype=float)
        for train, test in splits:
            fold_fitted = fitted & (Y[train].sum(axis=0) > 0) & (Y[train].sum(axis=0) < len(train))
            coef, intercept = self._ridge(X[train], Y[train], fold_fitted)
            scores[test] = X[test] @ coef.T + intercept
        return scores

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Calibrated log-odds per label (1-D for a binary problem: the second class)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        logits = (X @ self.coef_.T + self.intercept_) * self.calibration_[:, 0] + self.calibration_[:, 1]
        return logits[:, 0] if self._binary else logits

    @property
    def _binary(self) -> bool:
        return not self.multilabel_ and len(self.classes_) == 2

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, columns in the order of ``classes_``.

        Multi-label: independent per label. Multiclass: normalised to sum to one.
        """
        check_is_fitted(self)
        logits = self.decision_function(X)
        if self._binary:
            positive = _sigmoid(logits)
            return np.column_stack([1 - positive, positive])
        proba = _sigmoid(logits)
        if not self.multilabel_:
            proba = proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Indicator matrix (multi-label, per-label thresholds) or class labels (multiclass)."""
        check_is_fitted(self)
        if self.multilabel_:
            return (self.predict_proba(X) >= self.thresholds_).astype(int)
        scores = self.decision_function(X)
        if self._binary:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

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


def make_features(text_vectors: np.ndarray, question_vectors: np.ndarray | None, context_weight: float,
                  questions: Sequence[str] | None = None) -> np.ndarray:
    """Utterance embedding, optionally followed by the weighted embedding of its question
    (zeros where there is no question, e.g. text coded outside an interview)."""
    if not context_weight or question_vectors is None:
        return text_vectors
    question_part = context_weight * question_vectors
    if questions is not None:
        question_part[np.array([not q.strip() for q in questions], dtype=bool)] = 0.0
    return np.hstack([text_vectors, question_part]).astype(np.float32)


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
        """Fit all heads on features ``X`` (rows of ``data``).

        With question context, a second code classifier sees the utterance alone: it codes
        rows that come without a question (text outside an interview). Direction and facet
        are read from the utterance's own words.
        """
        self.text_dim_ = X.shape[1] // 2 if self.context_weight else X.shape[1]
        self.classifier_ = CodeClassifier(C=self.C, random_state=self.random_state).fit(X, data.Y, groups=data.groups)
        self.text_classifier_ = None
        if self.context_weight:
            self.text_classifier_ = CodeClassifier(C=self.C, random_state=self.random_state).fit(
                X[:, : self.text_dim_], data.Y, groups=data.groups)
        self.skipped_codes_ = [self.codes[j] for j in self.classifier_.skipped_]
        pairs = [(s, j) for s, j, _, _ in data.coding_rows]
        directions = np.array([d for _, _, d, _ in data.coding_rows])
        features = coding_features(X[:, : self.text_dim_], pairs, len(self.codes))
        self.direction_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000).fit(features, directions)
        facet_rows = [(i, f) for i, (_, _, _, f) in enumerate(data.coding_rows) if f]
        self.facet_ = None
        if len({f for _, f in facet_rows}) == 2:
            self.facet_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000).fit(
                features[[i for i, _ in facet_rows]], np.array([f for _, f in facet_rows]))
        return self

    def _without_question(self, X: np.ndarray) -> np.ndarray:
        if self.text_classifier_ is None:
            return np.zeros(len(X), dtype=bool)
        return ~np.any(X[:, self.text_dim_ :], axis=1)

    def decide(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, decisions)``: one column per code, each row decided by the
        classifier that fits it (with or without the interviewer's question)."""
        if not hasattr(self, "classifier_"):
            raise NotFittedError("This CodingModel is not fitted yet. Call 'fit' or load a trained model.")
        proba = np.zeros((len(X), len(self.codes)))
        thresholds = np.tile(self.classifier_.thresholds_, (len(X), 1))
        alone = self._without_question(X)
        if (~alone).any():
            proba[~alone] = self.classifier_.predict_proba(X[~alone])
        if alone.any():
            proba[alone] = self.text_classifier_.predict_proba(X[alone][:, : self.text_dim_])
            thresholds[alone] = self.text_classifier_.thresholds_
        return proba, proba >= thresholds

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability per code (columns in ``codes`` order)."""
        return self.decide(X)[0]

    def predict_direction(self, X: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        """Direction probabilities (columns ``direction_.classes_``) for (sample, code index) pairs."""
        if not pairs:
            return np.zeros((0, len(self.direction_.classes_)))
        return self.direction_.predict_proba(coding_features(X[:, : self.text_dim_], pairs, len(self.codes)))

    def predict_facet(self, X: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray | None:
        """Facet probabilities (columns ``facet_.classes_``) or None without a facet head."""
        if self.facet_ is None or not pairs:
            return None
        return self.facet_.predict_proba(coding_features(X[:, : self.text_dim_], pairs, len(self.codes)))

    @property
    def thresholds(self) -> np.ndarray:
        """Decision threshold per code (for rows with a question, when the model uses context)."""
        return self.classifier_.thresholds_


def featurize(texts: Sequence[str], questions: Sequence[str], encoder, *, context_weight: float,  # type: ignore[no-untyped-def]
              cache=None, batch_size: int = 64, show_progress: bool = False) -> tuple[np.ndarray, int, int]:
    """Embed utterances (and their questions when ``context_weight`` > 0); return
    ``(features, n_encoded, n_cache_hits)``; ``n_encoded`` counts the texts the encoder was
    called on (a repeated text or question once)."""
    from pipeline.coding.embed import embed_texts_counted

    vectors, hits, n_encoded = embed_texts_counted(texts, encoder, cache=cache, batch_size=batch_size,
                                                   show_progress=show_progress)
    question_vectors = None
    if context_weight:
        question_vectors, question_hits, question_encoded = embed_texts_counted(questions, encoder, cache=cache,
                                                                                batch_size=batch_size)
        hits += question_hits
        n_encoded += question_encoded
    return make_features(vectors, question_vectors, context_weight, questions), n_encoded, hits


def self_train(X: np.ndarray, data: TrainingSet, X_unlabelled: np.ndarray, model: CodingModel,
               *, confidence: float = 0.9) -> tuple[np.ndarray, TrainingSet]:
    """Self-training: add unlabelled utterances whose codes the model is sure of.

    An unlabelled utterance is kept when every code is decided confidently (probability above
    ``confidence`` or below ``1 - confidence``); its confident positives become its labels.
    Direction rows are not invented for pseudo-labels.
    """
    if len(X_unlabelled) == 0:
        return X, data
    proba = model.predict_proba(X_unlabelled)
    sure = ((proba >= confidence) | (proba <= 1 - confidence)).all(axis=1)
    pseudo = (proba[sure] >= confidence).astype(int)
    extra = TrainingSet(
        texts=data.texts + ["" for _ in range(int(sure.sum()))],
        questions=data.questions + ["" for _ in range(int(sure.sum()))],
        groups=data.groups + [f"unlabelled-{i}" for i in range(int(sure.sum()))],
        codes=data.codes, Y=np.vstack([data.Y, pseudo]), coding_rows=data.coding_rows,
    )
    logger.info("self-training: %d of %d unlabelled utterances pseudo-labelled", int(sure.sum()), len(X_unlabelled))
    return np.vstack([X, X_unlabelled[sure]]), extra


def fit_coding_model(X: np.ndarray, data: TrainingSet, *, codebook_version: str, encoder_id: str,
                     context_weight: float, X_unlabelled: np.ndarray | None = None, C: float = 1.0,
                     random_state: int = 0) -> CodingModel:
    """Fit a :class:`CodingModel`, with one round of self-training when unlabelled features are given."""
    model = CodingModel(data.codes, codebook_version, encoder_id, X.shape[1], context_weight, C, random_state)
    model.fit(X, data)
    if X_unlabelled is not None and len(X_unlabelled):
        X_all, data_all = self_train(X, data, X_unlabelled, model)
        model = CodingModel(data.codes, codebook_version, encoder_id, X.shape[1], context_weight, C, random_state)
        model.fit(X_all, data_all)
    return model
