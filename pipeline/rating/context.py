"""Context verdicts: whether a context code (culture, structure, ...) helps or hinders learning."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.rating.balance import (
    _balance,
    _margin,
    _ordered_evidence,
    _round,
    _shares,
)
from pipeline.rating.evidence import CodedFragments, _Fragment, _fragments
from pipeline.rating.rules import RatingRules
from pipeline.rating.verdicts import _cells, _places
from pipeline.rating.wording import _VERDICT_EN, _VERDICT_NL, _cite, _num


@dataclass(frozen=True, slots=True)
class ContextRating:
    """Whether a context code (culture, structure, ...) helps or hinders learning somewhere.

    ``level`` is ``municipality`` or ``region`` (then ``municipality`` holds the region's name).
    """

    municipality: str
    code: str
    verdict: str
    score: float | None
    confidence: float
    n_utterances: int
    n_respondents: int
    share_plus: float
    share_minus: float
    share_neutral: float
    rationale_nl: str
    rationale_en: str
    evidence: tuple[str, ...]
    respondents: tuple[str, ...]
    level: str = "municipality"
    region: str = ""


# ---------------------------------------------------------------------------------- context


def _rate_context_cell(municipality: str, code: str, fragments: Sequence[_Fragment], codebook: Codebook,
                       rules: RatingRules, level: str = "municipality", region: str = "") -> ContextRating:
    label, cr = codebook[code], rules.context
    balance = _balance(fragments, (), code, codebook, rules)
    respondents = tuple(sorted({f.respondent for f in fragments}))
    n_utterances = len({f.utterance_id for f in fragments})
    if n_utterances < cr.min_utterances or len(respondents) < cr.min_respondents or balance.score is None:
        verdict = "onvoldoende_bewijs"
    elif balance.score >= cr.bevorderend:
        verdict = "bevorderend"
    elif balance.score <= cr.belemmerend:
        verdict = "belemmerend"
    else:
        verdict = "gemengd"
    plus, minus, neutral = _shares(fragments)
    confidence = 0.0
    if verdict != "onvoldoende_bewijs":
        confidence = ((1.0 - math.exp(-balance.n_sources / rules.confidence.evidence_scale))
                      * _margin(balance.score, (cr.bevorderend, cr.belemmerend), rules))
    where_nl = f"de regio {municipality}" if level == "region" else municipality
    where_en = f"the region {municipality}" if level == "region" else municipality
    cite = _cite(respondents)
    rationale_nl = (f"{label.label_nl} in {where_nl}: {_VERDICT_NL[verdict]} (score {_num(balance.score, 'nl')}). "
                    f"{n_utterances} fragmenten van {len(respondents)} bronnen, gewogen {plus:.0%} bevorderend, "
                    f"{minus:.0%} belemmerend en {neutral:.0%} gemengd {cite}.").replace(" .", ".")
    rationale_en = (f"{label.label_en} in {where_en}: {_VERDICT_EN[verdict]} (score {_num(balance.score, 'en')}). "
                    f"{n_utterances} fragments from {len(respondents)} sources, weighted {plus:.0%} supportive, "
                    f"{minus:.0%} hindering and {neutral:.0%} mixed {cite}.").replace(" .", ".")
    return ContextRating(
        municipality=municipality, code=code, verdict=verdict, score=_round(balance.score),
        confidence=round(confidence, 3), n_utterances=n_utterances, n_respondents=len(respondents),
        share_plus=plus, share_minus=minus, share_neutral=neutral, rationale_nl=rationale_nl,
        rationale_en=rationale_en, evidence=_ordered_evidence(fragments, verdict), respondents=respondents,
        level=level, region=region,
    )


def rate_context(codings: pd.DataFrame | CodedFragments, codebook: Codebook,
                 rules: RatingRules, regions: Mapping[str, str] | None = None) -> list[ContextRating]:
    """Bevorderend / belemmerend / gemengd per context code, per municipality and per region.

    Parameters
    ----------
    codings : pandas.DataFrame or CodedFragments
        As for :func:`rate_incentives`.
    codebook : Codebook
        Must contain every code of ``rules.context.codes`` (a codebook without one of them
        simply has no rows for it).
    rules : RatingRules
    regions : mapping, optional
        Municipality -> region, as for :func:`rate_incentives`.

    Returns
    -------
    list of ContextRating
        Per municipality (sorted) and context code (rules order), then the region rows
        (``level == "region"``), which pool all sources of the region including the rows about
        the region itself.
    """
    regions = dict(regions or {})
    pairs = codings.pairs if isinstance(codings, CodedFragments) else _fragments(codings, codebook, rules, regions)
    codes = [code for code in rules.context.codes if code in codebook]
    by_cell, regional = _cells(pairs, set(codes))
    places = _places(pairs, {}, regions, rules.region.default_name)
    region_of = {m: region for region, members in places.items() for m in members}
    result = [_rate_context_cell(m, code, by_cell.get((m, code), []), codebook, rules, region=region_of[m])
              for m in sorted(region_of) for code in codes]
    for region, members in places.items():
        for code in codes:
            everything = [f for m in members for f in by_cell.get((m, code), [])] + regional.get((region, code), [])
            result.append(_rate_context_cell(region, code, everything, codebook, rules, "region", region))
    return result
