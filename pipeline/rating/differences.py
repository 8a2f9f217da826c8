"""Differences between municipalities (thesis sub-question 3): spreads and learning pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.rating.rules import RatingRules
from pipeline.rating.verdicts import Rating


@dataclass(frozen=True, slots=True)
class IncentiveSpread:
    """How far municipalities lie apart on one incentive, and who stands out."""

    code: str
    n_municipalities: int
    mean: float | None
    spread: float | None
    std: float | None
    high: tuple[str, ...]
    low: tuple[str, ...]
    ratings: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class LearningPair:
    """One municipality strong (``strong``) where another is weak (``weak``) on ``code``.

    ``mutual`` is true when the weak one is in turn stronger on some other incentive, so they
    could learn from each other.
    """

    code: str
    strong: str
    weak: str
    gap: float
    mutual: bool


@dataclass(frozen=True, slots=True)
class Differences:
    """Differences between municipalities (thesis sub-question 3)."""

    spreads: tuple[IncentiveSpread, ...]
    pairs: tuple[LearningPair, ...]


# ---------------------------------------------------------------------------------- differences



def _score(rating: Rating) -> float:
    """The score of a rated verdict (the ones compared here all have one)."""
    if rating.score is None:
        raise ValueError(f"{rating.municipality}/{rating.code}: a verdict without a score cannot be compared")
    return rating.score

def compare_municipalities(ratings: Sequence[Rating], rules: RatingRules) -> Differences:
    """Spread per incentive, the municipalities that stand out, and learning pairs.

    Parameters
    ----------
    ratings : sequence of Rating
        From :func:`rate_incentives`; region rows and ``onvoldoende_bewijs`` are left out.
    rules : RatingRules
        ``differences.stand_out``, ``learning_pair_min_gap`` and ``max_pairs_per_code``.

    Returns
    -------
    Differences
        ``spreads`` in the order the incentives first appear in ``ratings``; ``pairs`` per
        incentive, the largest gaps first.
    """
    rated = [r for r in ratings if r.level == "municipality" and r.rating != "onvoldoende_bewijs"
             and r.score is not None]
    codes = list(dict.fromkeys(r.code for r in ratings))
    verdicts = {(r.municipality, r.code): r for r in rated}
    spreads, pairs = [], []
    d = rules.differences
    for code in codes:
        cell = sorted((r for r in rated if r.code == code), key=lambda r: r.municipality)
        scores = [_score(r) for r in cell]
        if not cell:
            spreads.append(IncentiveSpread(code, 0, None, None, None, (), (), ()))
            continue
        mean = math.fsum(scores) / len(scores)
        std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores))
        high = tuple(r.municipality for r in sorted(cell, key=lambda r: (-_score(r), r.municipality))
                     if _score(r) - mean >= d.stand_out)
        low = tuple(r.municipality for r in sorted(cell, key=lambda r: (_score(r), r.municipality))
                    if mean - _score(r) >= d.stand_out)
        spreads.append(IncentiveSpread(code, len(cell), round(mean, 4), round(max(scores) - min(scores), 4),
                                       round(std, 4), high, low, tuple((r.municipality, r.rating) for r in cell)))
        candidates = []
        for strong in (r for r in cell if r.rating == "voldoende"):
            for weak in (r for r in cell if r.rating == "onvoldoende"):
                gap = _score(strong) - _score(weak)
                if gap >= d.learning_pair_min_gap:
                    mutual = any(
                        other_code != code
                        and verdicts.get((weak.municipality, other_code)) is not None
                        and verdicts.get((strong.municipality, other_code)) is not None
                        and verdicts[(weak.municipality, other_code)].rating == "voldoende"
                        and verdicts[(strong.municipality, other_code)].rating == "onvoldoende"
                        for other_code in codes)
                    candidates.append(LearningPair(code, strong.municipality, weak.municipality, round(gap, 4), mutual))
        candidates.sort(key=lambda p: (-p.gap, not p.mutual, p.strong, p.weak))
        pairs.extend(candidates[:d.max_pairs_per_code])
    return Differences(tuple(spreads), tuple(pairs))
