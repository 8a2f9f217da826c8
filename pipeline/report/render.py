"""Reports a researcher can read without help: one self-contained HTML file, Markdown, Excel.

The report shows a heatmap of municipality by incentive (colour = rating, hatched = not enough
evidence), the regional verdict per incentive with its rationale and quoted fragments, the
differences between municipalities, the institutional context, and the model and data it was
made from. It cites respondents by code only; every text is escaped.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.rating import ContextRating, Differences, Rating
from pipeline.report.charts import Chart, report_charts
from pipeline.report.dutch import nl_number, nl_percent
from pipeline.report.excel import LETTERS, write_workbook
from pipeline.report.fragments import (
    CellFragment,
    cell_fragments,
    checked_share,
    fragment_index,
    short_text,
    transcript_link,
)
from pipeline.report.markdown import render_markdown
from pipeline.report.provenance import Provenance
from pipeline.report.trust import (
    EVALUATION_PAGE,
    ModelQuality,
    checked_sentence,
    quality_sentences,
    render_evaluation_page,
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
    rows_by_block,
    signed,
    support_nl,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The files :func:`write_report` wrote."""

    html: Path
    markdown: Path
    excel: Path
    evaluation: Path | None = None

    @property
    def paths(self) -> list[Path]:
        """Every file written, the evaluation page last when there is one."""
        return [self.html, self.markdown, self.excel, *([self.evaluation] if self.evaluation else [])]


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
.heatmap td.cell a{color:inherit;text-decoration:none;display:block}.heatmap td.cell a:hover{text-decoration:underline}
.trust{background:#f1f5fb;border:1px solid #c9d6ea;border-radius:6px;padding:.2rem 1rem .6rem}
.trust h2{border:0;margin-top:.6rem}.trust .big{font-size:1.6rem;font-weight:700;color:#1f5fa8}
.cell-fragments{border:1px solid #ddd;border-radius:4px;padding:.2rem .6rem}
.cell-fragments[open]{background:#fafafa}.cell-fragments:target{outline:2px solid #1f5fa8}
.cell-fragments ol{padding-left:1.2rem}.fragment{margin:.35rem 0}.fragment q{font-style:italic}
.fragment .meta{display:block;font-size:.8rem;color:#555}.dir-plus{border-left:3px solid #2e7d32;padding-left:.4rem}
.dir-min{border-left:3px solid #c62828;padding-left:.4rem}.dir-nul{border-left:3px solid #999;padding-left:.4rem}
figure.chart{margin:1rem 0 1.6rem}figure.chart svg{max-width:100%;height:auto}
figure.chart figcaption{margin-bottom:.3rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(verdict: str) -> str:
    return f'<span class="badge r-{_e(verdict)}">{_e(LABELS_NL.get(verdict, verdict))}</span>'


def _cell_ids(ratings: Sequence[Rating]) -> dict[tuple[str, str], str]:
    """A stable HTML id per (municipality or region, code) cell: ``cel-<n>`` in the ratings' order."""
    return {(r.municipality, r.code): f"cel-{i}" for i, r in enumerate(ratings)}


def _heatmap_html(ratings: Sequence[Rating], codebook: Codebook) -> str:
    municipalities = municipalities_of(ratings)
    by_cell = {(r.municipality, r.code): r for r in ratings}
    ids = _cell_ids(ratings)
    codes = [c for c in codebook.incentives if any(r.code == c for r in ratings)]
    regions = regions_of(ratings)
    head = "".join(f'<th class="muni" scope="col">{_e(m)}</th>' for m in municipalities)
    head += "".join(f'<th class="muni region" scope="col">{_e(r)}</th>' for r in regions)
    lines = [f'<table class="heatmap"><thead><tr><th scope="col">Prikkel</th>{head}</tr></thead><tbody>']
    for block, block_codes in rows_by_block(codebook, codes):
        if block:
            lines.append(f'<tr class="block"><th colspan="{len(municipalities) + len(regions) + 1}">'
                         f"{_e(codebook[block].label_nl)}</th></tr>")
        for code in block_codes:
            cells = []
            for municipality in [*municipalities, *regions]:
                rating = by_cell.get((municipality, code))
                verdict = rating.rating if rating else "onvoldoende_bewijs"
                extra = " region" if municipality in regions else ""
                if rating is None:
                    cells.append(f'<td class="cell r-{_e(verdict)}{extra}" title="geen gegevens">'
                                 f"{_e(LETTERS[verdict])}</td>")
                    continue
                title = f"{municipality} · {codebook[code].label_nl}: {rating.n_utterances} fragmenten. Klik voor de fragmenten."
                cells.append(f'<td class="cell r-{_e(verdict)}{extra}"><a class="cell-link" href="#{ids[(municipality, code)]}" '
                             f'title="{_e(title)}">{_e(LETTERS[verdict])}</a></td>')
            lines.append(f'<tr><th scope="row">{_e(codebook[code].label_nl)}</th>{"".join(cells)}</tr>')
    lines.append("</tbody></table>")
    return "\n".join(lines)


_DIRECTIONS = {"+": ("plus", "+ stimuleert"), "-": ("min", "− belemmert"), "0": ("nul", "0 neutraal of gemengd")}
_FACETS = {"practice": "praktijk", "provision": "aanbod", "": "facet onbekend"}


def _fragment_html(fragment: CellFragment, review_url: str | None) -> str:
    css, direction = _DIRECTIONS.get(fragment.direction, ("nul", fragment.direction))
    who = ("mens" if fragment.checked else f"model, zekerheid {nl_percent(fragment.confidence)}")
    link = transcript_link(fragment, review_url)
    where = f"transcript {fragment.transcript_id}" + (f", beurt {fragment.turn}" if fragment.turn is not None else "")
    place = (f'<a class="to-transcript" href="{_e(link)}">{_e(where)}</a>' if link
             else f'<span class="where">{_e(where)}</span>')
    return (f'<li class="fragment dir-{css}{" checked" if fragment.checked else ""}"><q>{_e(short_text(fragment.text))}</q>'
            f'<span class="meta"><b>{_e(direction)}</b> · {_e(_FACETS.get(fragment.facet, fragment.facet))} · '
            f"<cite>{_e(fragment.respondent)}</cite> · {_e(who)} · {place}</span></li>")


def _cell_panels_html(ratings: Sequence[Rating], codebook: Codebook,
                      index: Mapping[tuple[str, str], CellFragment], review_url: str | None) -> str:
    """One closed <details> per cell with its support, stability and fragments; a cell link opens it."""
    ids = _cell_ids(ratings)
    parts = []
    for rating in ratings:
        shown, total = cell_fragments(rating, index)
        items = "".join(_fragment_html(f, review_url) for f in shown)
        more = (f'<p class="small">en nog {total - len(shown)} fragmenten' + (
            " (alle fragmenten staan in de webapp)." if review_url else ".") + "</p>") if total > len(shown) else ""
        body = f"<ol>{items}</ol>{more}" if items else '<p class="small">Geen gecodeerde fragmenten.</p>'
        parts.append(
            f'<details class="cell-fragments" id="{ids[(rating.municipality, rating.code)]}" '
            f'data-municipality="{_e(rating.municipality)}" data-code="{_e(rating.code)}">'
            f"<summary>{_e(rating.municipality)} · {_e(codebook[rating.code].label_nl)} {_badge(rating.rating)} "
            f'<span class="small">{total} fragmenten</span></summary>'
            f'<p class="small">{_e(support_nl(rating))} Score {_e(signed(rating.score))}.</p>'
            f"<p>{_e(rating.rationale_nl)}</p>{body}</details>")
    return "\n".join(parts)


# Opens the fragments of a clicked cell (and of a cell named in the address); without scripts the
# link still jumps to the closed panel.
_SCRIPT = """
function openCell(id){var d=document.getElementById(id);if(d&&d.tagName==='DETAILS'){d.open=true;
d.scrollIntoView({block:'start'});}}
document.querySelectorAll('a.cell-link').forEach(function(a){a.addEventListener('click',function(){
openCell(a.getAttribute('href').slice(1));});});
if(location.hash){openCell(location.hash.slice(1));}
"""


def _trust_html(ratings: Sequence[Rating], index: Mapping[tuple[str, str], CellFragment],
                quality: ModelQuality | None, evaluation_page: bool) -> str:
    checked = checked_share(ratings, index)
    share = nl_percent(checked.share)
    lines = "".join(f"<li>{_e(line)}</li>" for line in quality_sentences(quality))
    page = (f' Meer in <a href="{EVALUATION_PAGE}">de evaluatie van het model</a>.' if evaluation_page else "")
    return (f'<section class="trust" id="vertrouwen"><h2>Hoeveel kunt u hierop bouwen?</h2>'
            f'<p class="checked"><span class="big">{_e(share)}</span> van het bewijs is door een mens gecodeerd of '
            f"gecontroleerd. {_e(checked_sentence(checked, with_share=False))}</p>"
            f'<p><strong>Het model op echte tekst:</strong></p><ul class="quality">{lines}</ul>'
            f"<p>{_e(stability_sentence(ratings))}{page}</p></section>")


def _charts_html(charts: Sequence[Chart]) -> str:
    if not charts:
        return "<p>Geen gegevens om te tekenen.</p>"
    return "\n".join(f'<figure class="chart" id="{_e(c.chart_id)}"><figcaption><strong>{_e(c.title)}</strong>. '
                     f"{_e(c.caption)}</figcaption>{c.svg}</figure>" for c in charts)


def _legend_html() -> str:
    return ('<p class="legend">' + "".join(
        f'<span class="badge r-{v}">{LETTERS[v]} = {LABELS_NL[v]}</span>'
        for v in ("voldoende", "matig", "onvoldoende", "onvoldoende_bewijs")) + "</p>")


def _region_html(ratings: Sequence[Rating], codebook: Codebook,
                 texts: Mapping[tuple[str, str], tuple[str, str, str, str]]) -> str:
    parts = []
    several = len(regions_of(ratings)) > 1
    for rating in (r for r in ratings if r.level == "region"):
        quotes = "".join(f"<blockquote>“{_e(text)}”<cite>({_e(respondent)})</cite></blockquote>"
                         for respondent, text in quotes_of(rating, texts))
        where = f" – {_e(rating.municipality)}" if several else ""
        parts.append(
            f'<div class="verdict"><h3>{_e(codebook[rating.code].label_nl)}{where} {_badge(rating.rating)}</h3>'
            f"<p>{_e(rating.rationale_nl)}</p><p class=\"small\">{_e(support_nl(rating))}</p>{quotes}"
            f'<details><summary class="small">English</summary><p class="small">{_e(rating.rationale_en)}</p>'
            f'</details><p class="small">Betrouwbaarheid {_e(nl_number(rating.confidence))}; '
            f"{rating.n_utterances} fragmenten, {rating.n_respondents} bronnen.</p></div>")
    return "\n".join(parts)


def _differences_html(differences: Differences | None, codebook: Codebook) -> str:
    if differences is None:
        return "<p>Niet berekend.</p>"
    rows = "".join(
        f"<tr><td>{_e(codebook[s.code].label_nl)}</td><td>{s.n_municipalities}</td><td>{_e(signed(s.mean))}</td>"
        f"<td>{_e(nl_number(s.spread))}</td>"
        f"<td>{_e(', '.join(s.high) or '–')}</td><td>{_e(', '.join(s.low) or '–')}</td></tr>"
        for s in differences.spreads)
    pairs = "".join(
        f"<li><strong>{_e(codebook[p.code].label_nl)}</strong>: {_e(p.weak)} kan leren van {_e(p.strong)} "
        f"(verschil {_e(nl_number(p.gap))})"
        + (" – en omgekeerd op een andere prikkel" if p.mutual else "") + "</li>" for p in differences.pairs)
    return (f"<table><thead><tr><th>Prikkel</th><th>Gemeenten beoordeeld</th><th>Gemiddelde score</th>"
            f"<th>Spreiding</th><th>Springt eruit (hoog)</th><th>Springt eruit (laag)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><h3>Wie kan van wie leren?</h3>"
            + (f"<ul>{pairs}</ul>" if pairs else "<p>Geen paren met een groot genoeg verschil.</p>"))


def _context_html(context: Sequence[ContextRating], codebook: Codebook) -> str:
    if not context:
        return "<p>Geen context beoordeeld.</p>"
    municipalities = municipalities_of(context)
    regions = regions_of(context)
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


def render_html(ratings: Sequence[Rating], codebook: Codebook, provenance: Provenance, *,
                context: Sequence[ContextRating] = (), differences: Differences | None = None,
                codings: pd.DataFrame | None = None, fictional: bool = False, region_name: str = "de regio",
                quality: ModelQuality | None = None, review_url: str | None = None,
                evaluation_page: bool = False) -> str:
    """The report as one self-contained HTML document (inline CSS, SVG and a small script; no external files).

    Parameters are those of :func:`write_report`; ``evaluation_page`` links the evaluation page
    written beside it.
    """
    texts = quote_texts(codings)
    index = fragment_index(codings)
    charts = report_charts(ratings, codebook, context, index)
    fictional_note = ('<p class="fictional">Let op: dit rapport is gemaakt van een fictief demonstratiecorpus. '
                      "Gemeenten, respondenten en uitspraken zijn verzonnen; niets hierin gaat over een echte "
                      "gemeente of persoon. (Fictional demo corpus.)</p>") if fictional else ""
    provenance_table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in provenance_rows(provenance))
    return f"""<!DOCTYPE html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Leren stimuleren in {_e(region_name)}: beoordeling per prikkel</title><style>{_CSS}</style></head>
<body>
<h1>Leren stimuleren in {_e(region_name)}</h1>
<p class="sub">Beoordeling per gemeente en prikkel, met onderbouwing en bronnen (codeer). Gemaakt op
<time datetime="{_e(provenance.created_at)}">{_e(created_nl(provenance))}</time>.</p>
{fictional_note}
{_trust_html(ratings, index, quality, evaluation_page)}
<p class="small">Model {_e(provenance.model_id)} · codeboek {_e(provenance.codebook_version)} ·
regels {_e(provenance.rules_version)} · {provenance.n_transcripts} interviews, {provenance.n_documents} documenten,
{provenance.n_utterances} fragmenten.</p>
<h2>1. Overzicht: gemeente × prikkel</h2>
{_legend_html()}
{_heatmap_html(ratings, codebook)}
<h3>Fragmenten per cel</h3>
<p class="small">Klik op een cel in het overzicht, of open hier een cel: de fragmenten die het oordeel dragen,
het sterkste bewijs eerst; per fragment de richting, praktijk of aanbod, de respondent, of een mens of het model
het codeerde, en waar het in het transcript staat.</p>
<div class="cells">
{_cell_panels_html(ratings, codebook, index, review_url)}
</div>
<h2>Hoe lees je dit rapport?</h2><p>{_e(HOW_TO_READ)}</p>
<h2>2. In grafieken</h2>
{_charts_html(charts)}
<h2>3. Oordeel voor de regio, per prikkel</h2>
{_region_html(ratings, codebook, texts)}
<h2>4. Verschillen tussen gemeenten</h2>
{_differences_html(differences, codebook)}
<h2>5. Institutionele context</h2>
{_context_html(context, codebook)}
<h2>6. Waar dit rapport op berust</h2>
<table><tbody>{provenance_table}</tbody></table>
<p class="small">Respondenten worden alleen met hun code genoemd, nooit met hun naam.</p>
<script>{_SCRIPT}</script>
</body></html>
"""


def write_report(out_dir: Path | str, ratings: Sequence[Rating], codebook: Codebook, provenance: Provenance, *,
                 context: Sequence[ContextRating] = (), differences: Differences | None = None,
                 codings: pd.DataFrame | None = None, fictional: bool = False, region_name: str = "de regio",
                 stem: str = "rapport", quality: ModelQuality | None = None,
                 review_url: str | None = None) -> ReportFiles:
    """Write the HTML report, its Markdown version, an Excel workbook with the tables and, with
    ``quality``, the model's evaluation page (``evaluatie.html``).

    Parameters
    ----------
    out_dir : Path or str
        Created if missing.
    ratings : sequence of Rating
        From :func:`pipeline.rating.verdicts.rate_incentives` (municipal and region rows).
    codebook : Codebook
        For the labels and the building blocks.
    provenance : Provenance
        Model id, codebook and rules versions, counts (see :func:`provenance_from_codings`);
        without ``created_at`` the report is dated now (UTC).
    context : sequence of ContextRating, optional
        From :func:`pipeline.rating.rate_context`.
    differences : Differences, optional
        From :func:`pipeline.rating.compare_municipalities`.
    codings : pandas.DataFrame, optional
        The codings table with a ``text`` column, for the quoted fragments and each cell's
        fragments (a ``turn`` column places them in their transcript); other columns are
        ignored (a name column never reaches the report).
    fictional : bool, default False
        State prominently that the corpus is fictional (the demo).
    region_name : str
        Shown in the title, e.g. "Lindeland".
    stem : str
        File name stem: ``<stem>.html``, ``<stem>.md``, ``<stem>.xlsx``.
    quality : ModelQuality, optional
        The model's scores (:func:`pipeline.report.trust.model_quality` of its card), stated on
        the first screen.
    review_url : str, optional
        The review web app's address (``Settings.review_url``); each fragment then links to
        ``<review_url>/transcripts/<transcript id>#u<utterance id>``, else names its transcript and turn.

    Returns
    -------
    ReportFiles
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not provenance.created_at:
        provenance = replace(provenance, created_at=datetime.now(UTC).replace(microsecond=0).isoformat())
    html_path, md_path, xlsx_path = out_dir / f"{stem}.html", out_dir / f"{stem}.md", out_dir / f"{stem}.xlsx"
    evaluation = out_dir / EVALUATION_PAGE if quality is not None else None
    html_path.write_text(render_html(ratings, codebook, provenance, context=context, differences=differences,
                                     codings=codings, fictional=fictional, region_name=region_name, quality=quality,
                                     review_url=review_url, evaluation_page=evaluation is not None), encoding="utf-8")
    md_path.write_text(render_markdown(ratings, codebook, provenance, context=context, differences=differences,
                                       codings=codings, fictional=fictional, region_name=region_name, quality=quality),
                       encoding="utf-8")
    write_workbook(xlsx_path, ratings, codebook, areas=[*municipalities_of(ratings), *regions_of(ratings)],
                   context=context, differences=differences, provenance_rows=provenance_rows(provenance))
    if evaluation is not None and quality is not None:
        evaluation.write_text(render_evaluation_page(quality, report_name=html_path.name), encoding="utf-8")
    logger.info("report written to %s (%d ratings)", out_dir, len(ratings))
    return ReportFiles(html_path, md_path, xlsx_path, evaluation)
