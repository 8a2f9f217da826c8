"""From coded fragments to verdicts: incentive ratings, institutional context, differences.

Input is a table of codings, one row per (utterance, code): human annotations and model
predictions, each with a direction (``+``/``-``/``0``), a facet (``provision``/``practice``)
and a weight (1.0 for a human annotation, the predicted probability for a prediction). The
rules that turn them into verdicts live in ``annotations/rating_rules.yaml``
(:mod:`pipeline.rating_rules`). Every function here is pure and order-independent: shuffling
the rows of its input does not change its output.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.codebook import Codebook
from pipeline.errors import ConfigError, TableFormatError, UnknownCodeError
from pipeline.rating_rules import ROLES, RatingRules
from pipeline.records import Annotation

REGION = "regio"
RATINGS = ("voldoende", "matig", "onvoldoende", "onvoldoende_bewijs")
CONTEXT_VERDICTS = ("bevorderend", "gemengd", "belemmerend", "onvoldoende_bewijs")
CODING_COLUMNS = ("utterance_id", "transcript_id", "municipality", "respondent", "role", "code", "direction",
                  "facet", "weight", "source")
QUESTIONNAIRE_COLUMNS = ("municipality", "code", "role", "respondent", "item", "answer", "score")
INTERVIEW_ROLES = ("beleidsmedewerker", "manager", "other")
_VALUES = {"+": 1, "-": -1, "0": 0}
_ROLE_CITE = {"beleidsmedewerker": "BM", "manager": "M", "other": "R", "regio": "R", "document": "D"}
_VERDICT_NL = {"voldoende": "voldoende", "matig": "matig", "onvoldoende": "onvoldoende",
               "onvoldoende_bewijs": "onvoldoende bewijs", "bevorderend": "bevorderend",
               "gemengd": "gemengd", "belemmerend": "belemmerend"}
_VERDICT_EN = {"voldoende": "sufficient", "matig": "moderate", "onvoldoende": "insufficient",
               "onvoldoende_bewijs": "not enough evidence", "bevorderend": "supportive",
               "gemengd": "mixed", "belemmerend": "hindering"}


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


@dataclass(frozen=True, slots=True)
class ContextRating:
    """Whether a context code (culture, structure, ...) helps or hinders learning somewhere."""

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


@dataclass(frozen=True, slots=True)
class _Fragment:
    utterance_id: str
    municipality: str
    respondent: str
    role: str
    value: int
    weight: float  # certainty x facet weight
    certainty: float
    facet: str | None


@dataclass(frozen=True, slots=True)
class _Answer:
    respondent: str
    role: str
    score: float


@dataclass(frozen=True, slots=True)
class _Balance:
    score: float | None
    sources: tuple[tuple[str, str, float, float], ...]  # respondent, role, score, effective weight


# ---------------------------------------------------------------------------------- input


def codings_from_annotations(annotations: Iterable[Annotation]) -> pd.DataFrame:
    """The codings table of human annotations (weight 1, source ``human``).

    Parameters
    ----------
    annotations : iterable of Annotation
        Seed or hold-out annotations, e.g. from :func:`pipeline.annotations.read_annotations`.

    Returns
    -------
    pandas.DataFrame
        One row per (utterance, code) with the columns of :data:`CODING_COLUMNS` plus ``text``.
    """
    rows = [
        {"utterance_id": a.utterance_id, "transcript_id": a.transcript_id, "municipality": a.municipality,
         "respondent": a.respondent, "role": a.role or "other", "code": c.code, "direction": c.direction,
         "facet": c.facet, "weight": 1.0, "source": "human", "text": a.text}
        for a in annotations for c in a.codings
    ]
    return pd.DataFrame(rows, columns=[*CODING_COLUMNS, "text"])


def _check_columns(frame: pd.DataFrame, required: Sequence[str], name: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise TableFormatError(
            f"{name} table: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns)) or 'none'}. "
            f"Required: {', '.join(required)}.")


def _bad_value(name: str, column: str, row: pd.Series, expected: str) -> TableFormatError:
    where = f"utterance {row['utterance_id']!r}" if "utterance_id" in row else f"municipality {row.get('municipality')!r}"
    return TableFormatError(f"{name} table, {where}, column {column!r}: got {row[column]!r}, expected {expected}. "
                            "Correct the row or leave it out.")


def _first_bad(frame: pd.DataFrame, bad: pd.Series, name: str, column: str, expected: str) -> None:
    if bad.any():
        raise _bad_value(name, column, frame.loc[bad.idxmax()], expected)


def _fragments(codings: pd.DataFrame, codebook: Codebook, rules: RatingRules) -> list[tuple[str, _Fragment]]:
    """Validated (code, fragment) pairs: human codings override predictions, one per utterance and code."""
    _check_columns(codings, CODING_COLUMNS, "codings")
    frame = codings.reset_index(drop=True)
    # a human row without a code marks an utterance annotated as "no code": it overrides
    # predictions like any human row, and carries no evidence itself
    no_code = frame["code"].isna() | (frame["code"].astype(str).str.strip() == "")
    human = set(frame.loc[frame["source"].astype(str) == "human", "utterance_id"].astype(str))
    frame = frame.loc[~no_code].reset_index(drop=True)
    text = {column: frame[column].astype(str) for column in ("utterance_id", "municipality", "respondent", "role",
                                                             "code", "direction", "source")}
    unknown = ~text["code"].isin(list(codebook.by_id))
    if unknown.any():
        row = frame.loc[unknown.idxmax()]
        raise UnknownCodeError(f"codings table, utterance {row['utterance_id']!r}: unknown code {row['code']!r} in "
                               f"codebook version {codebook.version!r}; rate with the codebook the codings were "
                               "made with, or map them first")
    _first_bad(frame, ~text["direction"].isin(list(_VALUES)), "codings", "direction", "'+', '-' or '0'")
    _first_bad(frame, ~text["source"].isin(["human", "predicted"]), "codings", "source", "'human' or 'predicted'")
    _first_bad(frame, ~text["role"].isin(list(ROLES)), "codings", "role", "one of " + ", ".join(ROLES))
    facets = [value if isinstance(value, str) and value else None for value in frame["facet"]]
    _first_bad(frame, pd.Series([f not in (None, "provision", "practice") for f in facets]), "codings", "facet",
               "'provision', 'practice' or empty")
    weights = pd.to_numeric(frame["weight"], errors="coerce")
    _first_bad(frame, weights.isna() | (weights < 0) | (weights > 1), "codings", "weight", "a number between 0 and 1")
    certainties = weights.astype(float)
    if "direction_p" in frame.columns:
        # an uncertain direction is weaker evidence of either side
        direction_p = pd.to_numeric(frame["direction_p"], errors="coerce").fillna(1.0).clip(0.0, 1.0)
        certainties = certainties * direction_p
    kinds = {code: codebook[code].kind for code in set(text["code"])}
    best: dict[tuple[str, str], tuple[tuple[object, ...], _Fragment]] = {}
    for utterance_id, municipality, respondent, role, code, direction, source, facet, weight, certainty in zip(
            text["utterance_id"], text["municipality"], text["respondent"], text["role"], text["code"],
            text["direction"], text["source"], facets, weights, certainties, strict=True):
        if source == "predicted" and (utterance_id in human or weight < rules.evidence.min_predicted_weight):
            continue
        if kinds[code] == "incentive":
            facet = facet or rules.evidence.missing_facet
            facet_weight = getattr(rules.evidence.facet_weights, facet)
        else:
            facet, facet_weight = None, 1.0
        fragment = _Fragment(utterance_id, municipality, respondent, role, _VALUES[direction],
                             float(certainty) * facet_weight, float(certainty), facet)
        # one coding per utterance and code: the most certain, ties broken by content, not row order
        rank = (source == "human", certainty, direction, facet or "", municipality, respondent, role)
        key = (utterance_id, code)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, fragment)
    return [(key[1], best[key][1]) for key in sorted(best)]


@dataclass(frozen=True, slots=True)
class CodedFragments:
    """The validated evidence of a codings table, without its text: what rating needs of it.

    Made a part at a time by :func:`coded_fragments` and joined with :meth:`join`, so a corpus
    is rated without its whole codings table in memory (issue 8).
    """

    pairs: tuple[tuple[str, _Fragment], ...]

    @property
    def keys(self) -> set[tuple[str, str]]:
        """``(utterance id, code)`` of every fragment (the rows a report may quote)."""
        return {(fragment.utterance_id, code) for code, fragment in self.pairs}

    @classmethod
    def join(cls, parts: Iterable[CodedFragments]) -> CodedFragments:
        """Fragments of parts that split the corpus by utterance (by municipality, say)."""
        pairs = [pair for part in parts for pair in part.pairs]
        pairs.sort(key=lambda pair: (pair[1].utterance_id, pair[0]))  # the order of one whole table
        return cls(tuple(pairs))


def coded_fragments(codings: pd.DataFrame, codebook: Codebook, rules: RatingRules) -> CodedFragments:
    """Validate a codings table (as for :func:`rate_incentives`) and keep only its evidence.

    A table that holds every row of some utterances (every row of some municipalities, say)
    can be reduced on its own: rating the :meth:`CodedFragments.join` of such parts gives the
    ratings of the whole table.

    Examples
    --------
    >>> from pipeline.codebook import load_codebook
    >>> from pipeline.rating_rules import load_rating_rules
    >>> coded_fragments(codings_from_annotations([]), load_codebook(), load_rating_rules()).pairs
    ()
    """
    return CodedFragments(tuple(_fragments(codings, codebook, rules)))


def _answers(questionnaire: pd.DataFrame | None) -> dict[tuple[str, str], list[_Answer]]:
    if questionnaire is None or len(questionnaire) == 0:
        return {}
    _check_columns(questionnaire, QUESTIONNAIRE_COLUMNS, "questionnaire")
    answers: dict[tuple[str, str], list[_Answer]] = defaultdict(list)
    scores = pd.to_numeric(questionnaire["score"], errors="coerce")
    given = questionnaire["score"].notna() & (questionnaire["score"].astype(str).str.strip() != "")
    _first_bad(questionnaire.reset_index(drop=True), (given & (scores.isna() | (scores < -1) | (scores > 1)))
               .reset_index(drop=True), "questionnaire", "score", "a number between -1 and 1")
    for municipality, code, respondent, role, score in zip(
            questionnaire["municipality"].astype(str), questionnaire["code"].astype(str),
            questionnaire["respondent"].astype(str), questionnaire["role"].astype(str), scores, strict=True):
        if not math.isnan(score):
            answers[(municipality, code)].append(_Answer(respondent, role, float(score)))
    return {key: sorted(value, key=lambda a: (a.respondent, a.role, a.score)) for key, value in answers.items()}


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


def _balance(fragments: Sequence[_Fragment], answers: Sequence[_Answer], code: str, codebook: Codebook,
             rules: RatingRules) -> _Balance:
    """Respondent-balanced score: each source's mean direction, weighted by source weight and saturation."""
    by_source: dict[str, list[_Fragment]] = defaultdict(list)
    for fragment in fragments:
        by_source[fragment.respondent].append(fragment)
    saturation = rules.evidence.respondent_saturation
    sources = []
    for respondent in sorted(by_source):
        group = by_source[respondent]
        weight = math.fsum(f.weight for f in group)
        score = _mean((f.value, f.weight) for f in group)
        if score is None:
            continue
        role = min(f.role for f in group)
        effective = _source_weight(role, code, codebook, rules) * min(1.0, weight / saturation)
        sources.append((respondent, role, score, effective))
    if answers:
        score = math.fsum(a.score for a in answers) / len(answers)
        effective = rules.evidence.source_weights.questionnaire * min(1.0, len(answers) / saturation)
        sources.append(("vragenlijst", "questionnaire", score, effective))
    return _Balance(_mean((s[2], s[3]) for s in sources), tuple(sources))


def _shares(fragments: Sequence[_Fragment]) -> tuple[float, float, float]:
    total = math.fsum(f.weight for f in fragments)
    if total <= 0:
        return 0.0, 0.0, 0.0
    return tuple(round(math.fsum(f.weight for f in fragments if f.value == v) / total, 4)  # type: ignore[return-value]
                 for v in (1, -1, 0))


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


# ---------------------------------------------------------------------------------- wording


def _num(value: float | None, lang: str, signed: bool = True) -> str:
    if value is None:
        return "-"
    text = f"{value:+.2f}" if signed else f"{value:.2f}"
    return text.replace(".", ",") if lang == "nl" else text


def _tone(score: float | None, rules: RatingRules, lang: str) -> str:
    if score is None:
        return "geen" if lang == "nl" else "none"
    if score >= rules.thresholds.voldoende:
        return "positief" if lang == "nl" else "positive"
    if score <= rules.thresholds.onvoldoende:
        return "negatief" if lang == "nl" else "negative"
    return "gemengd" if lang == "nl" else "mixed"


def _questionnaire_cite(answers: Sequence[_Answer]) -> list[str]:
    """Thesis-style counts of positive answers per role, e.g. '7/8 BM'."""
    cites = []
    for role in ("beleidsmedewerker", "manager", "other", "regio"):
        role_answers = [a for a in answers if a.role == role]
        if role_answers:
            positive = sum(1 for a in role_answers if a.score > 0)
            cites.append(f"{positive}/{len(role_answers)} {_ROLE_CITE[role]}")
    return cites


def _cite(respondents: Iterable[str], answers: Sequence[_Answer] = ()) -> str:
    parts = list(respondents) + _questionnaire_cite(answers)
    return f"({'; '.join(parts)})" if parts else ""


def _source_lines(body_nl: list[str], body_en: list[str], names: tuple[str, str], fragments: Sequence[_Fragment],
                  score: float | None, rules: RatingRules) -> None:
    """Append the tone of one kind of source (documents, the regional respondent), cited by code."""
    if fragments:
        codes = "; ".join(sorted({f.respondent for f in fragments}))
        body_nl.append(f"{names[0]} ({codes}): {_tone(score, rules, 'nl')}.")
        body_en.append(f"{names[1]} ({codes}): {_tone(score, rules, 'en')}.")


def _questionnaire_lines(body_nl: list[str], body_en: list[str], answers: Sequence[_Answer]) -> None:
    if answers:
        counts = ", ".join(_questionnaire_cite(answers))
        body_nl.append(f"Vragenlijst: {counts} positief.")
        body_en.append(f"Questionnaire: {counts} positive.")


def _role_sentence(fragments: Sequence[_Fragment], gap: float | None, lang: str) -> str:
    if gap is None:
        return ""
    managers = sorted({f.respondent for f in fragments if f.role == "manager"})
    officers = sorted({f.respondent for f in fragments if f.role == "beleidsmedewerker"})
    m_score, b_score = _role_score(fragments, "manager"), _role_score(fragments, "beleidsmedewerker")
    m, b = "/".join(managers), "/".join(officers)
    if abs(gap) < 0.5:
        return ("Manager en beleidsmedewerker oordelen ongeveer gelijk." if lang == "nl"
                else "Manager and policy officer broadly agree.")
    if lang == "nl":
        who = "de manager" if gap > 0 else "de beleidsmedewerker"
        return (f"Verschil tussen rollen: {who} is positiever ({m} {_num(m_score, lang)} tegen "
                f"{b} {_num(b_score, lang)}).")
    who = "the manager" if gap > 0 else "the policy officer"
    return f"Roles differ: {who} is more positive ({m} {_num(m_score, lang)} against {b} {_num(b_score, lang)})."


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
        From :func:`pipeline.rating_rules.load_rating_rules`.
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


# ---------------------------------------------------------------------------------- context


def _rate_context_cell(municipality: str, code: str, fragments: Sequence[_Fragment], codebook: Codebook,
                       rules: RatingRules) -> ContextRating:
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
        weight = math.fsum(f.weight for f in fragments)
        confidence = ((1.0 - math.exp(-weight / rules.confidence.evidence_scale))
                      * _margin(balance.score, (cr.bevorderend, cr.belemmerend), rules))
    where_nl = "de regio" if municipality == REGION else municipality
    where_en = "the region" if municipality == REGION else municipality
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
    )


def rate_context(codings: pd.DataFrame | CodedFragments, codebook: Codebook,
                 rules: RatingRules) -> list[ContextRating]:
    """Bevorderend / belemmerend / gemengd per context code, per municipality and for the region.

    Parameters
    ----------
    codings : pandas.DataFrame or CodedFragments
        As for :func:`rate_incentives`.
    codebook : Codebook
        Must contain every code of ``rules.context.codes`` (a codebook without one of them
        simply has no rows for it).
    rules : RatingRules

    Returns
    -------
    list of ContextRating
        Per municipality (sorted) and context code (rules order), then the region rows, which
        pool all sources of the region including the regional respondent.
    """
    pairs = codings.pairs if isinstance(codings, CodedFragments) else _fragments(codings, codebook, rules)
    codes = [code for code in rules.context.codes if code in codebook]
    wanted = set(codes)
    by_cell: dict[tuple[str, str], list[_Fragment]] = defaultdict(list)
    for code, fragment in pairs:
        if code in wanted:
            by_cell[(REGION if fragment.role == "regio" else fragment.municipality, code)].append(fragment)
    municipalities = _municipalities((f for _, f in pairs), {})
    result = [_rate_context_cell(m, code, by_cell.get((m, code), []), codebook, rules)
              for m in municipalities for code in codes]
    for code in codes:
        everything = [f for m in [*municipalities, REGION] for f in by_cell.get((m, code), [])]
        result.append(_rate_context_cell(REGION, code, everything, codebook, rules))
    return result


# ---------------------------------------------------------------------------------- differences


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
    rated = [r for r in ratings if r.municipality != REGION and r.rating != "onvoldoende_bewijs"
             and r.score is not None]
    codes = list(dict.fromkeys(r.code for r in ratings))
    verdicts = {(r.municipality, r.code): r for r in rated}
    spreads, pairs = [], []
    d = rules.differences
    for code in codes:
        cell = sorted((r for r in rated if r.code == code), key=lambda r: r.municipality)
        scores = [r.score for r in cell]
        if not cell:
            spreads.append(IncentiveSpread(code, 0, None, None, None, (), (), ()))
            continue
        mean = math.fsum(scores) / len(scores)  # type: ignore[arg-type]
        std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores))  # type: ignore[operator]
        high = tuple(r.municipality for r in sorted(cell, key=lambda r: (-r.score, r.municipality))
                     if r.score - mean >= d.stand_out)  # type: ignore[operator]
        low = tuple(r.municipality for r in sorted(cell, key=lambda r: (r.score, r.municipality))
                    if mean - r.score >= d.stand_out)  # type: ignore[operator]
        spreads.append(IncentiveSpread(code, len(cell), round(mean, 4), round(max(scores) - min(scores), 4),
                                       round(std, 4), high, low, tuple((r.municipality, r.rating) for r in cell)))
        candidates = []
        for strong in (r for r in cell if r.rating == "voldoende"):
            for weak in (r for r in cell if r.rating == "onvoldoende"):
                gap = strong.score - weak.score  # type: ignore[operator]
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


# ---------------------------------------------------------------------------------- output


def ratings_frame(ratings: Sequence[Rating]) -> pd.DataFrame:
    """The ratings as a table, one row per rating, columns as the :class:`Rating` fields.

    ``evidence``, ``respondents`` and ``caveats`` stay tuples.
    """
    columns = list(Rating.__dataclass_fields__)
    return pd.DataFrame([asdict(r) for r in ratings], columns=columns)


def context_frame(context: Sequence[ContextRating]) -> pd.DataFrame:
    """The context verdicts as a table, one row per (municipality, context code)."""
    columns = list(ContextRating.__dataclass_fields__)
    return pd.DataFrame([asdict(r) for r in context], columns=columns)


def rating_row(rating: Rating) -> dict[str, object]:
    """The JSON row of a rating in ``ratings.json``."""
    return {
        "municipality": rating.municipality, "code": rating.code, "rating": rating.rating, "score": rating.score,
        "confidence": rating.confidence, "n_utterances": rating.n_utterances, "n_respondents": rating.n_respondents,
        "rationale": rating.rationale_nl, "rationale_en": rating.rationale_en, "evidence": list(rating.evidence),
        "respondents": list(rating.respondents), "share_plus": rating.share_plus, "share_minus": rating.share_minus,
        "share_neutral": rating.share_neutral, "role_agreement": rating.role_agreement,
        "caveats": list(rating.caveats),
    }


def write_ratings(ratings: Sequence[Rating], out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``ratings.json`` (a list of rows) and ``ratings.csv`` into ``out_dir``.

    Parameters
    ----------
    ratings : sequence of Rating
    out_dir : Path or str
        Created if missing.

    Returns
    -------
    tuple of Path
        The JSON and the CSV file. In the CSV, ``evidence`` ids are joined with ``;`` and
        respondent codes with ``; ``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [rating_row(r) for r in ratings]
    json_path, csv_path = out_dir / "ratings.json", out_dir / "ratings.csv"
    json_path.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    flat = [{**row, "evidence": ";".join(r.evidence), "respondents": "; ".join(r.respondents),
             "caveats": ";".join(r.caveats)} for row, r in zip(rows, ratings, strict=True)]
    pd.DataFrame(flat, columns=list(rows[0]) if rows else None).to_csv(csv_path, index=False, encoding="utf-8")
    return json_path, csv_path


def agreement_with_answer_key(ratings: Sequence[Rating | Mapping[str, Any]], intended_picture_path: Path | str
                              ) -> tuple[float, list[tuple[str, str, str, str]]]:
    """Share of answer-key cells the municipal ratings reproduce, and the misses.

    Parameters
    ----------
    ratings : sequence of Rating or mapping
        Ratings, or rows of ``ratings.json`` (``municipality``, ``code``, ``rating``).
    intended_picture_path : Path or str
        A YAML answer key like ``data/demo/intended_picture.yaml``: ``municipalities:`` ->
        name -> ``incentives:`` -> code -> verdict. Cells marked ``niet_besproken`` are skipped;
        a cell without a rating, or rated ``onvoldoende_bewijs``, counts as a miss.

    Returns
    -------
    tuple
        ``(share, misses)`` with ``misses`` as (municipality, code, expected, got) tuples.

    Raises
    ------
    ConfigError
        If the file cannot be read or is not an answer key.
    """
    path = Path(intended_picture_path)
    try:
        key = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the answer key ({type(err).__name__}). Pass a YAML file like "
                          "data/demo/intended_picture.yaml.") from err
    if not isinstance(key, dict) or not isinstance(key.get("municipalities"), dict):
        raise ConfigError(f"{path}: not an answer key; expected 'municipalities:' with per municipality "
                          "'incentives:' code: verdict. See data/demo/intended_picture.yaml.")
    got = {(r["municipality"], r["code"]): r["rating"] for r in ratings if isinstance(r, Mapping)}
    got.update({(r.municipality, r.code): r.rating for r in ratings if not isinstance(r, Mapping)})
    n_cells, misses = 0, []
    for municipality, entry in sorted(key["municipalities"].items()):
        for code, expected in (entry.get("incentives") or {}).items():
            if expected == "niet_besproken":
                continue
            n_cells += 1
            actual = got.get((municipality, code), "ontbreekt")
            if actual != expected:
                misses.append((municipality, code, expected, actual))
    share = (n_cells - len(misses)) / n_cells if n_cells else 0.0
    return share, misses
