"""PDF sources: their text (pypdf), and whether a PDF is an interview or a policy document (issue 18).

A PDF may hold an interview transcript (turns such as ``Onderzoeker:`` / ``Respondent:``) or a
policy document. The file type says nothing about which, so the content decides: speaker turns
of both sides, or two speakers taking turns where one asks the questions, make an interview;
anything else is a document. The decision and its reason are reported at ingest.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import InputLimits
from pipeline.corpus.archives import check_file_size
from pipeline.corpus.documents import DEFAULT_LIMITS, check_text_size, first_line
from pipeline.errors import CorruptDocumentError, InputTooLargeError, ScannedPdfError
from pipeline.records import Speaker

# Fewer characters than this per page on average: no text layer worth the name (page numbers,
# a scanner's stamp), so the PDF is a scan.
MIN_CHARACTERS_PER_PAGE = 20
# Turns each side needs before a PDF counts as an interview: one labelled line can be a
# "Respondent: ..." field in a document's header.
MIN_TURNS_PER_SIDE = 2
# A speaker's turn, with or without a timestamp before it ("[00:35:59] Onderzoeker:").
_LABEL_START = re.compile(r"^[ \t]*(?:[\[(]?\d{1,2}:\d{2}(?::\d{2})?[\])]?[ \t]*)?[^\W\d_][\w.'’-]*(?: [\w.'’-]+){0,2}[ \t]*:")


@dataclass(frozen=True, slots=True)
class LabelledLine:
    """A line that starts with a speaker-like label (``Onderzoeker:``), as the parser saw it.

    ``speaker`` is the side the label names (None for an unknown label such as a name);
    ``asks`` is True when the turn it starts holds a question.
    """

    label: str
    speaker: Speaker | None
    asks: bool


@dataclass(frozen=True, slots=True)
class SourceKindDecision:
    """Whether a PDF is read as an interview or a document, and why (for the ingest output).

    ``speakers`` maps unknown labels to the side the content shows they are (the speaker who
    asks the questions is the interviewer); the reason never quotes a label (they can be names).
    """

    kind: str
    reason: str
    speakers: dict[str, Speaker] = field(default_factory=dict)


def decide_source_kind(lines: Sequence[LabelledLine]) -> SourceKindDecision:
    """Decide interview or document from a text's labelled lines.

    Interview when there are at least two interviewer and two respondent turns by known
    labels, or when two recurring unknown labels (names) alternate at least three times and
    one of them asks questions in at least half of its turns (that one is the interviewer).
    Otherwise a document.

    Examples
    --------
    >>> turns = [LabelledLine("Onderzoeker", Speaker.INTERVIEWER, True),
    ...          LabelledLine("Respondent", Speaker.RESPONDENT, False)] * 3
    >>> decide_source_kind(turns).kind
    'interview'
    >>> decide_source_kind([]).kind
    'document'
    """
    n_interviewer = sum(1 for line in lines if line.speaker == Speaker.INTERVIEWER)
    n_respondent = sum(1 for line in lines if line.speaker == Speaker.RESPONDENT)
    if n_interviewer >= MIN_TURNS_PER_SIDE and n_respondent >= MIN_TURNS_PER_SIDE:
        n_questions = sum(1 for line in lines if line.speaker == Speaker.INTERVIEWER and line.asks)
        return SourceKindDecision("interview", f"{n_interviewer + n_respondent} speaker turns ({n_interviewer} "
                                  f"interviewer, {n_respondent} respondent); {n_questions} of the interviewer's "
                                  "turns ask a question")
    unknown = [line for line in lines if line.speaker is None]
    counts = Counter(line.label for line in unknown)
    recurring = [label for label, n in counts.most_common() if n >= 2][:2]
    if len(recurring) == 2 and not n_interviewer and not n_respondent:
        sequence = [line for line in unknown if line.label in recurring]
        switches = sum(1 for a, b in zip(sequence, sequence[1:], strict=False) if a.label != b.label)
        asking = {label: sum(1 for line in sequence if line.label == label and line.asks) / counts[label]
                  for label in recurring}
        interviewer = max(recurring, key=lambda label: asking[label])
        respondent = next(label for label in recurring if label != interviewer)
        if switches >= 3 and asking[interviewer] >= 0.5 > asking[respondent]:
            return SourceKindDecision(
                "interview", f"two speakers take turns {switches + 1} times and one of them asks the questions "
                f"(in {asking[interviewer]:.0%} of its turns; read as the interviewer)",
                {interviewer: Speaker.INTERVIEWER, respondent: Speaker.RESPONDENT})
    if not lines:
        return SourceKindDecision("document", "no speaker turns (such as 'Onderzoeker:' / 'Respondent:')")
    return SourceKindDecision("document", f"{len(lines)} labelled line(s) ({n_interviewer} interviewer, "
                              f"{n_respondent} respondent), not two speakers taking turns")


def read_pdf(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> str:
    """Return the text of a PDF, page by page, with the line wrapping of paragraphs undone.

    Raises
    ------
    CorruptDocumentError
        When pypdf cannot read the file.
    ScannedPdfError
        When the pages hold (almost) no text: a scan without a text layer.
    InputTooLargeError
        When the file or its text passes ``limits`` (issue 20); text is counted page by page.
    """
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
                check_text_size(path, "".join(pages), limits)
    except LimitReachedError as err:  # pypdf's own guard against decompression bombs
        raise InputTooLargeError(path, f"the PDF unpacks to more than pypdf allows ({first_line(err)})",
                                 fix="Export the document again or as .txt.") from err
    except (PdfReadError, ValueError, OSError, KeyError) as err:
        raise CorruptDocumentError(
            path, f"the PDF cannot be read ({type(err).__name__}: {first_line(err)})",
            fix="Export the document again or as .txt.",
        ) from err
    n_characters = sum(len("".join(page.split())) for page in pages)
    if pages and n_characters < MIN_CHARACTERS_PER_PAGE * len(pages):
        raise ScannedPdfError(
            path, f"the PDF has {len(pages)} page(s) but {'no' if not n_characters else 'almost no'} text "
            f"({n_characters} character(s)): it is a scan or images of text",
            expected="a PDF with a text layer (text you can select in a PDF viewer)",
            fix="Run text recognition (OCR) on it, for instance 'ocrmypdf in.pdf out.pdf', or ask for the "
                "transcript as .docx or .txt.",
        )
    return "\n\n".join(_join_wrapped_lines(page.strip()) for page in pages)


def _join_wrapped_lines(page: str) -> str:
    """Undo the line wrapping of PDF text: a line that fills the width of the page and does not
    end a sentence continues on the next line (shorter unpunctuated lines are headings)."""
    lines = page.split("\n")
    width = max((len(line.rstrip()) for line in lines), default=0)
    joined: list[str] = []
    for line in lines:
        previous = joined[-1].rstrip() if joined else ""
        if (previous and line.strip() and len(previous) >= 0.8 * width and previous[-1] not in ".?!…:;"
                and not _LABEL_START.match(line)):  # a speaker's turn starts a line of its own
            joined[-1] = previous + " " + line.lstrip()
        else:
            joined.append(line)
    return "\n".join(joined)
