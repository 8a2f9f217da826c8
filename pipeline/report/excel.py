"""The report's Excel workbook: the grid in colour and the tables behind it, with Dutch headers.

Numbers stay numbers (Excel shows them with the reader's decimal separator); headers, sheet
names and verdicts are Dutch, like the rest of the report (issue 21).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from pipeline.codebook import Codebook
from pipeline.rating import (
    ContextRating,
    Differences,
    Rating,
    context_frame,
    ratings_frame,
)

LETTERS = {"voldoende": "V", "matig": "M", "onvoldoende": "O", "onvoldoende_bewijs": "?",
           "bevorderend": "+", "gemengd": "±", "belemmerend": "−"}
COLOURS = {"voldoende": "2E7D32", "matig": "F2B01E", "onvoldoende": "C62828", "onvoldoende_bewijs": "D9D9D9",
           "bevorderend": "2E7D32", "gemengd": "F2B01E", "belemmerend": "C62828"}
_DARK_TEXT = {"matig", "gemengd", "onvoldoende_bewijs"}

HEADERS_NL = {
    "municipality": "gemeente", "code": "code", "label": "prikkel", "rating": "oordeel", "verdict": "oordeel",
    "score": "score", "confidence": "betrouwbaarheid", "n_utterances": "fragmenten", "n_respondents": "bronnen",
    "share_plus": "aandeel positief", "share_minus": "aandeel negatief", "share_neutral": "aandeel neutraal",
    "role_agreement": "verschil manager − beleidsmedewerker", "rationale_nl": "onderbouwing",
    "rationale_en": "onderbouwing (Engels)", "evidence": "fragmenten (id)", "respondents": "respondenten",
    "score_practice": "score praktijk", "score_provision": "score aanbod", "score_documents": "score documenten",
    "score_questionnaire": "score vragenlijst", "n_questionnaire": "antwoorden vragenlijst",
    "caveats": "kanttekeningen", "level": "niveau", "region": "regio", "n_sources": "bronnen (effectief)",
    "sources_for": "bronnen voor", "sources_against": "bronnen tegen", "stability": "stabiliteit",
    "n_municipalities": "gemeenten beoordeeld", "mean": "gemiddelde score", "spread": "spreiding",
    "std": "standaardafwijking", "high": "springt eruit (hoog)", "low": "springt eruit (laag)",
    "strong": "sterk in", "weak": "kan leren", "gap": "verschil", "mutual": "wederzijds",
}
VALUES_NL = {"municipality": "gemeente", "region": "regio", "onvoldoende_bewijs": "onvoldoende bewijs",
             True: "ja", False: "nee"}


def _cell_value(value: object) -> object:
    if isinstance(value, tuple | list):
        value = "; ".join(map(str, value))
    if isinstance(value, bool):
        return VALUES_NL[value]
    if isinstance(value, str):
        value = VALUES_NL.get(value, value)
        if value[:1] in ("=", "+", "-", "@"):
            return "'" + value  # never let a spreadsheet read text as a formula
    return value


def _sheet(workbook: Workbook, title: str, frame: pd.DataFrame) -> None:
    sheet = workbook.create_sheet(title)
    headers = [HEADERS_NL.get(str(c), str(c).replace("_", " ")) for c in frame.columns]
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in frame.itertuples(index=False):
        sheet.append([None if isinstance(v, float) and pd.isna(v) else _cell_value(v) for v in row])
    for index, header in enumerate(headers, 1):
        sheet.column_dimensions[get_column_letter(index)].width = min(60, max(10, len(header) + 2))
    sheet.freeze_panes = "A2"


def _grid_sheet(workbook: Workbook, ratings: Sequence[Rating], codebook: Codebook, areas: list[str]) -> None:
    sheet = workbook.active
    sheet.title = "Overzicht"
    by_cell = {(r.municipality, r.code): r for r in ratings}
    sheet.append(["prikkel", *areas])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for code in (c for c in codebook.incentives if any(r.code == c for r in ratings)):
        verdicts = [by_cell[(m, code)].rating if (m, code) in by_cell else "onvoldoende_bewijs" for m in areas]
        sheet.append([codebook[code].label_nl, *(LETTERS[v] for v in verdicts)])
        for column, verdict in enumerate(verdicts, 2):
            cell = sheet.cell(row=sheet.max_row, column=column)
            fill = "lightUp" if verdict == "onvoldoende_bewijs" else "solid"
            cell.fill = PatternFill(fill_type=fill, fgColor=COLOURS[verdict], bgColor="FFFFFF")
            cell.font = Font(bold=True, color="222222" if verdict in _DARK_TEXT else "FFFFFF")
            cell.alignment = Alignment(horizontal="center")
    sheet.column_dimensions["A"].width = 34
    sheet.append([])
    sheet.append(["V = voldoende, M = matig, O = onvoldoende, ? = onvoldoende bewijs (gearceerd)"])


def write_workbook(path: Path, ratings: Sequence[Rating], codebook: Codebook, *, areas: list[str],
                   context: Sequence[ContextRating], differences: Differences | None,
                   provenance_rows: Sequence[tuple[str, str]]) -> Path:
    """Write the workbook to ``path``: the grid (``areas``: municipalities then regions, its
    columns), the ratings, the context, the differences and what the report rests on."""
    workbook = Workbook()
    _grid_sheet(workbook, ratings, codebook, areas)
    labelled = ratings_frame(ratings)
    labelled.insert(2, "label", [codebook[c].label_nl for c in labelled["code"]])
    _sheet(workbook, "Beoordelingen", labelled)
    _sheet(workbook, "Context", context_frame(context))
    if differences is not None:
        _sheet(workbook, "Verschillen", pd.DataFrame(
            [{"code": s.code, "n_municipalities": s.n_municipalities, "mean": s.mean, "spread": s.spread,
              "std": s.std, "high": s.high, "low": s.low} for s in differences.spreads],
            columns=["code", "n_municipalities", "mean", "spread", "std", "high", "low"]))
        _sheet(workbook, "Leerparen", pd.DataFrame(
            [{"code": p.code, "strong": p.strong, "weak": p.weak, "gap": p.gap, "mutual": p.mutual}
             for p in differences.pairs], columns=["code", "strong", "weak", "gap", "mutual"]))
    _sheet(workbook, "Herkomst", pd.DataFrame(list(provenance_rows), columns=["wat", "waarde"]))
    workbook.save(path)
    return path
