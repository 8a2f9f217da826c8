"""The report as Markdown: the grid with letters instead of colours, the trust statement, no charts."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.rating import ContextRating, Differences, Rating
from pipeline.report.dutch import nl_number
from pipeline.report.excel import LETTERS
from pipeline.report.fragments import checked_share, fragment_index
from pipeline.report.provenance import Provenance
from pipeline.report.trust import (
    ModelQuality,
    checked_sentence,
    quality_sentences,
    stability_sentence,
)
from pipeline.report.wording import (
    HOW_TO_READ,
    LABELS_NL,
    created_nl,
    municipalities_of,
    provenance_rows,
    quote_texts,
    quotes_of,
    regions_of,
    signed,
    support_nl,
)


def _md(value: object) -> str:
    text = re.sub(r"\s+", " ", str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def render_markdown(ratings: Sequence[Rating], codebook: Codebook, provenance: Provenance, *,
                    context: Sequence[ContextRating] = (), differences: Differences | None = None,
                    codings: pd.DataFrame | None = None, fictional: bool = False,
                    region_name: str = "de regio", quality: ModelQuality | None = None) -> str:
    """The report as Markdown (tables with letters instead of colours, no charts)."""
    texts = quote_texts(codings)
    checked = checked_share(ratings, fragment_index(codings))
    municipalities = municipalities_of(ratings)
    regions = regions_of(ratings)
    by_cell = {(r.municipality, r.code): r for r in ratings}
    lines = [f"# Leren stimuleren in {_md(region_name)}", ""]
    if fictional:
        lines += ["> **Let op:** gemaakt van een fictief demonstratiecorpus; gemeenten, respondenten en "
                  "uitspraken zijn verzonnen.", ""]
    lines += [f"Gemaakt op {_md(created_nl(provenance))}. Model {_md(provenance.model_id)}, codeboek "
              f"{_md(provenance.codebook_version)}, regels {_md(provenance.rules_version)}.", "",
              *([f"Modelkeuze: {_md(provenance.model_selection)}", ""] if provenance.model_selection else []),
              "## Hoeveel kunt u hierop bouwen?", "", _md(checked_sentence(checked)), ""]
    lines += [f"- {_md(line)}" for line in quality_sentences(quality)]
    lines += ["", _md(stability_sentence(ratings)), "", "## Hoe lees je dit rapport?", "", _md(HOW_TO_READ), "",
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
                  _md(rating.rationale_nl), "", _md(support_nl(rating)), ""]
        lines += [f"> “{_md(text)}” ({_md(respondent)})\n" for respondent, text in quotes_of(rating, texts)]
    lines += ["## 3. Verschillen tussen gemeenten", ""]
    if differences is not None:
        lines += ["| prikkel | beoordeeld | gemiddelde | spreiding | hoog | laag |", "|---|---|---|---|---|---|"]
        for s in differences.spreads:
            spread = nl_number(s.spread)
            lines.append(f"| {_md(codebook[s.code].label_nl)} | {s.n_municipalities} | {signed(s.mean)} | {spread} | "
                         f"{_md(', '.join(s.high) or '–')} | {_md(', '.join(s.low) or '–')} |")
        lines += ["", "Wie kan van wie leren?", ""]
        lines += [f"- {_md(codebook[p.code].label_nl)}: {_md(p.weak)} kan leren van {_md(p.strong)}"
                  + (" (en omgekeerd op een andere prikkel)" if p.mutual else "") for p in differences.pairs]
    lines += ["", "## 4. Institutionele context", ""]
    if context:
        context_munis = [*municipalities_of(context), *regions_of(context)]
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
    lines += [f"| {_md(k)} | {_md(v)} |" for k, v in provenance_rows(provenance)]
    lines += ["", "Respondenten worden alleen met hun code genoemd, nooit met hun naam.", ""]
    return "\n".join(lines)
