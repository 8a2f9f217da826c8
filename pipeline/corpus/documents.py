"""Reading transcripts and documents delivered as ``.docx`` within the limits on untrusted files, and
the text-size check that the PDF reader (:mod:`pipeline.corpus.pdf`) shares (issue 20)."""

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
            path, f"the .docx file is damaged or not a Word document ({type(err).__name__}: {first_line(err)})",
            fix="Open and save it again in Word, or export it as .txt.",
        ) from err
    check_text_size(path, text, limits)
    return text


def first_line(err: BaseException) -> str:
    """The first line of an error's message, at most 120 characters (no document text in it)."""
    return (str(err).splitlines() or [""])[0][:120]


def check_text_size(path: Path, text: str, limits: InputLimits) -> None:
    size = len(text.encode("utf-8"))
    if size > limits.max_text_bytes:
        raise InputTooLargeError(
            path, f"its text is {size / MB:,.1f} MB, more than the {limits.max_text_bytes / MB:,.1f} MB codeer reads "
                  "as one transcript or document",
            fix="Split it into smaller files, or raise max_text_mb (CODEER_MAX_TEXT_MB, codeer.toml).")
