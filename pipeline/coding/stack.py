"""The stacked code scorer: lexical and semantic evidence, from examples and from the codebook.

Four score components per code, each computed from the text alone:

- ``tfidf_prototype``: cosine of the text's TF-IDF character 3-5 grams to the code's prototype
  (label, definition, include note and examples from the codebook);
- ``vector_prototype``: cosine of the text's embedding to the mean embedding of those pieces;
- ``tfidf_head``: a ridge classifier over TF-IDF character n-grams of the training texts;
- ``vector_head``: a logistic regression over the embeddings of the training texts.

Each component is z-scored over the codes of a row and the four are summed with equal weight
(on real thesis text the sum beats every single component and both zero-shot baselines:
reports/evaluation.md). A small logistic regression over out-of-fold pair features (summed
score, margin to the best other code, whether it is the top code, the "no code" score, and each
component's own z-score, so that it can weigh the components and see where they disagree) turns
them into a calibrated probability that a code applies. :class:`PairHead` reads the direction or
facet of a coding from the text and the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

NONE = "__none__"
PARTS = ("tfidf_prototype", "vector_prototype", "tfidf_head", "vector_head")


@dataclass(frozen=True)
class Features:
    """What the coder reads of each row: its text and the text's embedding (L2-normalised),
    and the interviewer's question with its embedding where there is one (``""`` and a zero
    row where there is none)."""

    texts: tuple[str, ...]
    vectors: np.ndarray
    questions: tuple[str, ...] = ()
    question_vectors: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.vectors):
            raise ValueError(f"Features need one vector per text; got {len(self.texts)} texts and "
                             f"{len(self.vectors)} vectors.")
        if self.questions and (len(self.questions) != len(self.texts) or self.question_vectors is None
                               or len(self.question_vectors) != len(self.texts)):
            raise ValueError("Features need a question and a question vector per text, or none at all.")

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, rows: Any) -> Features:
        index = np.asarray(rows)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(int)
        if not self.questions or self.question_vectors is None:
            return Features(tuple(self.texts[i] for i in index), self.vectors[index])
        return Features(tuple(self.texts[i] for i in index), self.vectors[index],
                        tuple(self.questions[i] for i in index), self.question_vectors[index])

    def __add__(self, other: Features) -> Features:
        """Both sets of rows, one after the other (rows without a question get an empty one)."""
        if not self.questions and not other.questions:
            return Features(self.texts + other.texts, np.vstack([self.vectors, other.vectors]))
        first, second = self.with_questions(), other.with_questions()
        # with_questions() always gives question vectors (and __post_init__ checks them)
        assert first.question_vectors is not None and second.question_vectors is not None
        return Features(first.texts + second.texts, np.vstack([first.vectors, second.vectors]),
                        first.questions + second.questions,
                        np.vstack([first.question_vectors, second.question_vectors]))

    def with_questions(self) -> Features:
        """The same rows, with empty questions where none were given."""
        if self.questions:
            return self
        return Features(self.texts, self.vectors, tuple("" for _ in self.texts), np.zeros_like(self.vectors))

    @property
    def has_question(self) -> np.ndarray:
        """Whether each row comes with an interviewer's question."""
        return np.array([bool(q.strip()) for q in self.questions] if self.questions else [False] * len(self.texts),
                        dtype=bool)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, embedding dimension)``, as an array's shape."""
        return (len(self.texts), int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0)


class NgramTfidf(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type stubs
    """TF-IDF over n-grams, saved compactly: the terms as one string array and their idf.

    skops writes a fitted ``TfidfVectorizer``'s vocabulary as one JSON object per term (about
    20 MB for 30,000 character n-grams); this keeps the same transform in well under 1 MB.
    """

    def __init__(self, analyzer: str = "char_wb", ngram_range: tuple[int, int] = (3, 5), min_df: int = 1,
                 max_features: int | None = 50_000) -> None:
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features

    def _vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        return TfidfVectorizer(analyzer=self.analyzer, ngram_range=tuple(self.ngram_range), min_df=self.min_df,
                               max_features=self.max_features, sublinear_tf=True, dtype=np.float32,
                               vocabulary=vocabulary)

    def fit(self, texts: Sequence[str]) -> NgramTfidf:
        """Learn the n-grams and their idf from ``texts``."""
        texts = list(texts)
        vectorizer = self._vectorizer().fit(texts if len(texts) >= self.min_df else texts * self.min_df)
        self.terms_ = np.array(vectorizer.get_feature_names_out(), dtype=str)
        self.idf_ = np.asarray(vectorizer.idf_, dtype=np.float64)
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        """Sparse TF-IDF rows (L2-normalised), one per text."""
        check_is_fitted(self)
        vectorizer = self._vectorizer({str(term): i for i, term in enumerate(self.terms_)})
        vectorizer.idf_ = self.idf_
        return vectorizer.transform(list(texts))


def _zrow(S: np.ndarray) -> np.ndarray:
    z: np.ndarray = (S - S.mean(axis=1, keepdims=True)) / (S.std(axis=1, keepdims=True) + 1e-9)
    return z


def _columns(model: Any, scores: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Decision scores in ``labels`` order; a label the model never saw scores below all others."""
    classes = list(model.classes_)
    if scores.ndim == 1:  # two classes: one column for the second
        scores = np.column_stack([-scores, scores])
    low = float(scores.min()) - 1.0 if scores.size else -1.0
    return np.column_stack([scores[:, classes.index(c)] if c in classes else np.full(len(scores), low)
                            for c in labels])


def _expand(Y: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training row per (text, code); a text without codes is one ``NONE`` row. A text's
    weight is shared among its codes so that multi-coded texts do not count double."""
    rows: list[int] = []
    labels: list[str] = []
    weights: list[float] = []
    for i, row in enumerate(Y):
        names = [str(j) for j in np.flatnonzero(row)] or [NONE]
        for name in names:
            rows.append(i)
            labels.append(name)
            weights.append(float(weight[i]) / len(names))
    return np.array(rows, dtype=int), np.array(labels), np.array(weights)


class CodeScorer(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type stubs
    """The four score components (see the module docstring), for an indicator matrix ``Y``.

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty of the TF-IDF head.
    C : float, default=1.0
        Inverse regularisation of the embedding head.
    """

    def __init__(self, alpha: float = 1.0, C: float = 1.0) -> None:
        self.alpha = alpha
        self.C = C

    def fit(self, F: Features, Y: np.ndarray, prototypes: Sequence[str], prototype_vectors: np.ndarray,
            sample_weight: np.ndarray | None = None) -> CodeScorer:
        """Fit on texts ``F`` with codes ``Y`` (one column per code, in ``prototypes`` order)."""
        if Y.shape != (len(F), len(prototypes)):
            raise ValueError(f"Y must have shape (n_texts, n_codes) = ({len(F)}, {len(prototypes)}); got {Y.shape}.")
        weight = np.ones(len(F)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.vectorizer_ = NgramTfidf().fit([*F.texts, *prototypes])
        self.prototype_tfidf_ = normalize(self.vectorizer_.transform(list(prototypes)))
        self.prototype_vectors_ = normalize(np.asarray(prototype_vectors, dtype=np.float64))
        rows, labels, weights = _expand(Y, weight)
        texts = self.vectorizer_.transform([F.texts[i] for i in rows])
        self.tfidf_head_ = RidgeClassifier(alpha=self.alpha).fit(texts, labels, sample_weight=weights)
        self.vector_head_ = LogisticRegression(C=self.C, max_iter=3000).fit(F.vectors[rows], labels,
                                                                           sample_weight=weights)
        self.n_codes_ = Y.shape[1]
        return self

    def components(self, F: Features) -> dict[str, np.ndarray]:
        """Each component's scores, shape ``(n_texts, n_codes)``, plus the ``none`` score per text."""
        check_is_fitted(self)
        labels = [str(j) for j in range(self.n_codes_)]
        tfidf = normalize(self.vectorizer_.transform(list(F.texts)))
        tfidf_scores = self.tfidf_head_.decision_function(tfidf)
        vector_scores = self.vector_head_.decision_function(F.vectors)
        none = (_columns(self.tfidf_head_, tfidf_scores, [NONE])
                + _columns(self.vector_head_, vector_scores, [NONE]))[:, 0]
        return {
            "tfidf_prototype": np.asarray((tfidf @ self.prototype_tfidf_.T).todense()),
            "vector_prototype": np.asarray(F.vectors, dtype=np.float64) @ self.prototype_vectors_.T,
            "tfidf_head": _columns(self.tfidf_head_, tfidf_scores, labels),
            "vector_head": _columns(self.vector_head_, vector_scores, labels),
            "none": none,
        }


def summed_scores(components: dict[str, np.ndarray]) -> np.ndarray:
    """The unweighted sum of the row-wise z-scored components: the ranking of codes."""
    return np.asarray(sum(_zrow(components[p]) for p in PARTS))


def pair_features(components: dict[str, np.ndarray], with_parts: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Features of every (text, code) pair for the calibrating stacker, and the summed scores.

    With ``with_parts`` the stacker also reads each component's z-score, so it can weigh them and
    see where they disagree (models fitted before it was added read the summed features only).
    """
    S = summed_scores(components)
    n, k = S.shape
    order = np.argsort(-S, axis=1)
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(k)[None, :]
    second = np.sort(S, axis=1)[:, -2][:, None] if k > 1 else np.zeros((n, 1))
    best_other = np.where(rank == 0, second, S.max(axis=1)[:, None])
    none = np.repeat(components["none"][:, None], k, axis=1)
    columns = [S, S - best_other, (rank == 0).astype(float), none]
    if with_parts:
        columns += [_zrow(components[p]) for p in PARTS]
    features = np.stack(columns, axis=2)
    return features.reshape(n * k, -1), S


class StackedCoder(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type stubs
    """Calibrated probability per code from the summed components.

    The stacker is fitted on out-of-fold pair features (folds grouped, e.g. by transcript), so
    its probabilities reflect texts the scorer did not see.

    Parameters
    ----------
    alpha, C : float
        Passed to :class:`CodeScorer`.
    n_splits : int, default=4
        Folds for the out-of-fold features.
    """

    def __init__(self, alpha: float = 1.0, C: float = 1.0, n_splits: int = 4) -> None:
        self.alpha = alpha
        self.C = C
        self.n_splits = n_splits

    def fit(self, F: Features, Y: np.ndarray, prototypes: Sequence[str], prototype_vectors: np.ndarray,
            sample_weight: np.ndarray | None = None, groups: Sequence[object] | None = None) -> StackedCoder:
        """Fit the scorer on all rows and the stacker on out-of-fold scores."""
        weight = np.ones(len(F)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        group_array = np.asarray(groups if groups is not None else np.arange(len(F)))
        n_splits = min(self.n_splits, len(np.unique(group_array)))
        features, target, pair_weight = [], [], []
        if n_splits >= 2:
            for train, test in GroupKFold(n_splits=n_splits).split(F.vectors, groups=group_array):
                if not Y[train].any(axis=0).any():
                    continue
                part = CodeScorer(self.alpha, self.C).fit(F[train], Y[train], prototypes, prototype_vectors, weight[train])
                pairs, _ = pair_features(part.components(F[test]))
                features.append(pairs)
                target.append(Y[test].ravel())
                pair_weight.append(np.repeat(weight[test], Y.shape[1]))
        y = np.concatenate(target) if target else np.zeros(0)
        if len(np.unique(y)) < 2:
            raise ValueError("StackedCoder needs at least two groups with coded and uncoded (text, code) pairs "
                             "to calibrate; add annotated transcripts.")
        self.stacker_ = LogisticRegression(C=1.0, max_iter=2000).fit(
            np.vstack(features), y, sample_weight=np.concatenate(pair_weight))
        self.stacker_parts_ = True
        self.scorer_ = CodeScorer(self.alpha, self.C).fit(F, Y, prototypes, prototype_vectors, weight)
        return self

    def scores(self, F: Features) -> np.ndarray:
        """The summed z-scores per code (a ranking, not probabilities)."""
        check_is_fitted(self)
        return summed_scores(self.scorer_.components(F))

    def predict_proba(self, F: Features) -> np.ndarray:
        """Calibrated probability that each code applies, shape ``(n_texts, n_codes)``."""
        check_is_fitted(self)
        pairs, S = pair_features(self.scorer_.components(F), getattr(self, "stacker_parts_", False))
        if not len(F):
            return np.zeros(S.shape)
        return np.asarray(self.stacker_.predict_proba(pairs)[:, 1].reshape(S.shape))


class PairHead(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type stubs
    """A label of a (text, code) pair, such as the direction or the facet of a coding: a
    class-balanced logistic regression over the text's embedding, its word 1-2 grams and the code."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def _design(self, F: Features, code_index: Sequence[int]) -> csr_matrix:
        n = len(code_index)
        onehot = csr_matrix((np.ones(n), (np.arange(n), np.asarray(code_index, dtype=int))), shape=(n, self.n_codes_))
        return hstack([csr_matrix(F.vectors), self.vectorizer_.transform(list(F.texts)), onehot]).tocsr()

    def fit(self, F: Features, code_index: Sequence[int], y: Sequence[str], n_codes: int,
            sample_weight: np.ndarray | None = None) -> PairHead:
        """Fit on pairs: row ``i`` is text ``F[i]`` with code ``code_index[i]`` and label ``y[i]``."""
        self.n_codes_ = n_codes
        self.vectorizer_ = NgramTfidf(analyzer="word", ngram_range=(1, 2), min_df=min(2, len(F)),
                                      max_features=None).fit(F.texts)
        self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=3000).fit(
            self._design(F, code_index), np.asarray(y), sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, F: Features, code_index: Sequence[int]) -> np.ndarray:
        """Probabilities per pair, columns in ``classes_`` order."""
        check_is_fitted(self)
        if not len(code_index):
            return np.zeros((0, len(self.classes_)))
        return np.asarray(self.model_.predict_proba(self._design(F, code_index)))


class QuestionHead(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type stubs
    """What the interviewer's question says about the codes of its answer: a TF-IDF ridge
    classifier and an embedding logistic regression over the questions, summed as z-scores.

    It only adds to rows that come with a question; the text heads never depend on it, so
    text without a question codes as well as before (issue "coding validity on real text").
    """

    def __init__(self, alpha: float = 1.0, C: float = 1.0) -> None:
        self.alpha = alpha
        self.C = C

    def fit(self, F: Features, Y: np.ndarray, sample_weight: np.ndarray | None = None) -> QuestionHead:
        """Fit on the rows of ``F`` that have a question."""
        asked = np.flatnonzero(F.has_question)
        if not len(asked) or F.question_vectors is None:
            raise ValueError("QuestionHead needs rows with an interviewer's question.")
        weight = np.ones(len(F)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        rows, labels, weights = _expand(Y[asked], weight[asked])
        questions = [F.questions[i] for i in asked]
        self.vectorizer_ = NgramTfidf().fit(questions)
        self.tfidf_head_ = RidgeClassifier(alpha=self.alpha).fit(
            self.vectorizer_.transform([questions[i] for i in rows]), labels, sample_weight=weights)
        self.vector_head_ = LogisticRegression(C=self.C, max_iter=3000).fit(
            F.question_vectors[asked][rows], labels, sample_weight=weights)
        self.n_codes_ = Y.shape[1]
        return self

    def scores(self, F: Features) -> np.ndarray:
        """Summed z-scores per code; zero for rows without a question."""
        check_is_fitted(self)
        out = np.zeros((len(F), self.n_codes_))
        asked = np.flatnonzero(F.has_question)
        if len(asked) and F.question_vectors is not None:
            labels = [str(j) for j in range(self.n_codes_)]
            tfidf = self.vectorizer_.transform([F.questions[i] for i in asked])
            out[asked] = (_zrow(_columns(self.tfidf_head_, self.tfidf_head_.decision_function(tfidf), labels))
                          + _zrow(_columns(self.vector_head_, self.vector_head_.decision_function(
                              F.question_vectors[asked]), labels)))
        return out
