"""Applying a trained model to feature rows: probabilities, predicted codes, directions and facets,
and whether a human should look (:class:`CodedRow`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.codebook import Codebook
from pipeline.coding.classify import CodingModel
from pipeline.coding.stack import Features
from pipeline.records import Prediction
from pipeline.review import assess_uncertainty
from pipeline.review.priority import MIN_CONFIDENCE

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CodedRow:
    """The model's coding of one input row, as ``codeer classify`` writes it."""

    id: str
    codes: tuple[tuple[str, float], ...]
    predicted: tuple[str, ...]
    direction: tuple[tuple[str, str, float], ...]
    facet: tuple[tuple[str, str, float], ...]
    needs_review: bool
    model: str


def code_rows(ids: Sequence[str], F: Features, model: CodingModel, model_id: str, codebook: Codebook, *,
              min_confidence: float = MIN_CONFIDENCE) -> list[CodedRow]:
    """Apply a model to feature rows: probabilities for every code (building blocks get the
    highest probability of their incentives and are predicted with them), the predicted codes,
    a direction (and facet for incentives) per predicted code, and whether a human should look.

    ``needs_review`` is the review queue's own rule (:func:`pipeline.review.assess_uncertainty`):
    a code's probability near its threshold, a strongest code under ``min_confidence``, or an
    unsure direction.
    """
    proba, predicted_mask = model.decide(F)
    pairs = [(i, int(j)) for i in range(len(ids)) for j in np.flatnonzero(predicted_mask[i])]
    direction_p = model.predict_direction(F, pairs)
    facet_p = model.predict_facet(F, pairs)
    direction_classes = list(model.direction_.classes_)
    facet_classes = list(model.facet_.classes_) if model.facet_ is not None else []
    by_row: dict[int, list[tuple[str, str, float]]] = {}
    facets: dict[int, list[tuple[str, str, float]]] = {}
    for k, (i, j) in enumerate(pairs):
        code = model.codes[j]
        best = int(np.argmax(direction_p[k]))
        by_row.setdefault(i, []).append((code, direction_classes[best], float(direction_p[k, best])))
        if facet_p is not None and codebook[code].kind == "incentive":
            best_facet = int(np.argmax(facet_p[k]))
            facets.setdefault(i, []).append((code, facet_classes[best_facet], float(facet_p[k, best_facet])))
    rows = []
    # per batch, not per row: which code columns make up each building block (issue 8)
    block_of = {code: codebook.building_block(code) for code in model.codes}
    blocks = [(code.id, np.array([j for j, c in enumerate(model.codes) if block_of[c] == code.id], dtype=int))
              for code in codebook.codes if code.kind == "building_block"]
    thresholds = dict(zip(model.codes, map(float, model.thresholds), strict=True))
    for i, row_id in enumerate(ids):
        scores = {code: float(p) for code, p in zip(model.codes, proba[i], strict=True)}
        predicted = [model.codes[j] for j in np.flatnonzero(predicted_mask[i])]
        directions = {code: (label, p) for code, label, p in by_row.get(i, [])}
        predictions = [Prediction(str(row_id), model_id, code, scores[code], bool(predicted_mask[i, j]),
                                  *directions.get(code, (None, None)))
                       for j, code in enumerate(model.codes)]
        review = assess_uncertainty(predictions, thresholds, min_confidence=min_confidence).score > 0
        for block, columns in blocks:
            scores[block] = float(proba[i, columns].max()) if len(columns) else 0.0
            if len(columns) and predicted_mask[i, columns].any():
                predicted.append(block)
        rows.append(CodedRow(
            id=str(row_id),
            codes=tuple(sorted(scores.items(), key=lambda item: (-item[1], item[0]))),
            predicted=tuple(predicted), direction=tuple(by_row.get(i, [])), facet=tuple(facets.get(i, [])),
            needs_review=bool(review), model=model_id,
        ))
    return rows


def coded_row_json(row: CodedRow) -> dict[str, object]:
    """The JSON object ``codeer classify`` writes for one row."""
    return {
        "id": row.id,
        "codes": [{"code": code, "p": round(p, 4)} for code, p in row.codes],
        "predicted": list(row.predicted),
        "direction": {code: {"label": label, "p": round(p, 4)} for code, label, p in row.direction},
        "facet": {code: {"label": label, "p": round(p, 4)} for code, label, p in row.facet},
        "needs_review": row.needs_review,
        "model": row.model,
    }
