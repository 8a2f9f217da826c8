"""Charts for the self-contained HTML report: inline SVG drawn with matplotlib, no network (issue 21).

Each function returns a :class:`Chart` (its SVG text, a title and a one-line reading guide), or
None when there is nothing to draw. Text in the SVG stays text (``svg.fonttype: none``), so the
charts are small, searchable and scale with the page.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is rendered in batch jobs and on servers

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from pipeline.codebook import Codebook
from pipeline.rating import ContextRating, Rating
from pipeline.report.fragments import CellFragment

# Any: matplotlib types rc keys as one Literal union, which a dict literal of str keys never meets
_RC: Any = {"svg.fonttype": "none", "svg.hashsalt": "codeer", "font.size": 9, "font.family": "sans-serif",
       "axes.spines.top": False, "axes.spines.right": False}
_GREEN, _AMBER, _RED, _GREY, _BLUE = "#2e7d32", "#f2b01e", "#c62828", "#9e9e9e", "#1f5fa8"
_VALUES = {"+": 1, "-": -1, "0": 0}


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: its id (an HTML anchor), title, reading guide and inline SVG."""

    chart_id: str
    title: str
    caption: str
    svg: str


def _svg(figure: Figure) -> str:
    """The figure as an inline <svg> element that scales with the page."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)  # RDF boilerplate, nothing to read
    text = re.sub(r' xmlns:(?:dc|cc|rdf)="[^"]*"', "", text)
    # drop the fixed size in pt: the viewBox keeps the proportions, CSS sets the width
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1', text, count=1)


def _dutch_scores(axes: Axes) -> None:
    """A score axis from −1 to +1 with Dutch tick labels (decimal comma) and a legend below the plot."""
    axes.set_xlim(-1.05, 1.05)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}".replace("-", "−").replace(".", ",")))


def _legend_below(axes: Axes, n_rows: int, ncol: int) -> None:
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 1.2 / max(4, n_rows)), ncol=ncol, frameon=False,
                fontsize=8)


def _incentives(ratings: Sequence[Rating], codebook: Codebook) -> list[str]:
    return [c for c in codebook.incentives if any(r.code == c for r in ratings)]


def _municipal(ratings: Sequence[Rating]) -> list[Rating]:
    return [r for r in ratings if r.level == "municipality"]


def evidence_counts_chart(ratings: Sequence[Rating], codebook: Codebook) -> Chart | None:
    """How many fragments each cell of the grid rests on (a heatmap with the counts written in)."""
    municipal = _municipal(ratings)
    codes = _incentives(municipal, codebook)
    municipalities = sorted({r.municipality for r in municipal})
    if not codes or not municipalities:
        return None
    counts = np.zeros((len(codes), len(municipalities)))
    for r in municipal:
        counts[codes.index(r.code), municipalities.index(r.municipality)] = r.n_utterances
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(1.2 + 0.55 * len(municipalities), 0.9 + 0.32 * len(codes)))
        # vector cells (pcolormesh), not an embedded raster image (imshow)
        axes.pcolormesh(counts, cmap="Blues", vmin=0, vmax=max(1.0, counts.max()), edgecolors="white", linewidth=0.5)
        axes.set_xticks(np.arange(len(municipalities)) + 0.5, municipalities, rotation=45, ha="right")
        axes.set_yticks(np.arange(len(codes)) + 0.5, [codebook[c].label_nl for c in codes])
        axes.invert_yaxis()
        threshold = counts.max() * 0.6
        for (row, column), value in np.ndenumerate(counts):
            axes.text(column + 0.5, row + 0.5, f"{int(value)}", ha="center", va="center", fontsize=8,
                      color="white" if value > threshold else "#222")
        axes.tick_params(length=0)
        for spine in axes.spines.values():
            spine.set_visible(False)
        return Chart("grafiek-bewijs", "Hoeveel fragmenten per cel",
                     "Aantal gecodeerde fragmenten per gemeente en prikkel: weinig fragmenten, weinig houvast.",
                     _svg(figure))


def score_distribution_chart(ratings: Sequence[Rating], codebook: Codebook) -> Chart | None:
    """Per incentive the municipalities' scores as dots, the region's score as a bar mark."""
    municipal = [r for r in _municipal(ratings) if r.score is not None]
    codes = _incentives(municipal, codebook)
    if not codes:
        return None
    regional = {r.code: r.score for r in ratings if r.level == "region" and r.score is not None}
    colours = {"voldoende": _GREEN, "matig": _AMBER, "onvoldoende": _RED, "onvoldoende_bewijs": _GREY}
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(codes)))
        for row, code in enumerate(codes):
            points = [r for r in municipal if r.code == code]
            offsets = np.linspace(-0.18, 0.18, len(points)) if len(points) > 1 else [0.0]
            axes.scatter([r.score or 0.0 for r in points], [row + o for o in offsets], s=22, zorder=3,
                         c=[colours.get(r.rating, _GREY) for r in points], edgecolors="white", linewidths=0.5)
            if code in regional:
                axes.plot([regional[code]] * 2, [row - 0.35, row + 0.35], color="#222", linewidth=2, zorder=4)
        axes.axvline(0, color="#bbb", linewidth=0.8, zorder=1)
        axes.set_yticks(range(len(codes)), [codebook[c].label_nl for c in codes])
        axes.invert_yaxis()
        _dutch_scores(axes)
        axes.set_xlabel("score (−1 belemmerend … +1 stimulerend)")
        return Chart("grafiek-scores", "Scores per prikkel",
                     "Elke stip is één gemeente (kleur = oordeel); het zwarte streepje is de regio. "
                     "Ver uit elkaar liggende stippen: grote verschillen tussen gemeenten.", _svg(figure))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def practice_provision_chart(ratings: Sequence[Rating], codebook: Codebook) -> Chart | None:
    """Per incentive the score of practice beside that of provision (mean over municipalities)."""
    municipal = _municipal(ratings)
    codes = _incentives(municipal, codebook)
    rows = []
    for code in codes:
        practice = _mean([r.score_practice for r in municipal if r.code == code and r.score_practice is not None])
        provision = _mean([r.score_provision for r in municipal if r.code == code and r.score_provision is not None])
        if practice is not None or provision is not None:
            rows.append((code, practice, provision))
    if not rows:
        return None
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(7.5, 0.9 + 0.38 * len(rows)))
        y = np.arange(len(rows))
        axes.barh(y - 0.19, [p if p is not None else 0 for _, p, _ in rows], height=0.36, color=_BLUE,
                  label="praktijk (wat mensen doen)")
        axes.barh(y + 0.19, [p if p is not None else 0 for _, _, p in rows], height=0.36, color="#9bb9dd",
                  label="aanbod (wat mogelijk is)")
        axes.axvline(0, color="#888", linewidth=0.8)
        axes.set_yticks(y, [codebook[c].label_nl for c, _, _ in rows])
        axes.invert_yaxis()
        _dutch_scores(axes)
        axes.set_xlabel("gemiddelde score over de gemeenten")
        _legend_below(axes, len(rows), 2)
        return Chart("grafiek-praktijk", "Praktijk tegenover aanbod",
                     "Waar het aanbod positief is maar de praktijk niet, is er ruimte die niet wordt gebruikt; "
                     "de praktijk weegt in het oordeel zwaarder.", _svg(figure))


def roles_chart(ratings: Sequence[Rating], codebook: Codebook,
                index: Mapping[tuple[str, str], CellFragment]) -> Chart | None:
    """Per incentive the balance of managers' fragments beside that of policy officers'."""
    municipal = _municipal(ratings)
    values: dict[tuple[str, str], list[int]] = {}
    for r in municipal:
        for u in r.evidence:
            fragment = index.get((u, r.code))
            if fragment is not None and fragment.role in ("manager", "beleidsmedewerker"):
                values.setdefault((r.code, fragment.role), []).append(_VALUES.get(fragment.direction, 0))
    codes = [c for c in _incentives(municipal, codebook) if any((c, role) in values for role in ("manager", "beleidsmedewerker"))]
    if not codes:
        return None
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(7.5, 0.9 + 0.38 * len(codes)))
        y = np.arange(len(codes))
        for offset, role, colour, label in ((-0.19, "manager", "#6a3d9a", "managers (M)"),
                                            (0.19, "beleidsmedewerker", "#33a02c", "beleidsmedewerkers (B)")):
            means = [_mean(values.get((c, role), [])) for c in codes]
            axes.barh(y + offset, [m if m is not None else 0 for m in means], height=0.36, color=colour, label=label)
        axes.axvline(0, color="#888", linewidth=0.8)
        axes.set_yticks(y, [codebook[c].label_nl for c in codes])
        axes.invert_yaxis()
        _dutch_scores(axes)
        axes.set_xlabel("balans van de fragmenten (+1 alle positief, −1 alle negatief)")
        _legend_below(axes, len(codes), 2)
        return Chart("grafiek-rollen", "Managers en beleidsmedewerkers naast elkaar",
                     "Managers zijn vaak milder over hun eigen leiderschap; een groot verschil trekt een oordeel "
                     "naar matig.", _svg(figure))


def context_chart(context: Sequence[ContextRating], codebook: Codebook) -> Chart | None:
    """Per context code how many municipalities find it bevorderend, gemengd, belemmerend."""
    municipal = [c for c in context if c.level == "municipality"]
    codes = list(dict.fromkeys(c.code for c in municipal))
    if not codes:
        return None
    verdicts = (("bevorderend", _GREEN), ("gemengd", _AMBER), ("belemmerend", _RED),
                ("onvoldoende_bewijs", "#d9d9d9"))
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(7.5, 0.9 + 0.3 * len(codes)))
        left = np.zeros(len(codes))
        for verdict, colour in verdicts:
            counts = np.array([sum(c.code == code and c.verdict == verdict for c in municipal) for code in codes])
            axes.barh(range(len(codes)), counts, left=left, color=colour,
                      label=verdict.replace("onvoldoende_bewijs", "onvoldoende bewijs"))
            left += counts
        axes.set_yticks(range(len(codes)), [codebook[c].label_nl for c in codes])
        axes.invert_yaxis()
        axes.set_xlabel("aantal gemeenten")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        _legend_below(axes, len(codes), 4)
        return Chart("grafiek-context", "De institutionele context",
                     "Per contextcode het aantal gemeenten waar hij het leren bevordert, gemengd werkt of belemmert.",
                     _svg(figure))


def report_charts(ratings: Sequence[Rating], codebook: Codebook, context: Sequence[ContextRating],
                  index: Mapping[tuple[str, str], CellFragment]) -> list[Chart]:
    """Every chart the data allows, in the report's order."""
    charts = [evidence_counts_chart(ratings, codebook), score_distribution_chart(ratings, codebook),
              practice_provision_chart(ratings, codebook), roles_chart(ratings, codebook, index),
              context_chart(context, codebook)]
    return [chart for chart in charts if chart is not None]

