"""Reading policy documents and transcripts delivered as ``.docx`` or ``.pdf``, within the
limits on untrusted files (issue 20)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from pipeline.config import MB, InputLimits
from pipeline.corpus.archives import ZIP_ERRORS, check_archive, check_file_size
from pipeline.errors import CorruptDocumentError, InputTooLargeError

DEFAULT_LIMITS = InputLimits()


def read_docx(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> str:
    """Return the paragraphs of a .docx file joined by newlines.

    The archive is checked against ``limits`` before python-docx unpacks anything (issue 20).
    """
    import docx  # python-docx; imported here to keep start-up light

    check_file_size(path, limits.max_file_bytes, "a document")
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path, limits)
    except InputTooLargeError:
        raise
    except ZIP_ERRORS as err:
        raise CorruptDocumentError(
            path, "the .docx file is not a readable ZIP archive, so not a Word document (damaged or incomplete copy?)",
            fix="Open and save it again in Word, or export it as .txt.",
        ) from err
    try:
        document = docx.Document(str(path))
        text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    except KeyError as err:  # a part the package needs is missing from the archive
        part = re.search(r"'([^']+)'", str(err))
        raise CorruptDocumentError(
            path, f"the .docx file is damaged: the part {part.group(0) if part else '?'} is missing",
            fix="Open and save it again in Word, or export it as .txt.",
        ) from err
    except Exception as err:  # python-docx raises lxml, zip and package errors for damaged parts
        raise CorruptDocumentError(
            path, f"the .docx file is damaged or not a Word document ({type(err).__name__}: {_short(err)})",
            fix="Open and save it again in Word, or export it as .txt.",
        ) from err
    _check_text_size(path, text, limits)
    return text


def _short(err: BaseException) -> str:
    """The first line of an error's message, at most 120 characters (no document text in it)."""
    return (str(err).splitlines() or [""])[0][:120]


def _check_text_size(path: Path, text: str, limits: InputLimits) -> None:
    size = len(text.encode("utf-8"))
    if size > limits.max_text_bytes:
        raise InputTooLargeError(
            path, f"its text is {size / MB:,.1f} MB, more than the {limits.max_text_bytes / MB:,.1f} MB codeer reads "
                  "as one transcript or document",
            fix="Split it into smaller files, or raise max_text_mb (CODEER_MAX_TEXT_MB, codeer.toml).")


def read_pdf(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> str:
    """Return the text of a PDF, page by page (documents only); stops at ``limits.max_text_bytes``."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    check_file_size(path, limits.max_file_bytes, "a document")
    pages: list[str] = []
    n_bytes = 0
    try:
        reader = PdfReader(str(path))
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            n_bytes += len(pages[-1].encode("utf-8"))
            if n_bytes > limits.max_text_bytes:
                _check_text_size(path, "".join(pages), limits)
    except LimitReachedError as err:  # pypdf's own guard against decompression bombs
        raise InputTooLargeError(path, f"the PDF unpacks to more than pypdf allows ({_short(err)})",
                                 fix="Export the document again or as .txt.") from err
    except (PdfReadError, ValueError, OSError, KeyError) as err:
        raise CorruptDocumentError(
            path, f"the PDF cannot be read ({type(err).__name__}: {_short(err)})", fix="Export the document again or as .txt.",
        ) from err
    return "\n\n".join(_join_wrapped_lines(page.strip()) for page in pages)


def _join_wrapped_lines(page: str) -> str:
    """Undo the line wrapping of PDF text: a line that fills the width of the page and does not
    end a sentence continues on the next line (shorter unpunctuated lines are headings)."""
    lines = page.split("\n")
    width = max((len(line.rstrip()) for line in lines), default=0)
    joined: list[str] = []
    for line in lines:
        previous = joined[-1].rstrip() if joined else ""
        if previous and line.strip() and len(previous) >= 0.8 * width and previous[-1] not in ".?!…:;":
            joined[-1] = previous + " " + line.lstrip()
        else:
            joined.append(line)
    return "\n".join(joined)
