"""The report: ratings rendered as HTML, Markdown and Excel, with their provenance, the trust it
deserves (checked share, the model's real-text scores), each cell's fragments and charts; and the
rate-and-report step over a store or a codings table.
"""

from pipeline.report.fragments import (
    CellFragment,
    CheckedShare,
    cell_fragments,
    checked_share,
    fragment_index,
)
from pipeline.report.jobs import RateResult, rate_codings, rate_store, rate_table
from pipeline.report.markdown import render_markdown
from pipeline.report.provenance import Provenance, provenance_from_codings
from pipeline.report.render import ReportFiles, render_html, write_report
from pipeline.report.trust import ModelQuality, model_quality, render_evaluation_page

__all__ = [
    "CellFragment", "CheckedShare", "ModelQuality", "Provenance", "RateResult", "ReportFiles", "cell_fragments",
    "checked_share", "fragment_index", "model_quality", "provenance_from_codings", "rate_codings", "rate_store",
    "rate_table", "render_evaluation_page", "render_html", "render_markdown", "write_report",
]
