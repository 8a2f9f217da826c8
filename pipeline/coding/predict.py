"""Applying a trained model to feature rows: probabilities, predicted codes, directions and facets,
and whether a human should look (:class:`CodedRow`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.codebook import Codebook
from pipeline.coding.classify import CodingModel

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


def code_rows(ids: Sequence[str], X: np.ndarray, model: CodingModel, model_id: str, codebook: Codebook,
              *, review_threshold: float = 0.6, margin: float = 0.1) -> list[CodedRow]:
    """Apply a model to feature rows: probabilities for every code (building blocks get the
    highest probability of their incentives and are predicted with them), the predicted codes,
    a direction (and facet for incentives) per predicted code, and whether a human should look.

    ``needs_review``: nothing is predicted yet the top probability is above 1 - review_threshold,
    the top probability is under ``review_threshold``, a probability lies within ``margin`` of
    its code's threshold, or the direction is uncertain (its probability under 0.5).
    """
    proba, predicted_mask = model.decide(X)
    pairs = [(i, j) for i in range(len(ids)) for j in np.flatnonzero(predicted_mask[i])]
    direction_p = model.predict_direction(X, pairs)
    facet_p = model.predict_facet(X, pairs)
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
    tops = proba.max(axis=1) if proba.shape[1] else np.zeros(len(ids))
    nears = np.any(np.abs(proba - model.thresholds) < margin, axis=1)
    for i, row_id in enumerate(ids):
        scores = {code: float(p) for code, p in zip(model.codes, proba[i], strict=True)}
        predicted = [model.codes[j] for j in np.flatnonzero(predicted_mask[i])]
        for block, columns in blocks:
            scores[block] = float(proba[i, columns].max()) if len(columns) else 0.0
            if len(columns) and predicted_mask[i, columns].any():
                predicted.append(block)
        top = float(tops[i])
        near = bool(nears[i])
        unsure_direction = any(p < 0.5 for _, _, p in by_row.get(i, []))
        review = (top < review_threshold and top > 1 - review_threshold) or near or unsure_direction
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
