"""Reports a researcher can read without help: one self-contained HTML file, Markdown, Excel.

The report shows a heatmap of municipality by incentive (colour = rating, hatched = not enough
evidence), the regional verdict per incentive with its rationale and quoted fragments, the
differences between municipalities, the institutional context, and the model and data it was
made from. It cites respondents by code only; every text is escaped.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from pipeline.report.provenance import Provenance

logger = logging.getLogger(__name__)


LETTERS = {"voldoende": "V", "matig": "M", "onvoldoende": "O", "onvoldoende_bewijs": "?",
           "bevorderend": "+", "gemengd": "±", "belemmerend": "−"}
LABELS_NL = {"voldoende": "voldoende", "matig": "matig", "onvoldoende": "onvoldoende",
             "onvoldoende_bewijs": "onvoldoende bewijs", "bevorderend": "bevorderend", "gemengd": "gemengd",
             "belemmerend": "belemmerend"}
COLOURS = {"voldoende": "2E7D32", "matig": "F2B01E", "onvoldoende": "C62828", "onvoldoende_bewijs": "D9D9D9",
           "bevorderend": "2E7D32", "gemengd": "F2B01E", "belemmerend": "C62828"}
_DARK_TEXT = {"matig", "gemengd", "onvoldoende_bewijs"}
QUOTE_LENGTH = 260


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The files :func:`write_report` wrote."""

    html: Path
    markdown: Path
    excel: Path


def _municipalities(ratings: Sequence[Rating] | Sequence[ContextRating]) -> list[str]:
    return sorted({r.municipality for r in ratings if r.level == "municipality"})


def _regions(ratings: Sequence[Rating] | Sequence[ContextRating]) -> list[str]:
    """The regions rated (issue 17: regions come from data), in the order of their rows."""
    return list(dict.fromkeys(r.municipality for r in ratings if r.level == "region"))


def _support_nl(rating: Rating) -> str:
    """Which sources carry the verdict, which pull the other way, and its stability (issue 17)."""
    if rating.rating == "onvoldoende_bewijs":
        return f"Bronnen samen {rating.n_sources:.2f} (effectief)".replace(".", ",") + "."
    stability = "–" if rating.stability is None else f"{rating.stability:.0%}"
    return (f"Voor: {'; '.join(rating.sources_for) or '–'}. Tegen: {'; '.join(rating.sources_against) or '–'}. "
            f"Stabiliteit (één bron weggelaten): {stability}.")


def _quotes(rating: Rating, fragments: Mapping[tuple[str, str], tuple[str, str, str, str]],
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


def _fragments(codings: pd.DataFrame | None) -> dict[tuple[str, str], tuple[str, str, str, str]]:
    """(utterance id, code) -> (respondent, text, direction, facet), for quoting."""
    if codings is None or "text" not in codings.columns:
        return {}
    rows = codings.dropna(subset=["text"]).sort_values(["utterance_id", "code", "source"])
    facets = rows["facet"].where(rows["facet"].notna(), "") if "facet" in rows.columns else [""] * len(rows)
    return {(str(u), str(c)): (str(r), str(t), str(d), str(f)) for u, c, r, t, d, f in zip(
        rows["utterance_id"], rows["code"], rows["respondent"], rows["text"], rows["direction"], facets, strict=True)}


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}".replace(".", ",")


def _rows_by_block(codebook: Codebook, codes: Sequence[str]) -> list[tuple[str, list[str]]]:
    blocks: dict[str, list[str]] = {}
    for code in codes:
        blocks.setdefault(codebook.building_block(code) or "", []).append(code)
    return list(blocks.items())


# ---------------------------------------------------------------------------------- HTML


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:78rem;
 padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:2px solid #ddd;padding-bottom:.2rem}
h3{margin-bottom:.3rem}.sub{color:#555;margin-top:0}
.fictional{background:#fff4ce;border:1px solid #e0b100;padding:.6rem 1rem;border-radius:6px;font-weight:600}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;font-size:.9rem}
th{background:#f4f4f4;text-align:left}.heatmap td.cell{text-align:center;font-weight:700;width:3.2rem}
.heatmap th.muni{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;text-align:left;
 vertical-align:bottom}
.heatmap tr.block th{background:#e8eef6;font-style:italic}
.r-voldoende,.r-bevorderend{background:#2e7d32;color:#fff}.r-matig,.r-gemengd{background:#f2b01e;color:#222}
.r-onvoldoende,.r-belemmerend{background:#c62828;color:#fff}
.r-onvoldoende_bewijs{color:#111;text-shadow:0 0 3px #fff,0 0 3px #fff;
 background:repeating-linear-gradient(45deg,#d9d9d9 0 5px,#fff 5px 10px)}
.region{border-left:3px solid #333}.badge{display:inline-block;padding:.05rem .5rem;border-radius:4px;
 font-weight:700;font-size:.85rem}
.legend span.badge{margin-right:.6rem}blockquote{margin:.4rem 0 .4rem 1rem;padding:.2rem .8rem;
 border-left:3px solid #bbb;color:#333;font-style:italic}blockquote cite{font-style:normal;font-weight:700;
 margin-left:.4rem}
details{margin:.3rem 0}summary{cursor:pointer}.small{font-size:.85rem;color:#555}
.verdict{margin-bottom:1.4rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(verdict: str) -> str:
    return f'<span class="badge r-{_e(verdict)}">{_e(LABELS_NL.get(verdict, verdict))}</span>'


def _heatmap_html(ratings: Sequence[Rating], codebook: Codebook) -> str:
    municipalities = _municipalities(ratings)
    by_cell = {(r.municipality, r.code): r for r in ratings}
    codes = [c for c in codebook.incentives if any(r.code == c for r in ratings)]
    regions = _regions(ratings)
    head = "".join(f'<th class="muni" scope="col">{_e(m)}</th>' for m in municipalities)
    head += "".join(f'<th class="muni region" scope="col">{_e(r)}</th>' for r in regions)
    lines = [f'<table class="heatmap"><thead><tr><th scope="col">Prikkel</th>{head}</tr></thead><tbody>']
    for block, block_codes in _rows_by_block(codebook, codes):
        if block:
            lines.append(f'<tr class="block"><th colspan="{len(municipalities) + len(regions) + 1}">'
                         f"{_e(codebook[block].label_nl)}</th></tr>")
        for code in block_codes:
            cells = []
            for municipality in [*municipalities, *regions]:
                rating = by_cell.get((municipality, code))
                verdict = rating.rating if rating else "onvoldoende_bewijs"
                title = rating.rationale_nl if rating else "geen gegevens"
                extra = " region" if municipality in regions else ""
                cells.append(f'<td class="cell r-{_e(verdict)}{extra}" title="{_e(title)}">'
                             f'{_e(LETTERS[verdict])}</td>')
            lines.append(f'<tr><th scope="row">{_e(codebook[code].label_nl)}</th>{"".join(cells)}</tr>')
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _legend_html() -> str:
    return ('<p class="legend">' + "".join(
        f'<span class="badge r-{v}">{LETTERS[v]} = {LABELS_NL[v]}</span>'
        for v in ("voldoende", "matig", "onvoldoende", "onvoldoende_bewijs")) + "</p>")


def _region_html(ratings: Sequence[Rating], codebook: Codebook,
                 texts: Mapping[tuple[str, str], tuple[str, str, str, str]]) -> str:
    parts = []
    several = len(_regions(ratings)) > 1
    for rating in (r for r in ratings if r.level == "region"):
        quotes = "".join(f"<blockquote>“{_e(text)}”<cite>({_e(respondent)})</cite></blockquote>"
                         for respondent, text in _quotes(rating, texts))
        where = f" – {_e(rating.municipality)}" if several else ""
        parts.append(
            f'<div class="verdict"><h3>{_e(codebook[rating.code].label_nl)}{where} {_badge(rating.rating)}</h3>'
            f"<p>{_e(rating.rationale_nl)}</p><p class=\"small\">{_e(_support_nl(rating))}</p>{quotes}"
            f'<details><summary class="small">English</summary><p class="small">{_e(rating.rationale_en)}</p>'
            f'</details><p class="small">Betrouwbaarheid {_e(f"{rating.confidence:.2f}")}; '
            f"{rating.n_utterances} fragmenten, {rating.n_respondents} bronnen.</p></div>")
    return "\n".join(parts)


def _municipal_details_html(ratings: Sequence[Rating], codebook: Codebook) -> str:
    parts = []
    for municipality in _municipalities(ratings):
        rows = "".join(
            f"<tr><td>{_e(codebook[r.code].label_nl)}</td><td>{_badge(r.rating)}</td><td>{_e(_num(r.score))}</td>"
            f"<td>{_e(r.rationale_nl)}</td></tr>" for r in ratings if r.municipality == municipality)
        parts.append(f"<details><summary>{_e(municipality)}</summary><table><thead><tr><th>Prikkel</th>"
                     f"<th>Oordeel</th><th>Score</th><th>Onderbouwing</th></tr></thead><tbody>{rows}</tbody>"
                     "</table></details>")
    return "\n".join(parts)


def _differences_html(differences: Differences | None, codebook: Codebook) -> str:
    if differences is None:
        return "<p>Niet berekend.</p>"
    rows = "".join(
        f"<tr><td>{_e(codebook[s.code].label_nl)}</td><td>{s.n_municipalities}</td><td>{_e(_num(s.mean))}</td>"
        f"<td>{_e('–' if s.spread is None else f'{s.spread:.2f}'.replace('.', ','))}</td>"
        f"<td>{_e(', '.join(s.high) or '–')}</td><td>{_e(', '.join(s.low) or '–')}</td></tr>"
        for s in differences.spreads)
    pairs = "".join(
        f"<li><strong>{_e(codebook[p.code].label_nl)}</strong>: {_e(p.weak)} kan leren van {_e(p.strong)} "
        f"(verschil {_e(f'{p.gap:.2f}'.replace('.', ','))})"
        + (" – en omgekeerd op een andere prikkel" if p.mutual else "") + "</li>" for p in differences.pairs)
    return (f"<table><thead><tr><th>Prikkel</th><th>Gemeenten beoordeeld</th><th>Gemiddelde score</th>"
            f"<th>Spreiding</th><th>Springt eruit (hoog)</th><th>Springt eruit (laag)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><h3>Wie kan van wie leren?</h3>"
            + (f"<ul>{pairs}</ul>" if pairs else "<p>Geen paren met een groot genoeg verschil.</p>"))


def _context_html(context: Sequence[ContextRating], codebook: Codebook) -> str:
    if not context:
        return "<p>Geen context beoordeeld.</p>"
    municipalities = _municipalities(context)
    regions = _regions(context)
    codes = list(dict.fromkeys(c.code for c in context))
    by_cell = {(c.municipality, c.code): c for c in context}
    head = "".join(f'<th class="muni" scope="col">{_e(m)}</th>' for m in municipalities)
    head += "".join(f'<th class="muni region">{_e(r)}</th>' for r in regions)
    rows = []
    for code in codes:
        cells = "".join(
            f'<td class="cell r-{_e(c.verdict)}{" region" if m in regions else ""}" title="{_e(c.rationale_nl)}">'
            f"{_e(LETTERS[c.verdict])}</td>"
            for m in [*municipalities, *regions] if (c := by_cell.get((m, code))) is not None)
        rows.append(f'<tr><th scope="row">{_e(codebook[code].label_nl)}</th>{cells}</tr>')
    legend = "".join(f'<span class="badge r-{v}">{_e(LETTERS[v])} = {LABELS_NL[v]}</span> '
                     for v in ("bevorderend", "gemengd", "belemmerend", "onvoldoende_bewijs"))
    region = "".join(f"<li>{_e(c.rationale_nl)}</li>" for c in context if c.level == "region")
    return (f'<p class="legend">{legend}</p><table class="heatmap"><thead><tr><th>Context</th>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f"<h3>De regio</h3><ul>{region}</ul>")


def _provenance_rows(provenance: Provenance) -> list[tuple[str, str]]:
    return [("Model", provenance.model_id), ("Modelkeuze", provenance.model_selection or "–"),
            ("Codeboekversie", provenance.codebook_version),
            ("Versie beoordelingsregels", provenance.rules_version),
            ("Interviews", str(provenance.n_transcripts)), ("Documenten", str(provenance.n_documents)),
            ("Gecodeerde fragmenten", str(provenance.n_utterances)),
            ("Coderingen door mensen", str(provenance.n_human)),
            ("Coderingen door het model", str(provenance.n_predicted)),
            ("Gemaakt op", provenance.created_at or "–"), ("Opmerkingen", provenance.notes or "–")]


_HOW_TO_READ = (
    "Elke cel is het oordeel over één prikkel in één gemeente: voldoende (V), matig (M) of onvoldoende (O). "
    "Een gearceerde cel (?) betekent onvoldoende bewijs: te weinig fragmenten of respondenten om te oordelen. "
    "De score (van −1 tot +1) weegt positieve tegen negatieve fragmenten; wat in de praktijk gebeurt weegt "
    "zwaarder dan wat op papier mogelijk is (aanbod), en aanbod alleen maakt een prikkel nooit voldoende. "
    "Elke bron telt één keer, hoe vaak ze ook over de prikkel sprak; documenten, de vragenlijst en het oordeel van "
    "managers over hun eigen leiderschap tellen minder zwaar. Tegenstrijdige oordelen van manager en "
    "beleidsmedewerker, en grote verschillen tussen gemeenten, trekken een oordeel naar matig. Bronnen staan tussen haakjes "
    "met hun code, zoals in de scriptie: B = beleidsmedewerker, M = manager, D = document, R = regionale "
    "respondent, gevolgd door de gemeente; '2/2 BM' telt de positieve antwoorden in de vragenlijst. "
    "Beweeg over een cel voor de onderbouwing.")


def render_html(ratings: Sequence[Rating], codebook: Codebook, provenance: Provenance, *,
                context: Sequence[ContextRating] = (), differences: Differences | None = None,
                codings: pd.DataFrame | None = None, fictional: bool = False, region_name: str = "de regio") -> str:
    """The report as one self-contained HTML document (inline CSS, no scripts, no external files).

    Parameters are those of :func:`write_report`.
    """
    texts = _fragments(codings)
    fictional_note = ('<p class="fictional">Let op: dit rapport is gemaakt van een fictief demonstratiecorpus. '
                      "Gemeenten, respondenten en uitspraken zijn verzonnen; niets hierin gaat over een echte "
                      "gemeente of persoon. (Fictional demo corpus.)</p>") if fictional else ""
    provenance_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _provenance_rows(provenance))
    return f"""<!DOCTYPE html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Leren stimuleren in {_e(region_name)}: beoordeling per prikkel</title><style>{_CSS}</style></head>
<body>
<h1>Leren stimuleren in {_e(region_name)}</h1>
<p class="sub">Beoordeling per gemeente en prikkel, met onderbouwing en bronnen (codeer).</p>
{fictional_note}
<p class="small">Model {_e(provenance.model_id)} · codeboek {_e(provenance.codebook_version)} ·
regels {_e(provenance.rules_version)} · {provenance.n_transcripts} interviews, {provenance.n_documents} documenten,
{provenance.n_utterances} fragmenten.</p>
<h2>Hoe lees je dit rapport?</h2><p>{_e(_HOW_TO_READ)}</p>
<h2>1. Overzicht: gemeente × prikkel</h2>
{_legend_html()}
{_heatmap_html(ratings, codebook)}
<h3>Onderbouwing per gemeente</h3>
{_municipal_details_html(ratings, codebook)}
<h2>2. Oordeel voor de regio, per prikkel</h2>
{_region_html(ratings, codebook, texts)}
<h2>3. Verschillen tussen gemeenten</h2>
{_differences_html(differences, codebook)}
<h2>4. Institutionele context</h2>
{_context_html(context, codebook)}
<h2>5. Waar dit rapport op berust</h2>
<table><tbody>{provenance_rows}</tbody></table>
<p class="small">Respondenten worden alleen met hun code genoemd, nooit met hun naam.</p>
</body></html>
"""


# ---------------------------------------------------------------------------------- Markdown


def _md(value: object) -> str:
    text = re.sub(r"\s+", " ", str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def render_markdown(ratings: Sequence[Rating], codebook: Codebook, provenance: Provenance, *,
                    context: Sequence[ContextRating] = (), differences: Differences | None = None,
                    codings: pd.DataFrame | None = None, fictional: bool = False,
                    region_name: str = "de regio") -> str:
    """The report as Markdown (tables with letters instead of colours)."""
    texts = _fragments(codings)
    municipalities = _municipalities(ratings)
    regions = _regions(ratings)
    by_cell = {(r.municipality, r.code): r for r in ratings}
    lines = [f"# Leren stimuleren in {_md(region_name)}", ""]
    if fictional:
        lines += ["> **Let op:** gemaakt van een fictief demonstratiecorpus; gemeenten, respondenten en "
                  "uitspraken zijn verzonnen.", ""]
    lines += [f"Model {_md(provenance.model_id)}, codeboek {_md(provenance.codebook_version)}, regels "
              f"{_md(provenance.rules_version)}."]
    if provenance.model_selection:
        lines += ["", f"Modelkeuze: {_md(provenance.model_selection)}"]
    lines += ["", "## Hoe lees je dit rapport?", "", _md(_HOW_TO_READ), "",
              "## 1. Overzicht: gemeente × prikkel", "",
              "V = voldoende, M = matig, O = onvoldoende, ? = onvoldoende bewijs.", "",
              "| prikkel | " + " | ".join(_md(m) for m in [*municipalities, *regions]) + " |",
              "|---" * (len(municipalities) + len(regions) + 1) + "|"]
    for code in (c for c in codebook.incentives if any(r.code == c for r in ratings)):
        cells = [LETTERS[by_cell[(m, code)].rating] if (m, code) in by_cell else "?"
                 for m in [*municipalities, *regions]]
        lines.append(f"| {_md(codebook[code].label_nl)} | " + " | ".join(cells) + " |")
    lines += ["", "## 2. Oordeel voor de regio, per prikkel", ""]
    for rating in (r for r in ratings if r.level == "region"):
        where = f" ({_md(rating.municipality)})" if len(regions) > 1 else ""
        lines += [f"### {_md(codebook[rating.code].label_nl)}{where}: {LABELS_NL[rating.rating]}", "",
                  _md(rating.rationale_nl), "", _md(_support_nl(rating)), ""]
        lines += [f"> “{_md(text)}” ({_md(respondent)})\n" for respondent, text in _quotes(rating, texts)]
    lines += ["## 3. Verschillen tussen gemeenten", ""]
    if differences is not None:
        lines += ["| prikkel | beoordeeld | gemiddelde | spreiding | hoog | laag |", "|---|---|---|---|---|---|"]
        for s in differences.spreads:
            spread = "–" if s.spread is None else f"{s.spread:.2f}".replace(".", ",")
            lines.append(f"| {_md(codebook[s.code].label_nl)} | {s.n_municipalities} | {_num(s.mean)} | {spread} | "
                         f"{_md(', '.join(s.high) or '–')} | {_md(', '.join(s.low) or '–')} |")
        lines += ["", "Wie kan van wie leren?", ""]
        lines += [f"- {_md(codebook[p.code].label_nl)}: {_md(p.weak)} kan leren van {_md(p.strong)}"
                  + (" (en omgekeerd op een andere prikkel)" if p.mutual else "") for p in differences.pairs]
    lines += ["", "## 4. Institutionele context", ""]
    if context:
        context_munis = [*_municipalities(context), *_regions(context)]
        by_context = {(c.municipality, c.code): c for c in context}
        lines += ["\\+ = bevorderend, ± = gemengd, − = belemmerend, ? = onvoldoende bewijs.", "",
                  "| context | " + " | ".join(_md(m) for m in context_munis) + " |",
                  "|---" * (len(context_munis) + 1) + "|"]
        for code in dict.fromkeys(c.code for c in context):
            cells = [LETTERS[by_context[(m, code)].verdict] if (m, code) in by_context else "?"
                     for m in context_munis]
            lines.append(f"| {_md(codebook[code].label_nl)} | " + " | ".join(cells) + " |")
        lines += [""] + [f"- {_md(c.rationale_nl)}" for c in context if c.level == "region"]
    lines += ["", "## 5. Waar dit rapport op berust", "", "| | |", "|---|---|"]
    lines += [f"| {_md(k)} | {_md(v)} |" for k, v in _provenance_rows(provenance)]
    lines += ["", "Respondenten worden alleen met hun code genoemd, nooit met hun naam.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- Excel


def _cell_value(value: object) -> object:
    if isinstance(value, tuple | list):
        value = "; ".join(map(str, value))
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # never let a spreadsheet read text as a formula
    return value


def _sheet(workbook: Workbook, title: str, frame: pd.DataFrame) -> None:
    sheet = workbook.create_sheet(title)
    sheet.append([str(c) for c in frame.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in frame.itertuples(index=False):
        sheet.append([None if isinstance(v, float) and pd.isna(v) else _cell_value(v) for v in row])
    for index, column in enumerate(frame.columns, 1):
        width = min(60, max(10, len(str(column)) + 2))
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"


def _heatmap_sheet(workbook: Workbook, ratings: Sequence[Rating], codebook: Codebook) -> None:
    sheet = workbook.active
    sheet.title = "Overzicht"
    municipalities = [*_municipalities(ratings), *_regions(ratings)]
    by_cell = {(r.municipality, r.code): r for r in ratings}
    sheet.append(["prikkel", *municipalities])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for code in (c for c in codebook.incentives if any(r.code == c for r in ratings)):
        sheet.append([codebook[code].label_nl, *(LETTERS[by_cell[(m, code)].rating] if (m, code) in by_cell else "?"
                                                 for m in municipalities)])
        for column, municipality in enumerate(municipalities, 2):
            verdict = by_cell[(municipality, code)].rating if (municipality, code) in by_cell else "onvoldoende_bewijs"
            cell = sheet.cell(row=sheet.max_row, column=column)
            fill = "lightUp" if verdict == "onvoldoende_bewijs" else "solid"
            cell.fill = PatternFill(fill_type=fill, fgColor=COLOURS[verdict], bgColor="FFFFFF")
            cell.font = Font(bold=True, color="222222" if verdict in _DARK_TEXT else "FFFFFF")
            cell.alignment = Alignment(horizontal="center")
    sheet.column_dimensions["A"].width = 34
    sheet.append([])
    sheet.append(["V = voldoende, M = matig, O = onvoldoende, ? = onvoldoende bewijs (gearceerd)"])


def write_report(out_dir: Path | str, ratings: Sequence[Rating], codebook: Codebook, provenance: Provenance, *,
                 context: Sequence[ContextRating] = (), differences: Differences | None = None,
                 codings: pd.DataFrame | None = None, fictional: bool = False, region_name: str = "de regio",
                 stem: str = "rapport") -> ReportFiles:
    """Write the HTML report, its Markdown version and an Excel workbook with the tables.

    Parameters
    ----------
    out_dir : Path or str
        Created if missing.
    ratings : sequence of Rating
        From :func:`pipeline.rating.verdicts.rate_incentives` (municipal and region rows).
    codebook : Codebook
        For the labels and the building blocks.
    provenance : Provenance
        Model id, codebook and rules versions, counts (see :func:`provenance_from_codings`).
    context : sequence of ContextRating, optional
        From :func:`pipeline.rating.rate_context`.
    differences : Differences, optional
        From :func:`pipeline.rating.compare_municipalities`.
    codings : pandas.DataFrame, optional
        The codings table with a ``text`` column, for the quoted fragments; other columns are
        ignored (a name column never reaches the report).
    fictional : bool, default False
        State prominently that the corpus is fictional (the demo).
    region_name : str
        Shown in the title, e.g. "Lindeland".
    stem : str
        File name stem: ``<stem>.html``, ``<stem>.md``, ``<stem>.xlsx``.

    Returns
    -------
    ReportFiles
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"context": context, "differences": differences, "codings": codings, "fictional": fictional,
               "region_name": region_name}
    html_path, md_path, xlsx_path = out_dir / f"{stem}.html", out_dir / f"{stem}.md", out_dir / f"{stem}.xlsx"
    # options are the keyword arguments both renderers share; mypy types a dict's values as one union
    html_path.write_text(render_html(ratings, codebook, provenance, **options), encoding="utf-8")  # type: ignore[arg-type]
    md_path.write_text(render_markdown(ratings, codebook, provenance, **options), encoding="utf-8")  # type: ignore[arg-type]
    workbook = Workbook()
    _heatmap_sheet(workbook, ratings, codebook)
    _sheet(workbook, "Beoordelingen", ratings_frame(ratings))
    _sheet(workbook, "Context", context_frame(context))
    if differences is not None:
        _sheet(workbook, "Verschillen", pd.DataFrame(
            [{"code": s.code, "n_municipalities": s.n_municipalities, "mean": s.mean, "spread": s.spread,
              "std": s.std, "high": s.high, "low": s.low} for s in differences.spreads]))
        _sheet(workbook, "Leerparen", pd.DataFrame(
            [{"code": p.code, "strong": p.strong, "weak": p.weak, "gap": p.gap, "mutual": p.mutual}
             for p in differences.pairs], columns=["code", "strong", "weak", "gap", "mutual"]))
    _sheet(workbook, "Herkomst", pd.DataFrame(_provenance_rows(provenance), columns=["wat", "waarde"]))
    workbook.save(xlsx_path)
    logger.info("report written to %s (%d ratings)", out_dir, len(ratings))
    return ReportFiles(html_path, md_path, xlsx_path)
