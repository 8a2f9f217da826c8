"""Incentive verdicts: one :class:`Rating` per incentive and municipality, and for the region.

The rules that turn evidence into verdicts live in the shipped ``rating_rules.yaml``
(:mod:`pipeline.rating.rules`). Every function here is pure and order-independent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.rating.balance import (
    _Balance,
    _balance,
    _margin,
    _mean,
    _ordered_evidence,
    _round,
    _shares,
    _verdict,
)
from pipeline.rating.evidence import (
    CodedFragments,
    _Answer,
    _answers,
    _Fragment,
    _fragments,
)
from pipeline.rating.rules import RatingRules
from pipeline.rating.stability import _Ingredients, _ingredients, _interviewed, _leave_one_out
from pipeline.rating.wording import (
    _VERDICT_EN,
    _VERDICT_NL,
    _cite,
    _facet_lines,
    _num,
    _questionnaire_lines,
    _role_sentence,
    _source_lines,
)


@dataclass(frozen=True, slots=True)
class Rating:
    """The verdict on one incentive in one municipality or region, with its evidence.

    ``level`` is ``municipality`` or ``region``; for a region row ``municipality`` holds the
    region's name (as ``region`` does). ``score`` is the balance of the evidence in [-1, 1]
    (None without any evidence); ``n_sources`` the effective number of sources (presence x
    source weight); ``sources_for`` / ``sources_against`` the respondent codes that carry the
    verdict and those that pull the other way (for matig: towards voldoende or onvoldoende);
    ``stability`` the share of leave-one-source-out verdicts equal to this one (None without
    sources);
    ``share_*`` are weighted shares of ``+``/``-``/``0`` fragments; ``role_agreement`` is the
    manager score minus the policy officer score (positive: managers are kinder; None when one
    of the two is silent). ``evidence`` lists utterance ids, the fragments that best support the
    verdict first; ``respondents`` the codes cited, as in the thesis ("BE; ME").
    """

    municipality: str
    code: str
    rating: str
    score: float | None
    confidence: float
    n_utterances: int
    n_respondents: int
    share_plus: float
    share_minus: float
    share_neutral: float
    role_agreement: float | None
    rationale_nl: str
    rationale_en: str
    evidence: tuple[str, ...]
    respondents: tuple[str, ...]
    score_practice: float | None = None
    score_provision: float | None = None
    score_documents: float | None = None
    score_questionnaire: float | None = None
    n_questionnaire: int = 0
    caveats: tuple[str, ...] = ()
    level: str = "municipality"
    region: str = ""
    n_sources: float = 0.0
    sources_for: tuple[str, ...] = ()
    sources_against: tuple[str, ...] = ()
    stability: float | None = None


# ---------------------------------------------------------------------------------- incentives


@dataclass(frozen=True, slots=True)
class _Decision:
    rating: str
    balance: _Balance
    practice: _Balance
    caveats: tuple[str, ...]
    gap: float | None


def _judge(ingredients: _Ingredients, rules: RatingRules, level: str,
           divergent: bool = False) -> tuple[str, tuple[str, ...]]:
    """The verdict and its caveats from a cell's ingredients: enough sources, cut-offs, then the gates.

    The one place where the rules turn evidence into a verdict: :func:`_decide` and
    :func:`_stability` both judge through it.
    """
    i, t = ingredients, rules.thresholds
    if i.score is None or i.n_sources < t.min_sources.of(level) or i.n_interviewed < t.min_interview_respondents:
        return "onvoldoende_bewijs", ()
    rating, caveats = _verdict(i.score, rules), []
    needs = rules.practice
    if rating == "voldoende" and (i.practice_n_sources < needs.voldoende_min_practice_sources
                                  or i.practice_score is None
                                  or i.practice_score <= needs.voldoende_min_practice_score):
        rating = "matig"
        caveats.append("practice_not_shown")
    if level == "municipality" and i.gap is not None and abs(i.gap) >= rules.role_agreement.contested_gap:
        caveats.append("contested")
        if rules.role_agreement.pull_to_matig and rating in ("voldoende", "onvoldoende"):
            rating = "matig"
    if divergent:
        caveats.append("divergent")
        rating = "matig"
    return rating, tuple(caveats)


def _decide(fragments: Sequence[_Fragment], answers: Sequence[_Answer], code: str, codebook: Codebook,
            rules: RatingRules, level: str, divergent: bool = False) -> _Decision:
    """The verdict of a cell without its wording: its ingredients, judged by :func:`_judge`."""
    ingredients, balance, practice = _ingredients(fragments, answers, code, codebook, rules)
    rating, caveats = _judge(ingredients, rules, level, divergent)
    return _Decision(rating, balance, practice, caveats, ingredients.gap)


def _stability(fragments: Sequence[_Fragment], answers: Sequence[_Answer], code: str, codebook: Codebook,
               rules: RatingRules, level: str, divergent: bool, rating: str) -> float | None:
    """Share of the verdicts made with one source left out that equal ``rating``.

    The same verdicts as rerunning :func:`_decide` without each respondent, but from the
    leave-one-out ingredients (:func:`_leave_one_out`): linear, not quadratic, in the number of
    respondents.
    """
    left_out = _leave_one_out(fragments, answers, code, codebook, rules)
    if not left_out:
        return None
    same = sum(_judge(ingredients, rules, level, divergent)[0] == rating for ingredients in left_out)
    return round(same / len(left_out), 4)


def _support(balance: _Balance, rating: str, rules: RatingRules) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sources that carry ``rating`` and sources that pull the other way, the heaviest first."""
    sources = sorted((s for s in balance.sources if s.counts), key=lambda s: (-s.weight, s.respondent))
    t = rules.thresholds
    if rating == "voldoende":
        carry, pull = [s for s in sources if s.score > 0], [s for s in sources if s.score < 0]
    elif rating == "onvoldoende":
        carry, pull = [s for s in sources if s.score < 0], [s for s in sources if s.score > 0]
    elif rating == "matig":
        carry = [s for s in sources if t.onvoldoende < s.score < t.voldoende]
        pull = [s for s in sources if s.score >= t.voldoende or s.score <= t.onvoldoende]
    else:
        carry, pull = [], []
    return tuple(s.respondent for s in carry), tuple(s.respondent for s in pull)


_CAVEAT_NOTES = {
    "practice_not_shown": (
        "Het aanbod (ruimte, budget, toestemming) is er, maar de praktijk laat niet zien dat het ook gebruikt "
        "wordt: daarom matig en niet voldoende (praktijk weegt zwaarder dan aanbod).",
        "The provision (room, budget, permission) exists, but practice does not show it is used: hence "
        "moderate, not sufficient (practice outweighs provision)."),
    "contested": ("Manager en beleidsmedewerker spreken elkaar tegen: daarom matig.",
                  "Manager and policy officer contradict each other: hence moderate."),
}


def _support_lines(body_nl: list[str], body_en: list[str], rating: str, sources_for: Sequence[str],
                   sources_against: Sequence[str], stability: float | None, n_respondents: int) -> None:
    """Which sources carried the verdict, which pulled the other way, and how stable it is."""
    if rating == "onvoldoende_bewijs":
        return
    carried_nl = "; ".join(sources_for) or "geen bron afzonderlijk"
    carried_en = "; ".join(sources_for) or "no single source"
    body_nl.append(f"Gedragen door ({carried_nl})"
                   + (f"; de andere kant op: ({'; '.join(sources_against)})." if sources_against else "; geen bron spreekt het tegen."))
    body_en.append(f"Carried by ({carried_en})"
                   + (f"; pulling the other way: ({'; '.join(sources_against)})." if sources_against else "; no source contradicts it."))
    if stability is not None:
        body_nl.append(f"Stabiliteit {stability:.0%}: zo vaak blijft het oordeel gelijk als één bron wordt weggelaten"
                       + (" (het rust op één bron)." if n_respondents == 1 or len(sources_for) == 1 else "."))
        body_en.append(f"Stability {stability:.0%}: how often the verdict stays when one source is left out"
                       + (" (it rests on one source)." if n_respondents == 1 or len(sources_for) == 1 else "."))


def _rate_cell(municipality: str, code: str, fragments: Sequence[_Fragment], answers: Sequence[_Answer],
               codebook: Codebook, rules: RatingRules, region: str = "") -> Rating:
    label = codebook[code]
    decision = _decide(fragments, answers, code, codebook, rules, "municipality")
    balance, rating, gap = decision.balance, decision.rating, decision.gap
    provision = [f for f in fragments if f.facet == "provision"]
    documents = [f for f in fragments if f.role == "document"]
    score_practice = decision.practice.score
    score_provision = _balance(provision, (), code, codebook, rules).score
    score_documents = _mean((f.value, f.weight) for f in documents)
    score_questionnaire = math.fsum(a.score for a in answers) / len(answers) if answers else None
    respondents = tuple(sorted({f.respondent for f in fragments}))
    interviewed = _interviewed(fragments)
    n_utterances = len({f.utterance_id for f in fragments})
    t = rules.thresholds
    notes_nl, notes_en = [], []
    if rating == "onvoldoende_bewijs":
        notes_nl.append(f"Te weinig bewijs voor een oordeel: nodig zijn bronnen die samen ten minste "
                        f"{_num(t.min_sources.municipality, 'nl', False)} bron tellen (nu "
                        f"{_num(balance.n_sources, 'nl', False)}), waarvan {t.min_interview_respondents} geïnterviewd.")
        notes_en.append(f"Not enough evidence for a verdict: it takes sources that together count as at least "
                        f"{_num(t.min_sources.municipality, 'en', False)} source (now "
                        f"{_num(balance.n_sources, 'en', False)}), {t.min_interview_respondents} of them interviewed.")
    for caveat in decision.caveats:
        nl, en = _CAVEAT_NOTES[caveat]
        notes_nl.append(nl)
        notes_en.append(en)
    stability = _stability(fragments, answers, code, codebook, rules, "municipality", False, rating)
    sources_for, sources_against = _support(balance, rating, rules)
    plus, minus, neutral = _shares(fragments)
    c = rules.confidence
    confidence = 0.0
    if rating != "onvoldoende_bewijs":
        agreement = 1.0 - c.contested_penalty * min(1.0, abs(gap or 0.0) / rules.role_agreement.contested_gap)
        confidence = ((1.0 - math.exp(-balance.n_sources / c.evidence_scale))
                      * min(1.0, len(interviewed) / c.full_respondents)
                      * agreement * _margin(balance.score, (t.voldoende, t.onvoldoende), rules))
    cite = _cite(respondents, answers)
    head_nl = f"{label.label_nl} in {municipality}: {_VERDICT_NL[rating]} (score {_num(balance.score, 'nl')})."
    head_en = f"{label.label_en} in {municipality}: {_VERDICT_EN[rating]} (score {_num(balance.score, 'en')})."
    body_nl = [f"{n_utterances} fragmenten van {len(respondents)} bronnen (effectief "
               f"{_num(balance.n_sources, 'nl', False)}), gewogen {plus:.0%} positief, "
               f"{minus:.0%} negatief en {neutral:.0%} neutraal {cite}.".replace(" .", ".")]
    body_en = [f"{n_utterances} fragments from {len(respondents)} sources (effective "
               f"{_num(balance.n_sources, 'en', False)}), weighted {plus:.0%} positive, "
               f"{minus:.0%} negative and {neutral:.0%} neutral {cite}.".replace(" .", ".")]
    _support_lines(body_nl, body_en, rating, sources_for, sources_against, stability, len(respondents))
    if fragments:
        _facet_lines(body_nl, body_en, score_practice, score_provision, rules)
    _source_lines(body_nl, body_en, ("Documenten", "Documents"), documents, score_documents, rules)
    _questionnaire_lines(body_nl, body_en, answers)
    for lang, body in (("nl", body_nl), ("en", body_en)):
        sentence = _role_sentence(fragments, gap, lang)
        if sentence:
            body.append(sentence)
    return Rating(
        municipality=municipality, code=code, rating=rating, score=_round(balance.score),
        confidence=round(confidence, 3), n_utterances=n_utterances, n_respondents=len(respondents),
        share_plus=plus, share_minus=minus, share_neutral=neutral, role_agreement=_round(gap),
        rationale_nl=" ".join([head_nl, *body_nl, *notes_nl]), rationale_en=" ".join([head_en, *body_en, *notes_en]),
        evidence=_ordered_evidence(fragments, rating), respondents=respondents,
        score_practice=_round(score_practice), score_provision=_round(score_provision),
        score_documents=_round(score_documents), score_questionnaire=_round(score_questionnaire),
        n_questionnaire=len(answers), caveats=decision.caveats, level="municipality", region=region,
        n_sources=round(balance.n_sources, 4), sources_for=sources_for, sources_against=sources_against,
        stability=stability,
    )


def _rate_region(region: str, code: str, municipal: Sequence[Rating], regional: Sequence[_Fragment],
                 all_fragments: Sequence[_Fragment], answers: Sequence[_Answer], codebook: Codebook,
                 rules: RatingRules) -> Rating:
    """The region's verdict from all its sources pooled; the municipal verdicts as a second view."""
    label = codebook[code]
    rated = [r for r in municipal if r.rating != "onvoldoende_bewijs" and r.score is not None]
    scored = [(r.score, r.municipality) for r in rated if r.score is not None]  # all of them: see rated
    counts = {v: sum(1 for r in rated if r.rating == v) for v in ("voldoende", "matig", "onvoldoende")}
    scores = sorted(scored)
    spread = scores[-1][0] - scores[0][0] if scores else None
    divergence = rules.region.divergence
    divergent = (counts["voldoende"] >= divergence.min_each_side and counts["onvoldoende"] >= divergence.min_each_side
                 and spread is not None and spread >= divergence.min_spread)
    plain = _decide(all_fragments, answers, code, codebook, rules, "region")
    decision = _decide(all_fragments, answers, code, codebook, rules, "region", divergent) if divergent else plain
    balance, rating, score = decision.balance, decision.rating, decision.balance.score
    pull = divergent and plain.rating in ("voldoende", "onvoldoende")
    score_practice = decision.practice.score
    score_provision = _balance([f for f in all_fragments if f.facet == "provision"], (), code, codebook, rules).score
    t, notes_nl, notes_en = rules.thresholds, [], []
    if rating == "onvoldoende_bewijs":
        notes_nl.append(f"Te weinig bewijs in de regio: de bronnen tellen samen "
                        f"{_num(balance.n_sources, 'nl', False)} (nodig: {_num(t.min_sources.region, 'nl', False)}).")
        notes_en.append(f"Not enough evidence in the region: the sources count as "
                        f"{_num(balance.n_sources, 'en', False)} together (needed: "
                        f"{_num(t.min_sources.region, 'en', False)}).")
    if "practice_not_shown" in decision.caveats:
        notes_nl.append("In de praktijk blijkt het minder dan het aanbod doet vermoeden: daarom matig.")
        notes_en.append("Practice shows less than the provision suggests: hence moderate.")
    if "divergent" in decision.caveats:
        if pull:
            notes_nl.append(f"De gemeenten lopen sterk uiteen (spreiding {_num(spread, 'nl', False)}): "
                            "het regionale oordeel is daarom matig.")
            notes_en.append(f"Municipalities diverge strongly (spread {_num(spread, 'en', False)}): "
                            "the regional verdict is therefore moderate.")
        else:
            notes_nl.append(f"De gemeenten lopen sterk uiteen (spreiding {_num(spread, 'nl', False)}).")
            notes_en.append(f"Municipalities diverge strongly (spread {_num(spread, 'en', False)}).")
    stability = _stability(all_fragments, answers, code, codebook, rules, "region", divergent, rating)
    sources_for, sources_against = _support(balance, rating, rules)
    gap = decision.gap
    plus, minus, neutral = _shares(all_fragments)
    respondents = tuple(sorted({f.respondent for f in all_fragments}))
    confidence = 0.0
    if rating != "onvoldoende_bewijs":
        agreement = 1.0 - rules.confidence.contested_penalty * min(1.0, (spread or 0.0) / 2.0)
        confidence = ((1.0 - math.exp(-balance.n_sources / rules.confidence.evidence_scale)) * agreement
                      * _margin(score, (t.voldoende, t.onvoldoende), rules))
    cite = _cite(respondents, answers)
    tally_nl = ", ".join(f"{counts[v]} {_VERDICT_NL[v]}" for v in counts)
    tally_en = ", ".join(f"{counts[v]} {_VERDICT_EN[v]}" for v in counts)
    body_nl = [f"Alle bronnen van de regio samen: {len(respondents)} bronnen (effectief "
               f"{_num(balance.n_sources, 'nl', False)}), gewogen {plus:.0%} positief, {minus:.0%} negatief en "
               f"{neutral:.0%} neutraal."]
    body_en = [f"All sources of the region together: {len(respondents)} sources (effective "
               f"{_num(balance.n_sources, 'en', False)}), weighted {plus:.0%} positive, {minus:.0%} negative and "
               f"{neutral:.0%} neutral."]
    _support_lines(body_nl, body_en, rating, sources_for, sources_against, stability, len(respondents))
    if all_fragments:
        _facet_lines(body_nl, body_en, score_practice, score_provision, rules)
    body_nl.append(f"Per gemeente: {len(rated)} van {len(municipal)} gemeenten beoordeeld: {tally_nl}.")
    body_en.append(f"Per municipality: {len(rated)} of {len(municipal)} municipalities rated: {tally_en}.")
    if scores:
        body_nl.append(f"Hoogst {scores[-1][1]} ({_num(scores[-1][0], 'nl')}), laagst {scores[0][1]} "
                       f"({_num(scores[0][0], 'nl')}).")
        body_en.append(f"Highest {scores[-1][1]} ({_num(scores[-1][0], 'en')}), lowest {scores[0][1]} "
                       f"({_num(scores[0][0], 'en')}).")
    _source_lines(body_nl, body_en, ("Over de regio zelf", "About the region itself"), regional,
                  _balance(regional, (), code, codebook, rules).score, rules)
    _questionnaire_lines(body_nl, body_en, answers)
    if cite:
        body_nl.append(f"Bronnen {cite}.")
        body_en.append(f"Sources {cite}.")
    head_nl = f"{label.label_nl} in {region}: {_VERDICT_NL[rating]} (score {_num(score, 'nl')})."
    head_en = f"{label.label_en} in {region}: {_VERDICT_EN[rating]} (score {_num(score, 'en')})."
    return Rating(
        municipality=region, code=code, rating=rating, score=_round(score), confidence=round(confidence, 3),
        n_utterances=len({f.utterance_id for f in all_fragments}), n_respondents=len(respondents),
        share_plus=plus, share_minus=minus, share_neutral=neutral, role_agreement=_round(gap),
        rationale_nl=" ".join([head_nl, *body_nl, *notes_nl]), rationale_en=" ".join([head_en, *body_en, *notes_en]),
        evidence=_ordered_evidence(all_fragments, rating), respondents=respondents,
        score_practice=_round(score_practice), score_provision=_round(score_provision),
        score_documents=_round(_mean((f.value, f.weight) for f in all_fragments if f.role == "document")),
        score_questionnaire=_round(math.fsum(a.score for a in answers) / len(answers) if answers else None),
        n_questionnaire=len(answers), caveats=decision.caveats, level="region", region=region,
        n_sources=round(balance.n_sources, 4), sources_for=sources_for, sources_against=sources_against,
        stability=stability,
    )


Cells = dict[tuple[str, str], list[_Fragment]]


def _cells(pairs: Iterable[tuple[str, _Fragment]], wanted: Container[str]) -> tuple[Cells, Cells]:
    """The fragments of the ``wanted`` codes by ``(municipality, code)``, and those about a
    region as a whole by ``(region, code)``."""
    by_cell: Cells = defaultdict(list)
    regional: Cells = defaultdict(list)
    for code, fragment in pairs:
        if code in wanted:
            if fragment.about_region:
                regional[(fragment.region, code)].append(fragment)
            else:
                by_cell[(fragment.municipality, code)].append(fragment)
    return by_cell, regional


def _places(pairs: Iterable[tuple[str, _Fragment]], answers: dict[tuple[str, str], list[_Answer]],
            regions: Mapping[str, str], default: str) -> dict[str, list[str]]:
    """Region -> its municipalities (sorted), from the fragments, the answers and the mapping."""
    places: dict[str, set[str]] = defaultdict(set)
    names = set(regions.values())
    only = next(iter(names)) if len(names) == 1 else default
    for _, fragment in pairs:
        places[fragment.region]
        if not fragment.about_region:
            places[fragment.region].add(fragment.municipality)
    for municipality, _ in answers:
        if municipality not in names and municipality != default:
            places[regions.get(municipality, only)].add(municipality)
    return {region: sorted(members) for region, members in sorted(places.items())}


def _municipalities(fragments: Iterable[_Fragment], answers: dict[tuple[str, str], list[_Answer]]) -> list[str]:
    names = {f.municipality for f in fragments if not f.about_region} | {m for m, _ in answers}
    regions = {f.region for f in fragments}
    return sorted(names - regions)


def rate_incentives(codings: pd.DataFrame | CodedFragments, codebook: Codebook, rules: RatingRules,
                    questionnaire: pd.DataFrame | None = None, regions: Mapping[str, str] | None = None
                    ) -> list[Rating]:
    """Rate every incentive per municipality and per region.

    Parameters
    ----------
    codings : pandas.DataFrame or CodedFragments
        One row per (utterance, code) with the columns of :data:`CODING_COLUMNS` (``text`` is
        optional and unused here; an optional ``direction_p``, the probability of the predicted
        direction, multiplies the weight; an optional ``region`` names the row's region). Where
        an utterance has a human row (a human row with an empty ``code`` says "annotated, no
        code"), its predicted rows are dropped; predictions under
        ``evidence.min_predicted_weight`` are not evidence. Rows of a regional respondent (role
        ``regio``) and rows whose municipality is a region's name speak of the region itself
        and feed its region row only. Or the same table gathered a part at a time by
        :func:`coded_fragments` (with the same ``regions``).
    codebook : Codebook
        The codebook the codings were made with; its incentives are rated.
    rules : RatingRules
        From :func:`pipeline.rating.rules.load_rating_rules`.
    questionnaire : pandas.DataFrame, optional
        Questionnaire evidence with the columns of :data:`QUESTIONNAIRE_COLUMNS` (``score`` in
        [-1, 1], +1 = incentive present), a separate source weighted by
        ``evidence.source_weights.questionnaire``. None or empty: no questionnaire.
    regions : mapping, optional
        Municipality -> region (:func:`pipeline.rating.evidence.read_regions`). Without it and
        without a ``region`` column every municipality belongs to one region named
        ``rules.region.default_name``.

    Returns
    -------
    list of Rating
        One per municipality (sorted) and incentive (codebook order), ``level ==
        "municipality"``; then per region (sorted) one per incentive with ``level ==
        "region"`` and the region's name in ``municipality``. Cells whose sources are silent
        get ``onvoldoende_bewijs``.

    Raises
    ------
    TableFormatError
        A column is missing or a value is out of range (names the utterance and column).
    UnknownCodeError
        A code is not in ``codebook``.
    """
    regions = dict(regions or {})
    pairs = codings.pairs if isinstance(codings, CodedFragments) else _fragments(codings, codebook, rules, regions)
    answers = _answers(questionnaire)
    by_cell, regional = _cells(pairs, set(codebook.incentives))
    places = _places(pairs, answers, regions, rules.region.default_name)
    region_of = {m: region for region, members in places.items() for m in members}
    ratings: list[Rating] = []
    for municipality in sorted(region_of):
        for code in codebook.incentives:
            ratings.append(_rate_cell(municipality, code, by_cell.get((municipality, code), []),
                                      answers.get((municipality, code), []), codebook, rules,
                                      region=region_of[municipality]))
    for region, members in places.items():
        for code in codebook.incentives:
            municipal = [r for r in ratings if r.code == code and r.region == region and r.level == "municipality"]
            everything = [f for m in members for f in by_cell.get((m, code), [])] + regional.get((region, code), [])
            region_answers = [a for m in members for a in answers.get((m, code), [])]
            ratings.append(_rate_region(region, code, municipal, regional.get((region, code), []), everything,
                                        region_answers, codebook, rules))
    return ratings
