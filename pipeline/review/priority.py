"""How the review queue orders its items: uncertainty, impact and near-duplicates.

Priority
--------
``priority = uncertainty x impact``.

*Uncertainty* (0..1) is the largest of: how close a code's probability is to its threshold
(1 at the threshold, 0 at ``margin`` away); ``1 - p`` of the strongest predicted code when it
is under ``min_confidence``; how unsure the direction of a predicted code is (1 when its
three directions are equally likely); and 1 when the model disagrees with a human label.

*Impact* (0..1) is how much one correction could move a rating. By default (see
:func:`evidence_impact`) a municipality's rating of a code leans on the balance of positive
and negative evidence, so ``impact(municipality, code) = 1 / (1 + |n_plus - n_minus|)``: where
a municipality has little evidence for a code, or positive and negative evidence are even, one
corrected fragment can flip the rating; where twenty fragments agree, it cannot. The item's
impact is the largest over the codes it concerns.

Near-duplicate texts (word 3-gram Jaccard similarity of at least 0.5 to a higher-priority
item) are demoted at enqueue time and never share a claimed batch, so a batch is not filled
with one sentence said five times.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain

from pipeline.records import (
    Coding,
    Prediction,
    Utterance,
)
from pipeline.store import Store

DEFAULT_THRESHOLD = 0.5
# A strongest code from 0.2 to under 0.45, or a direction under 0.4, flags about 3 in 10 real
# sentences. These were chosen while looking at the real-text yardstick, so its needs-review
# figures are optimistic; on it the precision stays between 0.42 and 0.53 for any cut-off from
# 0.3 to 0.55 (docs/evaluation.md): the confidence signal, not the cut-off, limits what review catches.
MIN_CONFIDENCE = 0.45
FLOOR = 0.2
MARGIN = 0.02
DIRECTION_CONFIDENCE = 0.4
NEAR_DUPLICATE = 0.5  # Jaccard similarity of word 3-grams
DUPLICATE_DEMOTION = 0.1  # a near-duplicate keeps a tenth of its priority


# Ratings use the human label of a labelled utterance, never its prediction: a second look
# changes a rating only where the first coder erred, so such an item ranks below the
# uncertain predictions that count in the ratings as they stand.
HUMAN_RECHECK = 0.25


RatingImpact = Callable[[str, str], float] | Mapping[tuple[str, str], float]


class Reason(StrEnum):
    """Why an item is in the queue (stored with the item, shown to the annotator)."""

    LOW_TOP_PROBABILITY = "low_top_probability"
    NEAR_THRESHOLD = "near_threshold"
    UNCERTAIN_DIRECTION = "uncertain_direction"
    DISAGREES_WITH_HUMAN = "disagrees_with_human"
    NEAR_DUPLICATE = "near_duplicate"


@dataclass(frozen=True, slots=True)
class Uncertainty:
    """How unsure the model is about one utterance, why, and which codes are in play."""

    score: float
    reasons: tuple[Reason, ...]
    codes: tuple[str, ...]


def assess_uncertainty(
    predictions: Sequence[Prediction],
    thresholds: Mapping[str, float],
    human: Sequence[Coding] | None = None,
    *,
    min_confidence: float = MIN_CONFIDENCE,
    floor: float = FLOOR,
    margin: float = MARGIN,
    direction_confidence: float = DIRECTION_CONFIDENCE,
) -> Uncertainty:
    """Score how much one utterance's predictions need a human, and say why.

    Parameters
    ----------
    predictions : sequence of Prediction
        The predictions of one model on one utterance (one per code).
    thresholds : mapping of code id to float
        Decision threshold per code; a code without one uses 0.5.
    human : sequence of Coding or None
        The human coding of the utterance, when it has one. A human-labelled utterance is
        only queued when the model disagrees with it (other codes or other directions), with
        the score ``HUMAN_RECHECK``: its prediction does not count in the ratings.
    min_confidence, floor, margin, direction_confidence : float
        A strongest code (predicted or not) with a probability from ``floor`` to under
        ``min_confidence`` is a doubt (under ``floor`` the utterance is read as "no code"); within
        ``margin`` of its threshold a code's decision could flip; under
        ``direction_confidence`` a predicted code's direction is unsure.

    Returns
    -------
    Uncertainty
        ``score`` in 0..1 (0 with no reasons), the reasons, and the codes in play.
    """
    predicted = [p for p in predictions if p.predicted]
    if human is not None:
        model = {p.code: p.direction for p in predicted}
        labelled = {c.code: c.direction for c in human}
        differs = model.keys() != labelled.keys() or any(
            direction is not None and direction != labelled[code] for code, direction in model.items())
        if differs:
            return Uncertainty(HUMAN_RECHECK, (Reason.DISAGREES_WITH_HUMAN,), tuple(dict.fromkeys([*model, *labelled])))
        return Uncertainty(0.0, (), ())
    components: dict[Reason, float] = {}
    codes: list[str] = [p.code for p in predicted]
    if predictions:
        # the strongest code, predicted or not: between "no code" and "sure" a person should look
        strongest = max(predictions, key=lambda p: p.probability)
        if floor <= strongest.probability < min_confidence:
            components[Reason.LOW_TOP_PROBABILITY] = 1.0 - strongest.probability
            codes.append(strongest.code)
    for p in predictions:
        distance = abs(p.probability - thresholds.get(p.code, DEFAULT_THRESHOLD))
        if distance < margin:
            score = 1.0 - distance / margin
            components[Reason.NEAR_THRESHOLD] = max(components.get(Reason.NEAR_THRESHOLD, 0.0), score)
            codes.append(p.code)
    for p in predicted:
        if p.direction_p is not None and p.direction_p < direction_confidence:
            # three directions: 1/3 is a coin toss (score 1), certainty scores 0
            score = min(1.0, (1.0 - p.direction_p) * 1.5)
            components[Reason.UNCERTAIN_DIRECTION] = max(components.get(Reason.UNCERTAIN_DIRECTION, 0.0), score)
    if not components:
        return Uncertainty(0.0, (), ())
    if not codes and predictions:
        codes.append(max(predictions, key=lambda p: p.probability).code)
    reasons = tuple(sorted(components, key=lambda reason: -components[reason]))
    return Uncertainty(round(max(components.values()), 6), reasons, tuple(dict.fromkeys(codes)))


def evidence_impact(evidence: Mapping[tuple[str, str], tuple[int, int]]) -> Callable[[str, str], float]:
    """The default impact rule: ``1 / (1 + |n_plus - n_minus|)`` per ``(municipality, code)``.

    ``evidence`` maps ``(municipality, code)`` to the counts of positive and negative coded
    fragments. With no evidence, or evenly balanced evidence, one correction can flip the
    rating (impact 1); each fragment more on one side halves, thirds, ... that chance.

    Examples
    --------
    >>> impact = evidence_impact({("Kerkeloo", "analyse"): (4, 0)})
    >>> impact("Kerkeloo", "analyse"), impact("Zandeloo", "analyse")
    (0.2, 1.0)
    """

    def impact(municipality: str, code: str) -> float:
        plus, minus = evidence.get((municipality, code), (0, 0))
        return 1.0 / (1.0 + abs(plus - minus))

    return impact


def _impact_function(rating_impact: RatingImpact | None, store: Store, predictions: Mapping[str, list[Prediction]],
                     utterances: Mapping[str, Utterance], human: Mapping[str, tuple[Coding, ...]]) -> Callable[[str, str], float]:
    if callable(rating_impact):
        return rating_impact
    if rating_impact is not None:
        weights = dict(rating_impact)
        return lambda municipality, code: float(weights.get((municipality, code), 1.0))
    # only the municipalities of this batch: impact is asked for no others
    evidence = dict(store.evidence_counts({utterance.municipality for utterance in utterances.values()}))
    for utterance_id, rows in predictions.items():
        utterance = utterances.get(utterance_id)
        if utterance is None or utterance_id in human:
            continue  # human evidence is already counted
        for p in rows:
            if p.predicted and p.direction in ("+", "-"):
                plus, minus = evidence.get((utterance.municipality, p.code), (0, 0))
                evidence[(utterance.municipality, p.code)] = (plus + (p.direction == "+"), minus + (p.direction == "-"))
    return evidence_impact(evidence)


_WORD = re.compile(r"\w+", re.UNICODE)


def text_shingles(text: str, k: int = 3) -> frozenset[str]:
    """Word ``k``-grams of a text after case folding, punctuation and spacing dropped.

    Examples
    --------
    >>> sorted(text_shingles("De werkdruk is hoog!"))
    ['de werkdruk is', 'werkdruk is hoog']
    """
    words = _WORD.findall(text.casefold())
    if len(words) <= k:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i:i + k]) for i in range(len(words) - k + 1))


class _DuplicateIndex:
    """Finds texts whose shingles overlap an indexed text by at least ``threshold`` (Jaccard)."""

    def __init__(self, threshold: float = NEAR_DUPLICATE) -> None:
        self.threshold = threshold
        self._sizes: list[int] = []
        self._index: dict[str, list[int]] = {}

    def is_near_duplicate(self, shingles: frozenset[str]) -> bool:
        # overlaps counted in C, and |a | b| = |a| + |b| - |a & b|: building the union of every
        # overlapping set grew with the number of similar texts in a batch (issue 8)
        overlap = Counter(chain.from_iterable(self._index.get(shingle, ()) for shingle in shingles))
        size, sizes, threshold = len(shingles), self._sizes, self.threshold
        return any(n / (size + sizes[other] - n) >= threshold for other, n in overlap.items())

    def add(self, shingles: frozenset[str]) -> None:
        for shingle in shingles:
            self._index.setdefault(shingle, []).append(len(self._sizes))
        self._sizes.append(len(shingles))
