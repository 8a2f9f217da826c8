"""Incentive verdicts: one :class:`Rating` per incentive and municipality, and for the region.

The rules that turn evidence into verdicts live in the shipped ``rating_rules.yaml``
(:mod:`pipeline.rating.rules`). Every function here is pure and order-independent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.rating.balance import (
    _balance,
    _margin,
    _mean,
    _ordered_evidence,
    _role_score,
    _round,
    _shares,
    _verdict,
)
from pipeline.rating.evidence import (
    INTERVIEW_ROLES,
    REGION,
    CodedFragments,
    _Answer,
    _answers,
    _Fragment,
    _fragments,
)
from pipeline.rating.rules import RatingRules
from pipeline.rating.wording import (
    _VERDICT_EN,
    _VERDICT_NL,
    _cite,
    _num,
    _questionnaire_lines,
    _role_sentence,
    _source_lines,
    _tone,
)


@dataclass(frozen=True, slots=True)
class Rating:
    """The verdict on one incentive in one municipality (or ``regio``), with its evidence.

    ``score`` is the balance of the evidence in [-1, 1] (None without any evidence);
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


# ---------------------------------------------------------------------------------- incentives


def _rate_cell(municipality: str, code: str, fragments: Sequence[_Fragment], answers: Sequence[_Answer],
               codebook: Codebook, rules: RatingRules) -> Rating:
    label = codebook[code]
    balance = _balance(fragments, answers, code, codebook, rules)
    practice = [f for f in fragments if f.facet == "practice"]
    provision = [f for f in fragments if f.facet == "provision"]
    documents = [f for f in fragments if f.role == "document"]
    score_practice = _balance(practice, (), code, codebook, rules).score
    score_provision = _balance(provision, (), code, codebook, rules).score
    score_documents = _mean((f.value, f.weight) for f in documents)
    score_questionnaire = math.fsum(a.score for a in answers) / len(answers) if answers else None
    m_score, b_score = _role_score(fragments, "manager"), _role_score(fragments, "beleidsmedewerker")
    gap = None if m_score is None or b_score is None else m_score - b_score
    respondents = tuple(sorted({f.respondent for f in fragments}))
    interviewed = {f.respondent for f in fragments if f.role in INTERVIEW_ROLES}
    n_utterances = len({f.utterance_id for f in fragments})
    weight = math.fsum(f.weight for f in fragments)
    practice_weight = math.fsum(f.weight for f in practice)
    t = rules.thresholds
    caveats: list[str] = []
    notes_nl: list[str] = []
    notes_en: list[str] = []
    too_little = (n_utterances < t.min_utterances or weight < t.min_evidence_weight
                  or len(respondents) < t.min_respondents or len(interviewed) < t.min_interview_respondents)
    if too_little or balance.score is None:
        rating = "onvoldoende_bewijs"
        notes_nl.append(f"Te weinig bewijs voor een oordeel: nodig zijn ten minste {t.min_utterances} fragmenten "
                        f"van {t.min_respondents} bronnen, waarvan {t.min_interview_respondents} geïnterviewd.")
        notes_en.append(f"Not enough evidence for a verdict: it takes at least {t.min_utterances} fragments from "
                        f"{t.min_respondents} sources, {t.min_interview_respondents} of them interviewed.")
    else:
        rating = _verdict(balance.score, rules)
        needs = rules.practice
        practice_short = (practice_weight < needs.voldoende_min_practice_weight or score_practice is None
                          or score_practice <= needs.voldoende_min_practice_score)
        if rating == "voldoende" and practice_short:
            rating = "matig"
            caveats.append("practice_not_shown")
            notes_nl.append("Het aanbod (ruimte, budget, toestemming) is er, maar de praktijk laat niet zien dat het "
                            "ook gebruikt wordt: daarom matig en niet voldoende (praktijk weegt zwaarder dan aanbod).")
            notes_en.append("The provision (room, budget, permission) exists, but practice does not show it is "
                            "used: hence moderate, not sufficient (practice outweighs provision).")
        if gap is not None and abs(gap) >= rules.role_agreement.contested_gap:
            caveats.append("contested")
            if rules.role_agreement.pull_to_matig and rating in ("voldoende", "onvoldoende"):
                rating = "matig"
                notes_nl.append("Manager en beleidsmedewerker spreken elkaar tegen: daarom matig.")
                notes_en.append("Manager and policy officer contradict each other: hence moderate.")
    plus, minus, neutral = _shares(fragments)
    c = rules.confidence
    confidence = 0.0
    if rating != "onvoldoende_bewijs":
        agreement = 1.0 - c.contested_penalty * min(1.0, abs(gap or 0.0) / rules.role_agreement.contested_gap)
        confidence = ((1.0 - math.exp(-weight / c.evidence_scale)) * min(1.0, len(interviewed) / c.full_respondents)
                      * agreement * _margin(balance.score, (t.voldoende, t.onvoldoende), rules))
    cite = _cite(respondents, answers)
    head_nl = f"{label.label_nl} in {municipality}: {_VERDICT_NL[rating]} (score {_num(balance.score, 'nl')})."
    head_en = f"{label.label_en} in {municipality}: {_VERDICT_EN[rating]} (score {_num(balance.score, 'en')})."
    body_nl = [f"{n_utterances} fragmenten van {len(respondents)} bronnen, gewogen {plus:.0%} positief, "
               f"{minus:.0%} negatief en {neutral:.0%} neutraal {cite}.".replace(" .", ".")]
    body_en = [f"{n_utterances} fragments from {len(respondents)} sources, weighted {plus:.0%} positive, "
               f"{minus:.0%} negative and {neutral:.0%} neutral {cite}.".replace(" .", ".")]
    if fragments:
        body_nl.append(f"Praktijk: {_tone(score_practice, rules, 'nl')} ({_num(score_practice, 'nl')}); "
                       f"aanbod: {_tone(score_provision, rules, 'nl')} ({_num(score_provision, 'nl')}).")
        body_en.append(f"Practice: {_tone(score_practice, rules, 'en')} ({_num(score_practice, 'en')}); "
                       f"provision: {_tone(score_provision, rules, 'en')} ({_num(score_provision, 'en')}).")
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
        n_questionnaire=len(answers), caveats=tuple(caveats),
    )


def _rate_region(code: str, municipal: Sequence[Rating], regional: Sequence[_Fragment],
                 all_fragments: Sequence[_Fragment], answers: Sequence[_Answer], codebook: Codebook,
                 rules: RatingRules) -> Rating:
    label = codebook[code]
    rated = [r for r in municipal if r.rating != "onvoldoende_bewijs" and r.score is not None]
    regional_balance = _balance(regional, (), code, codebook, rules)
    sources = [(r.score, 1.0) for r in rated]
    if regional_balance.score is not None and rated:
        saturation = rules.evidence.respondent_saturation
        weight = math.fsum(f.weight for f in regional)
        sources.append((regional_balance.score, rules.evidence.source_weights.regio * min(1.0, weight / saturation)))
    score = _mean(sources)  # type: ignore[arg-type]
    score_practice = _balance([f for f in all_fragments if f.facet == "practice"], (), code, codebook, rules).score
    score_provision = _balance([f for f in all_fragments if f.facet == "provision"], (), code, codebook, rules).score
    counts = {v: sum(1 for r in rated if r.rating == v) for v in ("voldoende", "matig", "onvoldoende")}
    scores = sorted((r.score, r.municipality) for r in rated)  # type: ignore[misc]
    spread = scores[-1][0] - scores[0][0] if scores else None
    t, caveats, notes_nl, notes_en = rules.thresholds, [], [], []
    divergence = rules.region.divergence
    if len(rated) < rules.region.min_municipalities or score is None:
        rating = "onvoldoende_bewijs"
        notes_nl.append(f"Te weinig gemeenten met een oordeel (nodig: {rules.region.min_municipalities}).")
        notes_en.append(f"Too few municipalities with a verdict (needed: {rules.region.min_municipalities}).")
    else:
        rating = _verdict(score, rules)
        if rating == "voldoende" and (score_practice is None
                                      or score_practice <= rules.practice.voldoende_min_practice_score):
            rating = "matig"
            caveats.append("practice_not_shown")
            notes_nl.append("In de praktijk blijkt het minder dan het aanbod doet vermoeden: daarom matig.")
            notes_en.append("Practice shows less than the provision suggests: hence moderate.")
        if (counts["voldoende"] >= divergence.min_each_side and counts["onvoldoende"] >= divergence.min_each_side
                and spread is not None and spread >= divergence.min_spread):
            caveats.append("divergent")
            if rating != "matig":
                rating = "matig"
                notes_nl.append(f"De gemeenten lopen sterk uiteen (spreiding {_num(spread, 'nl', False)}): "
                                "het regionale oordeel is daarom matig.")
                notes_en.append(f"Municipalities diverge strongly (spread {_num(spread, 'en', False)}): "
                                "the regional verdict is therefore moderate.")
            else:
                notes_nl.append(f"De gemeenten lopen sterk uiteen (spreiding {_num(spread, 'nl', False)}).")
                notes_en.append(f"Municipalities diverge strongly (spread {_num(spread, 'en', False)}).")
    m_score, b_score = _role_score(all_fragments, "manager"), _role_score(all_fragments, "beleidsmedewerker")
    gap = None if m_score is None or b_score is None else m_score - b_score
    plus, minus, neutral = _shares(all_fragments)
    respondents = tuple(sorted({f.respondent for f in all_fragments}))
    confidence = 0.0
    if rating != "onvoldoende_bewijs" and municipal:
        agreement = 1.0 - rules.confidence.contested_penalty * min(1.0, (spread or 0.0) / 2.0)
        confidence = (len(rated) / len(municipal)) * agreement * _margin(score, (t.voldoende, t.onvoldoende), rules)
    cite = _cite(respondents, answers)
    tally_nl = ", ".join(f"{counts[v]} {_VERDICT_NL[v]}" for v in counts)
    tally_en = ", ".join(f"{counts[v]} {_VERDICT_EN[v]}" for v in counts)
    body_nl = [f"{len(rated)} van {len(municipal)} gemeenten beoordeeld: {tally_nl}."]
    body_en = [f"{len(rated)} of {len(municipal)} municipalities rated: {tally_en}."]
    if scores:
        body_nl.append(f"Hoogst {scores[-1][1]} ({_num(scores[-1][0], 'nl')}), laagst {scores[0][1]} "
                       f"({_num(scores[0][0], 'nl')}).")
        body_en.append(f"Highest {scores[-1][1]} ({_num(scores[-1][0], 'en')}), lowest {scores[0][1]} "
                       f"({_num(scores[0][0], 'en')}).")
    _source_lines(body_nl, body_en, ("Regionale respondent", "Regional respondent"), regional,
                  regional_balance.score, rules)
    _questionnaire_lines(body_nl, body_en, answers)
    if cite:
        body_nl.append(f"Bronnen {cite}.")
        body_en.append(f"Sources {cite}.")
    head_nl = f"{label.label_nl} in de regio: {_VERDICT_NL[rating]} (score {_num(score, 'nl')})."
    head_en = f"{label.label_en} in the region: {_VERDICT_EN[rating]} (score {_num(score, 'en')})."
    return Rating(
        municipality=REGION, code=code, rating=rating, score=_round(score), confidence=round(confidence, 3),
        n_utterances=len({f.utterance_id for f in all_fragments}), n_respondents=len(respondents),
        share_plus=plus, share_minus=minus, share_neutral=neutral, role_agreement=_round(gap),
        rationale_nl=" ".join([head_nl, *body_nl, *notes_nl]), rationale_en=" ".join([head_en, *body_en, *notes_en]),
        evidence=_ordered_evidence(all_fragments, rating), respondents=respondents,
        score_practice=_round(score_practice), score_provision=_round(score_provision),
        score_documents=_round(_mean((f.value, f.weight) for f in all_fragments if f.role == "document")),
        score_questionnaire=_round(math.fsum(a.score for a in answers) / len(answers) if answers else None),
        n_questionnaire=len(answers), caveats=tuple(caveats),
    )


def _municipalities(fragments: Iterable[_Fragment], answers: dict[tuple[str, str], list[_Answer]]) -> list[str]:
    names = {f.municipality for f in fragments if f.role != "regio"} | {m for m, _ in answers}
    return sorted(names - {REGION})


def rate_incentives(codings: pd.DataFrame | CodedFragments, codebook: Codebook, rules: RatingRules,
                    questionnaire: pd.DataFrame | None = None) -> list[Rating]:
    """Rate every incentive per municipality and for the region.

    Parameters
    ----------
    codings : pandas.DataFrame or CodedFragments
        One row per (utterance, code) with the columns of :data:`CODING_COLUMNS` (``text`` is
        optional and unused here; an optional ``direction_p``, the probability of the predicted
        direction, multiplies the weight). Where an utterance has a human row (a human row with
        an empty ``code`` says "annotated, no code"), its predicted rows are
        dropped; predictions under ``evidence.min_predicted_weight`` are not evidence. Rows of
        the regional respondent (role ``regio``) feed the region rows only. Or the same
        table gathered a part at a time by :func:`coded_fragments`.
    codebook : Codebook
        The codebook the codings were made with; its incentives are rated.
    rules : RatingRules
        From :func:`pipeline.rating.rules.load_rating_rules`.
    questionnaire : pandas.DataFrame, optional
        Questionnaire evidence with the columns of :data:`QUESTIONNAIRE_COLUMNS` (``score`` in
        [-1, 1], +1 = incentive present), a separate source weighted by
        ``evidence.source_weights.questionnaire``. None or empty: no questionnaire.

    Returns
    -------
    list of Rating
        One per municipality (sorted) and incentive (codebook order), then one per incentive
        with ``municipality == "regio"``. Municipalities without evidence on an incentive get
        ``onvoldoende_bewijs``.

    Raises
    ------
    TableFormatError
        A column is missing or a value is out of range (names the utterance and column).
    UnknownCodeError
        A code is not in ``codebook``.
    """
    pairs = codings.pairs if isinstance(codings, CodedFragments) else _fragments(codings, codebook, rules)
    answers = _answers(questionnaire)
    incentives = set(codebook.incentives)
    by_cell: dict[tuple[str, str], list[_Fragment]] = defaultdict(list)
    regional: dict[str, list[_Fragment]] = defaultdict(list)
    for code, fragment in pairs:
        if code in incentives:
            if fragment.role == "regio":
                regional[code].append(fragment)
            else:
                by_cell[(fragment.municipality, code)].append(fragment)
    municipalities = _municipalities((f for _, f in pairs), answers)
    ratings: list[Rating] = []
    for municipality in municipalities:
        for code in codebook.incentives:
            ratings.append(_rate_cell(municipality, code, by_cell.get((municipality, code), []),
                                      answers.get((municipality, code), []), codebook, rules))
    for code in codebook.incentives:
        municipal = [r for r in ratings if r.code == code]
        everything = [f for m in municipalities for f in by_cell.get((m, code), [])] + regional.get(code, [])
        region_answers = [a for m in municipalities for a in answers.get((m, code), [])]
        ratings.append(_rate_region(code, municipal, regional.get(code, []), everything, region_answers,
                                    codebook, rules))
    return ratings
