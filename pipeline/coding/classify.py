"""The coding model: codes with calibrated probabilities, plus direction and facet heads.

:class:`CodingModel` puts the stacked code scorer (:mod:`pipeline.coding.stack`) together with
the direction (``+``/``-``/``0``) and facet (provision/practice) heads, the code ids and the
codebook version. It reads the text of a row and its embedding (:class:`Features`); the
interviewer's question, where there is one, only shifts the text's log-odds (a separate head), so
text without a question codes as well as text with one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.exceptions import NotFittedError

from pipeline.codebook import Codebook
from pipeline.coding.embed import ENCODE_BATCH
from pipeline.coding.stack import Features, PairHead, QuestionHead, StackedCoder
from pipeline.errors import ModelCardMismatchError
from pipeline.records import Annotation

if TYPE_CHECKING:
    from pipeline.coding.embed import EmbeddingCacheLike, Encoder

logger = logging.getLogger(__name__)

DIRECTIONS = ("+", "-", "0")
# A code is predicted when it is more likely to apply than not (probabilities are calibrated).
THRESHOLD = 0.5
# How much the question's z-scores move the log-odds of a code, chosen by grouped CV on the demo
# annotations (0, 0.25, 0.5, 1 tried: reports/evaluation.md); real text without a question is unaffected.
QUESTION_WEIGHT = 0.5
MODEL_FORMAT = 2  # 1: ridge classifiers over embeddings and the question (codeer before 2026-12)


@dataclass
class TrainingSet:
    """Annotated utterances as arrays: codes indicator, groups and per-coding rows."""

    texts: list[str]
    questions: list[str]
    groups: list[str]
    codes: list[str]
    Y: np.ndarray
    coding_rows: list[tuple[int, int, str, str | None]]  # (sample, code index, direction, facet)
    weights: np.ndarray | None = None  # per text; None: all 1

    def weight_array(self) -> np.ndarray:
        """The weight of each text (1 where none was given)."""
        return np.ones(len(self.texts)) if self.weights is None else np.asarray(self.weights, dtype=float)

    def subset(self, rows: Sequence[int] | np.ndarray) -> TrainingSet:
        """The set restricted to ``rows`` (coding rows renumbered)."""
        rows = np.asarray(rows, dtype=int)
        position = {int(r): i for i, r in enumerate(rows)}
        return TrainingSet(
            texts=[self.texts[r] for r in rows], questions=[self.questions[r] for r in rows],
            groups=[self.groups[r] for r in rows], codes=self.codes, Y=self.Y[rows],
            coding_rows=[(position[s], j, d, f) for s, j, d, f in self.coding_rows if s in position],
            weights=None if self.weights is None else np.asarray(self.weights)[rows])

    def __add__(self, other: TrainingSet) -> TrainingSet:
        """Both sets' texts, one after the other (the codes must be the same)."""
        if other.codes != self.codes:
            raise ValueError("TrainingSets with different codes cannot be joined.")
        offset = len(self.texts)
        return TrainingSet(
            texts=self.texts + other.texts, questions=self.questions + other.questions,
            groups=self.groups + other.groups, codes=self.codes, Y=np.vstack([self.Y, other.Y]),
            coding_rows=self.coding_rows + [(s + offset, j, d, f) for s, j, d, f in other.coding_rows],
            weights=np.concatenate([self.weight_array(), other.weight_array()]))


def training_set(annotations: Sequence[Annotation], codebook: Codebook) -> TrainingSet:
    """Turn annotations (one per utterance; several annotators merged) into arrays.

    Refuses annotations made with another codebook version.
    """
    by_utterance: dict[str, list[Annotation]] = {}
    for annotation in annotations:
        if annotation.codebook_version != codebook.version:
            raise ModelCardMismatchError(
                f"annotation of utterance {annotation.utterance_id} ({annotation.source_file}) was made with codebook "
                f"version {annotation.codebook_version!r}; this model uses {codebook.version!r}. Convert the "
                f"annotations with 'codeer codebook migrate FILE --to {codebook.version} --out NEW.jsonl', "
                "or train with the matching codebook.")
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



@dataclass(frozen=True)
class Prototypes:
    """What the codebook says of each code: one text for TF-IDF similarity and the mean
    embedding of its pieces (label, definition, include note, examples)."""

    texts: tuple[str, ...]
    vectors: np.ndarray


def prototype_pieces(codebook: Codebook, code_id: str) -> list[str]:
    """The label, definition, include note and example texts of a code."""
    code = codebook[code_id]
    pieces = [code.label_nl + ".", code.definition_nl, code.include, *(e.text for e in code.examples)]
    return [piece for piece in pieces if piece]


def code_prototypes(codebook: Codebook, codes: Sequence[str], encoder: Encoder, *,
                    cache: EmbeddingCacheLike | None = None) -> Prototypes:
    """The prototypes of ``codes``, embedded with ``encoder``."""
    from pipeline.coding.embed import embed_texts

    pieces = [prototype_pieces(codebook, code) for code in codes]
    flat = [piece for group in pieces for piece in group]
    vectors, _ = embed_texts(flat, encoder, cache=cache)
    means, start = [], 0
    for group in pieces:
        means.append(vectors[start:start + len(group)].mean(axis=0))
        start += len(group)
    return Prototypes(tuple(" ".join(group) for group in pieces), np.vstack(means))


class CodingModel:
    """Everything a trained model holds: code ids, the stacked code scorer, the direction and
    facet heads, and the encoder the features were made with. Saved with skops (never pickle).

    Parameters
    ----------
    codes : list of str
        Code ids, the columns of every probability matrix.
    codebook_version, encoder_id : str
        What the model was trained with; loading checks both.
    dim : int
        Embedding dimension.
    C : float, default=1.0
        Inverse regularisation of the logistic heads.
    """

    def __init__(self, codes: list[str], codebook_version: str, encoder_id: str, dim: int, C: float = 1.0) -> None:
        self.codes = list(codes)
        self.codebook_version = codebook_version
        self.encoder_id = encoder_id
        self.dim = dim
        self.C = C
        self.model_format = MODEL_FORMAT

    def fit(self, F: Features, data: TrainingSet, prototypes: Prototypes) -> CodingModel:
        """Fit all heads on the rows of ``data`` (features ``F``)."""
        weights = data.weight_array()
        self.coder_ = StackedCoder(C=self.C).fit(F, data.Y, prototypes.texts, prototypes.vectors, weights, data.groups)
        self.thresholds_ = np.full(len(self.codes), THRESHOLD)
        self.question_: QuestionHead | None = None
        if F.has_question.any():
            self.question_ = QuestionHead(C=self.C).fit(F, data.Y, weights)
        samples = np.array([s for s, _, _, _ in data.coding_rows], dtype=int)
        code_index = [j for _, j, _, _ in data.coding_rows]
        directions = [d for _, _, d, _ in data.coding_rows]
        if len(set(directions)) < 2:
            raise ValueError("The direction head needs codings with at least two directions (+, -, 0).")
        self.direction_ = PairHead(C=self.C).fit(F[samples], code_index, directions, len(self.codes), weights[samples])
        facet_rows = [k for k, (_, _, _, f) in enumerate(data.coding_rows) if f]
        self.facet_: PairHead | None = None
        facets = [data.coding_rows[k][3] for k in facet_rows]
        if len(set(facets)) == 2:
            self.facet_ = PairHead(C=self.C).fit(F[samples[facet_rows]], [code_index[k] for k in facet_rows],
                                                 [str(f) for f in facets], len(self.codes), weights[samples[facet_rows]])
        return self

    def decide(self, F: Features) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, decisions)``: one column per code."""
        if not hasattr(self, "coder_"):
            raise NotFittedError("This CodingModel is not fitted yet. Call 'fit' or load a trained model.")
        proba = self.coder_.predict_proba(F)
        if self.question_ is not None and F.has_question.any():
            clipped = np.clip(proba, 1e-6, 1 - 1e-6)
            logits = np.log(clipped / (1 - clipped)) + QUESTION_WEIGHT * self.question_.scores(F)
            proba = 1.0 / (1.0 + np.exp(-logits))
        return proba, proba >= self.thresholds_

    def predict_proba(self, F: Features) -> np.ndarray:
        """Probability per code (columns in ``codes`` order)."""
        return self.decide(F)[0]

    def predict_direction(self, F: Features, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        """Direction probabilities (columns ``direction_.classes_``) for (row, code index) pairs."""
        rows = np.array([i for i, _ in pairs], dtype=int)
        return self.direction_.predict_proba(F[rows], [j for _, j in pairs])

    def predict_facet(self, F: Features, pairs: Sequence[tuple[int, int]]) -> np.ndarray | None:
        """Facet probabilities (columns ``facet_.classes_``) or None without a facet head."""
        if self.facet_ is None or not pairs:
            return None
        rows = np.array([i for i, _ in pairs], dtype=int)
        return self.facet_.predict_proba(F[rows], [j for _, j in pairs])

    @property
    def thresholds(self) -> np.ndarray:
        """Decision threshold per code."""
        return self.thresholds_


def featurize(texts: Sequence[str], encoder: Encoder, *, questions: Sequence[object] | None = None,
              cache: EmbeddingCacheLike | None = None, batch_size: int = ENCODE_BATCH,
              show_progress: bool = False) -> tuple[Features, int, int]:
    """Embed texts (and their questions, where given); return ``(features, n_encoded,
    n_cache_hits)``; ``n_encoded`` counts the texts the encoder was called on (a repeated text
    or question once). A missing, empty or null question is no question."""
    from pipeline.coding.embed import embed_texts_counted

    vectors, hits, n_encoded = embed_texts_counted(texts, encoder, cache=cache, batch_size=batch_size,
                                                   show_progress=show_progress)
    asked = [q.strip() if isinstance(q, str) else "" for q in (questions or ())]
    if not any(asked):
        return Features(tuple(texts), vectors), n_encoded, hits
    rows = [i for i, q in enumerate(asked) if q]
    question_vectors = np.zeros_like(vectors)
    embedded, question_hits, question_encoded = embed_texts_counted([asked[i] for i in rows], encoder, cache=cache,
                                                                    batch_size=batch_size)
    question_vectors[rows] = embedded
    return Features(tuple(texts), vectors, tuple(asked), question_vectors), n_encoded + question_encoded, \
        hits + question_hits


def self_train(F: Features, data: TrainingSet, F_unlabelled: Features, model: CodingModel,
               *, confidence: float = 0.9) -> tuple[Features, TrainingSet]:
    """Self-training: add unlabelled texts whose codes the model is sure of.

    An unlabelled text is kept when every code is decided confidently (probability above
    ``confidence`` or below ``1 - confidence``); its confident positives become its labels.
    Direction rows are not invented for pseudo-labels.
    """
    if len(F_unlabelled) == 0:
        return F, data
    proba = model.predict_proba(F_unlabelled)
    sure = ((proba >= confidence) | (proba <= 1 - confidence)).all(axis=1)
    kept = F_unlabelled[sure]
    pseudo = TrainingSet(texts=list(kept.texts), questions=["" for _ in kept.texts],
                         groups=[f"unlabelled-{i % 5}" for i in range(len(kept))], codes=data.codes,
                         Y=(proba[sure] >= confidence).astype(int), coding_rows=[])
    logger.info("self-training: %d of %d unlabelled texts pseudo-labelled", len(kept), len(F_unlabelled))
    return F + Features(kept.texts, kept.vectors), data + pseudo


def fit_coding_model(F: Features, data: TrainingSet, *, codebook_version: str, encoder_id: str,
                     prototypes: Prototypes, knowledge: tuple[Features, TrainingSet] | None = None,
                     unlabelled: Features | None = None, C: float = 1.0) -> CodingModel:
    """Fit a :class:`CodingModel` on ``data`` plus the ``knowledge`` rows (codebook and other
    sentences, see :mod:`pipeline.coding.sources`), with one round of self-training when
    unlabelled features are given."""
    if knowledge is not None:
        F = F + knowledge[0]
        data = data + knowledge[1]
    model = CodingModel(data.codes, codebook_version, encoder_id, F.shape[1], C).fit(F, data, prototypes)
    if unlabelled is not None and len(unlabelled):
        F, data = self_train(F, data, unlabelled, model)
        model = CodingModel(data.codes, codebook_version, encoder_id, F.shape[1], C).fit(F, data, prototypes)
    return model
