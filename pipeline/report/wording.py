"""Wording and pieces shared by the report's HTML and Markdown: labels, sources, quotes, provenance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.rating import ContextRating, Rating
from pipeline.report.dutch import nl_date, nl_number, nl_percent
from pipeline.report.provenance import Provenance

LABELS_NL = {"voldoende": "voldoende", "matig": "matig", "onvoldoende": "onvoldoende",
             "onvoldoende_bewijs": "onvoldoende bewijs", "bevorderend": "bevorderend", "gemengd": "gemengd",
             "belemmerend": "belemmerend"}
QUOTE_LENGTH = 260


def municipalities_of(ratings: Sequence[Rating] | Sequence[ContextRating]) -> list[str]:
    return sorted({r.municipality for r in ratings if r.level == "municipality"})


def regions_of(ratings: Sequence[Rating] | Sequence[ContextRating]) -> list[str]:
    """The regions rated (issue 17: regions come from data), in the order of their rows."""
    return list(dict.fromkeys(r.municipality for r in ratings if r.level == "region"))


def support_nl(rating: Rating) -> str:
    """Which sources carry the verdict, which pull the other way, and its stability (issue 17)."""
    if rating.rating == "onvoldoende_bewijs":
        return f"Bronnen samen {nl_number(rating.n_sources)} (effectief)."
    stability = nl_percent(rating.stability)
    return (f"Voor: {'; '.join(rating.sources_for) or '–'}. Tegen: {'; '.join(rating.sources_against) or '–'}. "
            f"Stabiliteit (één bron weggelaten): {stability}.")


def quotes_of(rating: Rating, fragments: Mapping[tuple[str, str], tuple[str, str, str, str]],
            n: int = 3) -> list[tuple[str, str]]:
    """Up to ``n`` (respondent, text) quotes that carry the verdict, from different respondents.

    For voldoende positive fragments, for onvoldoende negative ones, for matig both sides in
    turn; practice before provision, and among those the more informative (longer) ones.
    """
    position = {u: i for i, u in enumerate(rating.evidence)}
    candidates = [(u, *fragments[(u, rating.code)]) for u in rating.evidence if (u, rating.code) in fragments]
    wanted = {"voldoende": "+", "bevorderend": "+", "onvoldoende": "-", "belemmerend": "-"}.get(rating.rating)
    turns = [wanted] * n if wanted else ["+", "-", "+"][:n]
    quotes: list[tuple[str, str]] = []
    used_ids: set[str] = set()
    for direction in turns:
        pool = [c for c in candidates if c[0] not in used_ids and c[3] == direction] or \
               [c for c in candidates if c[0] not in used_ids]
        if not pool:
            break
        said = {q[0] for q in quotes}
        best = min(pool, key=lambda c: (c[1] in said, c[4] != "practice", -min(len(c[2]), 200) // 40, position[c[0]]))
        used_ids.add(best[0])
        text = best[2] if len(best[2]) <= QUOTE_LENGTH else best[2][:QUOTE_LENGTH].rsplit(" ", 1)[0] + " …"
        quotes.append((best[1], text))
    return quotes


def quote_texts(codings: pd.DataFrame | None) -> dict[tuple[str, str], tuple[str, str, str, str]]:
    """(utterance id, code) -> (respondent, text, direction, facet), for quoting."""
    if codings is None or "text" not in codings.columns:
        return {}
    rows = codings.dropna(subset=["text"]).sort_values(["utterance_id", "code", "source"])
    facets = rows["facet"].where(rows["facet"].notna(), "") if "facet" in rows.columns else [""] * len(rows)
    return {(str(u), str(c)): (str(r), str(t), str(d), str(f)) for u, c, r, t, d, f in zip(
        rows["utterance_id"], rows["code"], rows["respondent"], rows["text"], rows["direction"], facets, strict=True)}


def signed(value: float | None) -> str:
    return nl_number(value, sign=True)


def rows_by_block(codebook: Codebook, codes: Sequence[str]) -> list[tuple[str, list[str]]]:
    blocks: dict[str, list[str]] = {}
    for code in codes:
        blocks.setdefault(codebook.building_block(code) or "", []).append(code)
    return list(blocks.items())


def provenance_rows(provenance: Provenance) -> list[tuple[str, str]]:
    return [("Model", provenance.model_id), ("Modelkeuze", provenance.model_selection or "–"),
            ("Codeboekversie", provenance.codebook_version),
            ("Versie beoordelingsregels", provenance.rules_version),
            ("Interviews", str(provenance.n_transcripts)), ("Documenten", str(provenance.n_documents)),
            ("Gecodeerde fragmenten", str(provenance.n_utterances)),
            ("Coderingen door mensen", str(provenance.n_human)),
            ("Coderingen door het model", str(provenance.n_predicted)),
            ("Gemaakt op", created_nl(provenance)), ("Opmerkingen", provenance.notes or "–")]


def created_nl(provenance: Provenance) -> str:
    """The report's creation time in Dutch (``created_at`` is ISO 8601), as given if not ISO."""
    try:
        return nl_date(datetime.fromisoformat(provenance.created_at))
    except ValueError:
        return provenance.created_at or "–"


HOW_TO_READ = (
    "Elke cel is het oordeel over één prikkel in één gemeente: voldoende (V), matig (M) of onvoldoende (O). "
    "Een gearceerde cel (?) betekent onvoldoende bewijs: te weinig fragmenten of respondenten om te oordelen. "
    "De score (van −1 tot +1) weegt positieve tegen negatieve fragmenten; wat in de praktijk gebeurt weegt "
    "zwaarder dan wat op papier mogelijk is (aanbod), en aanbod alleen maakt een prikkel nooit voldoende. "
    "Elke bron telt één keer, hoe vaak ze ook over de prikkel sprak; documenten, de vragenlijst en het oordeel van "
    "managers over hun eigen leiderschap tellen minder zwaar. Tegenstrijdige oordelen van manager en "
    "beleidsmedewerker, en grote verschillen tussen gemeenten, trekken een oordeel naar matig. Bronnen staan tussen haakjes "
    "met hun code, zoals in de scriptie: B = beleidsmedewerker, M = manager, D = document, R = regionale "
    "respondent, gevolgd door de gemeente; '2/2 BM' telt de positieve antwoorden in de vragenlijst. "
    "Klik op een cel voor de onderbouwing en de fragmenten die het oordeel dragen.")
