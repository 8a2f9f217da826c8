"""The report: ratings rendered as HTML, Markdown and Excel, with their provenance, and the
rate-and-report step over a store or a codings table.
"""

from pipeline.report.jobs import RateResult, rate_codings, rate_store, rate_table
from pipeline.report.provenance import Provenance, provenance_from_codings
from pipeline.report.render import ReportFiles, render_html, render_markdown, write_report

__all__ = [
    "Provenance", "RateResult", "ReportFiles", "provenance_from_codings", "rate_codings", "rate_store", "rate_table",
    "render_html", "render_markdown", "write_report",
]
