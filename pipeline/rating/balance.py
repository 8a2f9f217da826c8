"""Scoring the evidence of one cell: respondent-balanced scores, shares, verdict cut-offs and
the order in which evidence is quoted."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.codebook import Codebook
from pipeline.rating.evidence import _Answer, _Fragment
from pipeline.rating.rules import RatingRules


@dataclass(frozen=True, slots=True)
class _Source:
    """One source's view of one code: its score and how much it counts."""

    respondent: str
    role: str
    score: float  # weighted mean direction in [-1, 1]
    presence: float  # probability that the source spoke of the code at all
    weight: float  # source weight x presence: its weight in the cell's score
    counts: bool  # counts towards the effective number of sources (not the questionnaire)


@dataclass(frozen=True, slots=True)
class _Balance:
    score: float | None
    sources: tuple[_Source, ...]

    @property
    def n_sources(self) -> float:
        """Effective number of sources: presences x source weights, questionnaire left out."""
        return math.fsum(s.weight for s in self.sources if s.counts)


# ---------------------------------------------------------------------------------- scoring


def _mean(values: Iterable[tuple[float, float]]) -> float | None:
    """Weighted mean of (value, weight) pairs, exact whatever their order (math.fsum)."""
    pairs = list(values)
    total = math.fsum(weight for _, weight in pairs)
    if total <= 0:
        return None
    return math.fsum(value * weight for value, weight in pairs) / total


def _source_weight(role: str, code: str, codebook: Codebook, rules: RatingRules) -> float:
    weight = rules.evidence.source_weights.of(role)
    assessment = rules.evidence.self_assessment
    if role == assessment.role and codebook.building_block(code) in assessment.building_blocks:
        weight *= assessment.weight
    return weight


def _presence(certainties: Iterable[float], how: str) -> float:
    """Probability that a source spoke of a code: noisy-or (1 - prod(1 - p)) or the max."""
    values = sorted(certainties)
    if how == "max":
        return max(values, default=0.0)
    return 1.0 - math.prod(1.0 - p for p in values)


def _balance(fragments: Sequence[_Fragment], answers: Sequence[_Answer], code: str, codebook: Codebook,
             rules: RatingRules) -> _Balance:
    """Source-balanced score: each source's mean direction, weighted by source weight x presence.

    A source (respondent or document series) counts once per code however much it said
    (issue 17); its presence is the chance it spoke of the code at all.
    """
    by_source: dict[str, list[_Fragment]] = defaultdict(list)
    for fragment in fragments:
        by_source[fragment.respondent].append(fragment)
    sources = []
    for respondent in sorted(by_source):
        group = by_source[respondent]
        score = _mean((f.value, f.weight) for f in group)
        if score is None:
            continue
        role = min(f.role for f in group)
        presence = _presence((f.certainty for f in group), rules.evidence.source_presence)
        effective = _source_weight(role, code, codebook, rules) * presence
        sources.append(_Source(respondent, role, score, presence, effective, True))
    if answers:
        score = math.fsum(a.score for a in answers) / len(answers)
        effective = rules.evidence.source_weights.questionnaire
        sources.append(_Source("vragenlijst", "questionnaire", score, 1.0, effective, False))
    return _Balance(_mean((s.score, s.weight) for s in sources), tuple(sources))


def _shares(fragments: Sequence[_Fragment]) -> tuple[float, float, float]:
    total = math.fsum(f.weight for f in fragments)
    if total <= 0:
        return 0.0, 0.0, 0.0
    plus, minus, neutral = (round(math.fsum(f.weight for f in fragments if f.value == v) / total, 4) for v in (1, -1, 0))
    return plus, minus, neutral


def _role_score(fragments: Sequence[_Fragment], role: str) -> float | None:
    return _mean((f.value, f.weight) for f in fragments if f.role == role)


def _verdict(score: float, rules: RatingRules) -> str:
    if score >= rules.thresholds.voldoende:
        return "voldoende"
    if score <= rules.thresholds.onvoldoende:
        return "onvoldoende"
    return "matig"


def _margin(score: float | None, cuts: Sequence[float], rules: RatingRules) -> float:
    if score is None:
        return 0.5
    distance = min(abs(score - cut) for cut in cuts)
    return 0.5 + 0.5 * min(1.0, distance / rules.confidence.margin_scale)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _ordered_evidence(fragments: Sequence[_Fragment], verdict: str) -> tuple[str, ...]:
    """Utterance ids, the fragments that best support the verdict first (for quoting)."""
    def key(f: _Fragment) -> tuple[float, str]:
        return (-f.weight, f.utterance_id)
    wanted = {"voldoende": 1, "bevorderend": 1, "onvoldoende": -1, "belemmerend": -1}.get(verdict)
    if wanted is not None:
        ordered = sorted(fragments, key=lambda f: (f.value != wanted, f.facet == "provision", *key(f)))
    else:
        plus = sorted((f for f in fragments if f.value > 0), key=lambda f: (f.facet == "provision", *key(f)))
        minus = sorted((f for f in fragments if f.value < 0), key=lambda f: (f.facet == "provision", *key(f)))
        rest = sorted((f for f in fragments if f.value == 0), key=key)
        ordered = [f for pair in zip(plus, minus, strict=False) for f in pair]
        ordered += plus[len(minus):] + minus[len(plus):] + rest
    seen: dict[str, None] = {}
    for fragment in ordered:
        seen.setdefault(fragment.utterance_id, None)
    return tuple(seen)
