"""Labelled text beyond the seed annotations: the codebook's own sentences, the real-text
development set (train part only) and the independently written register sentences; and the
real-text yardstick that no model ever trains on.

Every source is a :class:`~pipeline.coding.classify.TrainingSet` with weights and groups, so
the trainer appends it to the annotations of each training fold. The yardstick is read only by
:func:`yardstick`; :func:`knowledge_set` refuses to return any of its items.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.codebook import Codebook
from pipeline.coding.classify import TrainingSet
from pipeline.errors import AnnotationError
from pipeline.resources import annotations_dir

# the codebook version the real-text and extra sentences were labelled with
SOURCES_CODEBOOK = "garvin2008"
# Weights chosen on the real-text yardstick (reports/evaluation.md, "training sources"):
# a codebook sentence or a real-text sentence counts five seed utterances.
CODEBOOK_WEIGHT = 5.0
REALTEXT_WEIGHT = 5.0
EXTRA_WEIGHT = 1.0
YARDSTICK = "yardstick"


@dataclass(frozen=True, slots=True)
class RealItem:
    """One hand-labelled sentence of the real-text development set (pipeline/resources/annotations/realtext/)."""

    id: str
    text: str
    code: str
    direction: str | None
    facet: str | None
    section: str
    line: int
    split: str
    genre: str = "prose"
    also: tuple[str, ...] = field(default=())


def realtext_file() -> Path:
    """The real-text development set shipped with codeer."""
    return annotations_dir() / "realtext" / "items.jsonl"


def extra_file() -> Path:
    """The register sentences written independently of the demo corpus."""
    return annotations_dir() / "extra" / "extra.jsonl"


def read_realtext(codebook: Codebook, path: Path | None = None) -> list[RealItem]:
    """All items of the real-text set, validated against ``codebook`` (``none`` = no code)."""
    path = path or realtext_file()
    items = []
    for number, raw in _jsonl(path):
        code = raw.get("code")
        if code != "none" and code not in codebook:
            raise AnnotationError(f"{path}, line {number}: code {code!r} is not in codebook {codebook.version!r}.")
        items.append(RealItem(
            id=str(raw["id"]), text=str(raw["text"]), code=str(code), direction=raw.get("direction"),
            facet=raw.get("facet"), section=str(raw["section"]), line=int(raw["line"]), split=str(raw["split"]),
            genre=str(raw.get("genre", "prose")), also=tuple(raw.get("also", ()))))
    return items


def yardstick_items(codebook: Codebook, path: Path | None = None) -> list[RealItem]:
    """The never-trained part of the real-text set: the yardstick for every model choice."""
    return [item for item in read_realtext(codebook, path) if item.split == YARDSTICK]


def knowledge_set(codebook: Codebook, codes: Sequence[str], *, realtext: Path | None = None,
                  extra: Path | None = None) -> TrainingSet:
    """Codebook definitions and examples, the real-text train part and the register sentences,
    as one weighted training set over ``codes``.

    Texts whose code is not in ``codes`` (or is ``none``) are kept as negative examples. The
    real-text and register sentences are labelled with codebook garvin2008; for another
    codebook version only the codebook's own sentences are used.
    """
    rows: list[tuple[str, str | None, str | None, str | None, float, str]] = []
    for code in codebook.codes:
        if code.id not in codes:
            continue
        for k, example in enumerate(code.examples):
            rows.append((example.text, code.id, example.direction, None, CODEBOOK_WEIGHT, f"codebook:{k % 4}"))
        if code.definition_nl:
            rows.append((code.definition_nl, code.id, None, None, CODEBOOK_WEIGHT, "codebook:definition"))
    if codebook.version == SOURCES_CODEBOOK:
        for item in read_realtext(codebook, realtext):
            if item.split == YARDSTICK:
                continue
            rows.append((item.text, item.code, item.direction, item.facet, REALTEXT_WEIGHT, f"realtext:{item.section}"))
        for number, raw in _jsonl(extra or extra_file()):
            rows.append((str(raw["text"]), str(raw["code"]), raw.get("direction"), raw.get("facet"), EXTRA_WEIGHT,
                         f"extra:{number % 5}"))
    index = {code: j for j, code in enumerate(codes)}
    Y = np.zeros((len(rows), len(codes)), dtype=int)
    coding_rows = []
    for i, (_, code_id, direction, facet, _, _) in enumerate(rows):
        if code_id in index:
            Y[i, index[code_id]] = 1
            if direction in ("+", "-", "0"):
                coding_rows.append((i, index[code_id], direction, facet if facet in ("provision", "practice") else None))
    return TrainingSet(texts=[r[0] for r in rows], questions=["" for _ in rows], groups=[r[5] for r in rows],
                       codes=list(codes), Y=Y, coding_rows=coding_rows, weights=np.array([r[4] for r in rows]))


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise AnnotationError(f"{path} is missing: codeer's shipped training sentences should be there. "
                              "Reinstall codeer.")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise AnnotationError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
    return rows
