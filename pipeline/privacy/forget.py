"""Erasure on request (AVG/GDPR article 17): ``codeer forget`` for a respondent or a transcript.

What goes, in this order, so that a failure half-way can simply be run again:

1. the cached embeddings of its utterances and questions (the cache is keyed by a hash of the
   text; the keys are computed for every encoder the cache holds vectors of);
2. its quotes in the files under ``reports/`` (JSON, CSV, HTML, Markdown, Excel): a quote is
   replaced by ``[verwijderd]``;
3. in one database transaction: its transcripts (every version), utterances, annotations,
   predictions, review items and decisions, questionnaire answers and registry code (for a
   respondent); the municipalities whose ratings rested on it are marked for recomputation
   (``codeer rate`` clears the mark).

The database step is last because the texts to scrub are read from the database: until it
commits, running ``codeer forget`` again finds everything again.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import WorkspacePaths
from pipeline.errors import ForgetError
from pipeline.store import Store

logger = logging.getLogger(__name__)

REMOVED = "[verwijderd]"
# shorter texts ("Ja.", "Klopt") are only scrubbed where they are a whole value: as a substring
# they would hit other people's words
MIN_SUBSTRING = 20
_PREFIX = 30
_TEXT_SUFFIXES = (".html", ".htm", ".md", ".txt")


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What ``codeer forget`` removed."""

    target: str
    rows: dict[str, int]
    cached_embeddings: int
    report_files: tuple[str, ...]
    stale_municipalities: tuple[str, ...]
    respondents: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """The report as lines for the terminal (counts and file names; never text)."""
        lines = [f"Forgot {self.target}:"]
        for table in ("transcripts", "utterances", "annotations", "predictions", "review_items",
                      "review_decisions", "questionnaire_answers", "respondent_codes"):
            if self.rows.get(table):
                lines.append(f"  {table}: {self.rows[table]} row(s) deleted")
        lines.append(f"  embedding cache: {self.cached_embeddings} entr{'y' if self.cached_embeddings == 1 else 'ies'} deleted")
        if self.report_files:
            lines.append(f"  quotes scrubbed from {len(self.report_files)} report file(s): {', '.join(self.report_files)}")
        if self.stale_municipalities:
            lines.append("  ratings marked for recomputation (run 'codeer rate'): " + ", ".join(self.stale_municipalities))
        lines.extend(f"  note: {note}" for note in self.notes)
        return lines


def forget(store: Store, paths: WorkspacePaths, *, respondent: str | None = None,
           transcript: str | None = None) -> ForgetReport:
    """Erase a respondent (by code) or a transcript (by id, id prefix or source key, every
    version) from the workspace; see the module docstring for what goes.

    Raises :class:`ForgetError` when neither or both are given, or nothing matches.
    """
    if (respondent is None) == (transcript is None):
        raise ForgetError("codeer forget: give either --respondent CODE or --transcript ID, not both or neither.")
    plan = store.erasure_plan(respondent=respondent, transcript=transcript)
    target = f"respondent {respondent}" if respondent is not None else f"transcript {transcript}"
    if not plan.transcript_ids and not plan.forget_codes:
        raise ForgetError(f"codeer forget: no {target} in {store.url}. 'codeer transcripts' lists the stored "
                          "transcripts with their ids and respondent codes.")
    if respondent is not None and not plan.transcript_ids and not store.respondent_known(respondent):
        raise ForgetError(f"codeer forget: no {target} in {store.url}. 'codeer transcripts' lists the stored "
                          "respondent codes.")
    n_cached = forget_embeddings(paths.embedding_cache_file, plan.texts)
    scrubbed = scrub_reports(paths.reports_dir, plan.texts)
    rows = store.erase(plan, reason=f"{target} forgotten")
    logger.info("forgot %s: %s", target, ", ".join(f"{n} {table}" for table, n in sorted(rows.items()) if n))
    notes = () if plan.transcript_ids else ("no transcripts; questionnaire answers and the registry code only",)
    return ForgetReport(target, rows, n_cached, tuple(scrubbed), plan.municipalities, plan.respondents, notes)


def forget_embeddings(cache_file: Path, texts: Sequence[str]) -> int:
    """Delete the cached embeddings of ``texts`` under every encoder in the cache; return how many."""
    if not cache_file.is_file() or not texts:
        return 0
    from pipeline.coding.embed import cache_key
    from pipeline.coding.embedding_cache import EmbeddingCache

    cache = EmbeddingCache(cache_file)
    try:
        keys = [cache_key(encoder_id, text) for encoder_id in cache.encoder_ids() for text in texts]
        return cache.delete_keys(keys)
    finally:
        cache.close()


def _forms(text: str) -> list[str]:
    """How a text appears in the report files: as is, HTML-escaped, Markdown-escaped, in JSON."""
    markdown = re.sub(r"([\\`*_\[\]|#])", r"\\\1",
                      re.sub(r"\s+", " ", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return list(dict.fromkeys([text, html.escape(text, quote=True), html.escape(text, quote=False), markdown,
                               json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]]))


def _scrub_string(value: str, texts: Sequence[str]) -> str:
    """``value`` with every quote of ``texts`` replaced by :data:`REMOVED` (whole values always;
    substrings and truncated quotes “text …” for texts of :data:`MIN_SUBSTRING` or more characters)."""
    stripped = value.strip()
    for text in texts:
        forms = _forms(text)
        if stripped in forms:
            return REMOVED
        if len(text) < MIN_SUBSTRING:
            continue
        for form in forms:
            if form in value:
                value = value.replace(form, REMOVED)
            prefix = form[:_PREFIX]
            if prefix in value:
                # a quote shortened by the report ("... …"), up to its closing quote mark or line end
                value = re.sub(re.escape(prefix) + r"[^”\"\n<]*", REMOVED, value)
    return value


def _scrub_json(value: object, texts: Sequence[str]) -> object:
    if isinstance(value, str):
        return _scrub_string(value, texts)
    if isinstance(value, list):
        return [_scrub_json(item, texts) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_json(item, texts) for key, item in value.items()}
    return value


def scrub_reports(reports_dir: Path, texts: Sequence[str]) -> list[str]:
    """Replace the quotes of ``texts`` in every report file under ``reports_dir``; return the
    files changed (relative paths)."""
    if not reports_dir.is_dir() or not texts:
        return []
    texts = sorted(set(texts), key=len, reverse=True)
    changed = []
    for path in sorted(p for p in reports_dir.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            touched = _scrub_xlsx(path, texts)
        elif suffix in (".json", ".jsonl"):
            touched = _scrub_json_file(path, texts)
        elif suffix == ".csv":
            touched = _scrub_csv(path, texts)
        elif suffix in _TEXT_SUFFIXES:
            touched = _rewrite(path, lambda content: _scrub_string(content, texts))
        else:
            continue
        if touched:
            changed.append(path.relative_to(reports_dir).as_posix())
    return changed


def _rewrite(path: Path, change: Callable[[str], str]) -> bool:
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return False
    new = change(content)
    if new != content:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def _scrub_json_file(path: Path, texts: Sequence[str]) -> bool:
    def change(content: str) -> str:
        if path.suffix.lower() == ".jsonl":
            lines = [json.dumps(_scrub_json(json.loads(line), texts), ensure_ascii=False) if line.strip() else line
                     for line in content.splitlines()]
            new = "\n".join(lines) + ("\n" if content.endswith("\n") else "")
            return new if any(REMOVED in line for line in lines) else content
        try:
            data = json.loads(content)
        except json.JSONDecodeError:
            return _scrub_string(content, texts)
        scrubbed = _scrub_json(data, texts)
        return json.dumps(scrubbed, ensure_ascii=False, indent=2) + "\n" if scrubbed != data else content

    return _rewrite(path, change)


def _scrub_csv(path: Path, texts: Sequence[str]) -> bool:
    def change(content: str) -> str:
        rows = list(csv.reader(io.StringIO(content)))
        scrubbed = [[_scrub_string(cell, texts) for cell in row] for row in rows]
        if scrubbed == rows:
            return content
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(scrubbed)
        return out.getvalue()

    return _rewrite(path, change)


def _scrub_xlsx(path: Path, texts: Sequence[str]) -> bool:
    from openpyxl import load_workbook

    book = load_workbook(path)
    touched = False
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    new = _scrub_string(cell.value, texts)
                    if new != cell.value:
                        cell.value = new
                        touched = True
    if touched:
        book.save(path)
    return touched


def remaining_mentions(store: Store, needles: Iterable[str]) -> dict[str, int]:
    """Rows per table that still contain any of ``needles`` in a text column (the erasure check)."""
    found: dict[str, int] = {}
    for table in store.table_names():
        if table == "alembic_version":
            continue
        n = sum(store.rows_mentioning(table, needle) for needle in needles if needle)
        if n:
            found[table] = n
    return found



