"""What a cell's verdict is made of, for the cell and for the cell with each source left out.

A verdict (:func:`pipeline.rating.verdicts._judge`) depends on the fragments only through a few
ingredients: the source-balanced score and effective number of sources, the same over the
practice fragments, the manager-minus-policy-officer gap and the number of interviewed
respondents. Each is built from sums over respondents, and a respondent's terms depend on its own
fragments only, so leaving one respondent out subtracts exactly that respondent's terms. The
leave-one-source-out stability then costs one pass over the fragments instead of one pass per
respondent (a region of 4,000 respondents took minutes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.codebook import Codebook
from pipeline.rating.balance import _Balance, _balance, _role_score
from pipeline.rating.evidence import INTERVIEW_ROLES, _Answer, _Fragment
from pipeline.rating.rules import RatingRules

_MANAGER, _OFFICER = "manager", "beleidsmedewerker"  # role agreement: manager score - officer score
_SHIFT = 1074  # every finite float is a whole number of 2**-1074 (the smallest subnormal float)
_UNIT = 1 << _SHIFT


@dataclass(frozen=True, slots=True)
class _Ingredients:
    """Everything a cell's verdict depends on besides the rules, the level and divergence."""

    score: float | None  # source-balanced score, questionnaire included
    n_sources: float  # effective number of sources, questionnaire left out
    practice_score: float | None
    practice_n_sources: float
    gap: float | None  # manager score - policy officer score; None when one of them is silent
    n_interviewed: int


def _interviewed(fragments: Iterable[_Fragment]) -> set[str]:
    """The respondents who were interviewed (not documents)."""
    return {f.respondent for f in fragments if f.role in INTERVIEW_ROLES or f.role == "regio"}


def _ingredients(fragments: Sequence[_Fragment], answers: Sequence[_Answer], code: str, codebook: Codebook,
                 rules: RatingRules) -> tuple[_Ingredients, _Balance, _Balance]:
    """The ingredients of a cell's verdict, with the overall and the practice balance they come from."""
    balance = _balance(fragments, answers, code, codebook, rules)
    practice = _balance([f for f in fragments if f.facet == "practice"], (), code, codebook, rules)
    m_score, b_score = _role_score(fragments, _MANAGER), _role_score(fragments, _OFFICER)
    gap = None if m_score is None or b_score is None else m_score - b_score
    return (_Ingredients(balance.score, balance.n_sources, practice.score, practice.n_sources, gap,
                         len(_interviewed(fragments))), balance, practice)


def _units(term: float) -> int:
    """``term`` exactly, as a whole number of 2**-1074."""
    numerator, denominator = term.as_integer_ratio()  # the denominator is a power of two, at most 2**1074
    return numerator << (_SHIFT + 1 - denominator.bit_length())


class _ExactSum:
    """A sum of floats kept exactly, in all and per respondent, so that one respondent's terms can
    be taken out again.

    The terms are kept as whole numbers of 2**-1074 (a ``Fraction`` with one fixed denominator,
    ten times faster), so sums and differences are exact, and the int / int division that turns
    one back into a float is correctly rounded, as ``math.fsum`` is: ``without(r)`` is bit for bit
    the ``fsum`` of the terms of everyone but ``r``, whatever their order.
    """

    __slots__ = ("_parts", "_total", "_rounded")

    def __init__(self) -> None:
        self._parts: dict[str, int] = {}
        self._total = 0
        self._rounded: float | None = None

    def add(self, respondent: str | None, term: float) -> None:
        """Add ``term``; a term of respondent None (the questionnaire) is never left out."""
        exact = _units(term)
        self._total += exact
        self._rounded = None
        if respondent is not None:
            self._parts[respondent] = self._parts.get(respondent, 0) + exact

    def without(self, respondent: str) -> float:
        """The sum of every term but ``respondent``'s, rounded once."""
        part = self._parts.get(respondent)
        if part is not None:
            return (self._total - part) / _UNIT
        if self._rounded is None:  # most respondents add nothing to a role's sums: round once
            self._rounded = self._total / _UNIT
        return self._rounded


class _MeanTerms:
    """The two sums of a weighted mean ``fsum(value * weight) / fsum(weight)`` (balance ``_mean``)."""

    __slots__ = ("_weighted", "_weight")

    def __init__(self) -> None:
        self._weighted, self._weight = _ExactSum(), _ExactSum()

    def add(self, respondent: str | None, value: float, weight: float) -> None:
        """Add one (value, weight) pair: the same float product ``value * weight`` that ``_mean`` sums."""
        self._weighted.add(respondent, value * weight)
        self._weight.add(respondent, weight)

    def without(self, respondent: str) -> float | None:
        """The mean without ``respondent``'s pairs; None without weight, as ``_mean``."""
        total = self._weight.without(respondent)
        if total <= 0:
            return None
        return self._weighted.without(respondent) / total


def _balance_terms(balance: _Balance) -> tuple[_MeanTerms, _ExactSum]:
    """The terms of a balance's score and of its effective number of sources.

    A respondent's source (its score, presence and weight) depends on its own fragments only, and
    a respondent whose own score is None has no source here, exactly as in a rerun without it.
    The questionnaire source (the only one that does not count) is never left out.
    """
    score, counted = _MeanTerms(), _ExactSum()
    for source in balance.sources:
        respondent = source.respondent if source.counts else None
        score.add(respondent, source.score, source.weight)
        if source.counts:
            counted.add(respondent, source.weight)
    return score, counted


def _leave_one_out(fragments: Sequence[_Fragment], answers: Sequence[_Answer], code: str, codebook: Codebook,
                   rules: RatingRules) -> list[_Ingredients]:
    """The ingredients of the cell with each respondent left out in turn (respondents sorted).

    Equal, float for float, to :func:`_ingredients` of the fragments without that respondent,
    at the cost of one pass over the fragments instead of one per respondent.
    """
    respondents = sorted({f.respondent for f in fragments})
    if not respondents:
        return []
    _, balance, practice = _ingredients(fragments, answers, code, codebook, rules)
    score, counted = _balance_terms(balance)
    practice_score, practice_counted = _balance_terms(practice)
    manager, officer = _MeanTerms(), _MeanTerms()
    for f in fragments:
        if f.role == _MANAGER:
            manager.add(f.respondent, f.value, f.weight)
        elif f.role == _OFFICER:
            officer.add(f.respondent, f.value, f.weight)
    interviewed = _interviewed(fragments)
    out = []
    for respondent in respondents:
        m_score, b_score = manager.without(respondent), officer.without(respondent)
        out.append(_Ingredients(
            score.without(respondent), counted.without(respondent), practice_score.without(respondent),
            practice_counted.without(respondent), None if m_score is None or b_score is None else m_score - b_score,
            len(interviewed) - (1 if respondent in interviewed else 0)))
    return out
