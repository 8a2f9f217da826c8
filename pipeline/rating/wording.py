"""The Dutch and English sentences that explain a verdict (rationales, citations)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.rating.balance import _role_score
from pipeline.rating.evidence import _Answer, _Fragment
from pipeline.rating.rules import RatingRules

_ROLE_CITE = {"beleidsmedewerker": "BM", "manager": "M", "other": "R", "regio": "R", "document": "D"}
_VERDICT_NL = {"voldoende": "voldoende", "matig": "matig", "onvoldoende": "onvoldoende",
               "onvoldoende_bewijs": "onvoldoende bewijs", "bevorderend": "bevorderend",
               "gemengd": "gemengd", "belemmerend": "belemmerend"}
_VERDICT_EN = {"voldoende": "sufficient", "matig": "moderate", "onvoldoende": "insufficient",
               "onvoldoende_bewijs": "not enough evidence", "bevorderend": "supportive",
               "gemengd": "mixed", "belemmerend": "hindering"}


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


def _facet_lines(body_nl: list[str], body_en: list[str], score_practice: float | None,
                 score_provision: float | None, rules: RatingRules) -> None:
    """Append the tone of practice and of provision, side by side."""
    body_nl.append(f"Praktijk: {_tone(score_practice, rules, 'nl')} ({_num(score_practice, 'nl')}); "
                   f"aanbod: {_tone(score_provision, rules, 'nl')} ({_num(score_provision, 'nl')}).")
    body_en.append(f"Practice: {_tone(score_practice, rules, 'en')} ({_num(score_practice, 'en')}); "
                   f"provision: {_tone(score_provision, rules, 'en')} ({_num(score_provision, 'en')}).")


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
