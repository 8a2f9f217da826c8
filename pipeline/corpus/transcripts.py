"""Read transcripts and policy documents as researchers deliver them.

Formats: ``.txt`` (UTF-8 with or without BOM, UTF-16, cp1252), ``.docx`` and ``.pdf`` (interview
or document, decided by content: :mod:`pipeline.corpus.pdf`). Text is normalised to NFC with LF line ends before any offset is computed, so every
offset codeer stores points into :attr:`Transcript.text`.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import InputLimits
from pipeline.corpus.archives import check_file_size
from pipeline.corpus.documents import DEFAULT_LIMITS, read_docx
from pipeline.corpus.pdf import LabelledLine, decide_source_kind, read_pdf
from pipeline.errors import (
    EmptyTranscriptError,
    NoRespondentTurnsError,
    TranscriptFormatError,
    UndecodableFileError,
    UnknownSpeakerError,
)
from pipeline.corpus.pseudonyms import Pseudonymizer
from pipeline.hashing import text_hash
from pipeline.records import Role, Speaker, Transcript, Turn

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".docx", ".pdf")
METADATA_FILE = "metadata.csv"

INTERVIEWER_LABELS = frozenset({"onderzoeker", "interviewer", "interviewster", "i", "int", "vraag", "v", "q"})
RESPONDENT_LABELS = frozenset({"respondent", "r", "resp", "geïnterviewde", "geinterviewde", "antwoord", "a"})
HEADER_KEYS = {
    "naam respondent": "respondent",
    "respondent": "respondent",
    "functie": "function",
    "werkend bij": "employer",
    "gemeente": "municipality",
    "tijd interview": "time",
    "datum": "time",
    "tijdsduur interview": "duration",
    "opmerking": "note",
    "titel": "title",
    "soort": "document_type",
}
# A turn label at the start of a line, optionally after a timestamp such as [00:12:31].
_TIMESTAMP = r"[\[(]?\d{1,2}:\d{2}(?::\d{2})?[\])]?"
_LABEL_LINE = re.compile(
    rf"^(?P<stamp>[ \t]*{_TIMESTAMP}[ \t]*)?(?P<label>[^\W\d_][\w.'’-]*(?: [\w.'’-]+){{0,2}})[ \t]*:(?:[ \t]+|$)"
)
_STAMP_ONLY = re.compile(rf"^[ \t]*{_TIMESTAMP}[ \t]*")
_SIDECAR_SUFFIXES = (".csv", ".md", ".yaml", ".yml", ".json", ".jsonl", ".py")
_CODE_LIKE = re.compile(r"^(?=(?:.*[A-Z]){2})[A-Za-z]{2,6}$")


@dataclass(frozen=True, slots=True)
class SourceMetadata:
    """Metadata for one file from a ``metadata.csv`` sidecar (``file,municipality,respondent,role``)."""

    municipality: str = ""
    respondent: str = ""
    role: str = ""


def read_metadata(path: Path) -> dict[str, SourceMetadata]:
    """Read a metadata sidecar; keys are file names.

    Raises :class:`TranscriptFormatError` naming the row when a column is missing or a role
    is unknown.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "municipality", "respondent", "role"} - set(reader.fieldnames or ())
        if missing:
            raise TranscriptFormatError(
                path, f"missing column(s) {', '.join(sorted(missing))}", line=1,
                expected="a header row 'file,municipality,respondent,role'",
            )
        rows: dict[str, SourceMetadata] = {}
        for row in reader:
            role = (row["role"] or "").strip()
            if role and role not in {r.value for r in Role}:
                raise TranscriptFormatError(
                    path, f"unknown role {role!r}", line=reader.line_num,
                    expected="one of " + ", ".join(r.value for r in Role),
                )
            rows[row["file"].strip()] = SourceMetadata(
                (row["municipality"] or "").strip(), (row["respondent"] or "").strip(), role
            )
        return rows


def decode_bytes(data: bytes, path: Path | str) -> tuple[str, str]:
    """Decode transcript bytes; return ``(text, encoding)``.

    Tries BOMs, UTF-16 without BOM, UTF-8, then cp1252; binary data is refused.
    """
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise EmptyTranscriptError(path, "the file is empty", fix="Check the export or remove the file.")
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as err:
                raise _undecodable(path, data, err, encoding) from err
    if len(data) >= 4 and b"\x00" in data:
        even, odd = data[0::2].count(0), data[1::2].count(0)
        half = len(data) / 2
        if odd > 0.3 * half and even < 0.05 * half or even > 0.3 * half and odd < 0.05 * half:
            encoding = "utf-16-le" if odd > even else "utf-16-be"
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as err:
                raise _undecodable(path, data, err, encoding) from err
        raise UndecodableFileError(
            path, "this is a binary file, not a text transcript",
            expected="a .txt (UTF-8, UTF-16 or cp1252), .docx or .pdf file",
            fix="Export the transcript as plain text or .docx.",
        )
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as err:
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise _undecodable(path, data, err, "utf-8 or cp1252") from err
    controls = sum(1 for char in text if ord(char) < 32 and char not in "\t\n\r\f")
    if controls > max(2, 0.01 * len(text)):
        raise UndecodableFileError(
            path, "this looks like a binary file, not a text transcript",
            expected="a .txt (UTF-8, UTF-16 or cp1252), .docx or .pdf file",
            fix="Export the transcript as plain text or .docx.",
        )
    return text, encoding


def _undecodable(path: Path | str, data: bytes, err: UnicodeDecodeError, encoding: str) -> UndecodableFileError:
    line = data[: err.start].count(b"\n") + 1
    return UndecodableFileError(
        path, f"byte {err.start} cannot be decoded as {encoding}", line=line,
        expected="UTF-8, UTF-16 or cp1252 text", fix="Save the file again as UTF-8.",
    )


def normalise_text(text: str) -> str:
    """NFC-normalise and turn CRLF/CR line ends into LF; drop a leading BOM character."""
    text = text.lstrip("\ufeff")
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))


def read_source_text(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> tuple[str, str, str]:
    """Read any supported file; return ``(normalised text, file format, encoding)``.

    Raises :class:`~pipeline.errors.InputTooLargeError` for a file over ``limits`` (issue 20): a
    ``.txt`` file is refused on its size before it is read, so memory stays bounded.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise TranscriptFormatError(
            path, f"unsupported file type {suffix or '(none)'!r}",
            expected="one of " + ", ".join(SUPPORTED_SUFFIXES),
        )
    if suffix == ".docx":
        raw, encoding = read_docx(path, limits), "docx"
    elif suffix == ".pdf":
        raw, encoding = read_pdf(path, limits), "pdf"
    else:
        check_file_size(path, limits.max_text_bytes, "text")
        raw, encoding = decode_bytes(path.read_bytes(), path)
    text = normalise_text(raw)
    if not text.strip():
        raise EmptyTranscriptError(path, "the file holds no text", fix="Check the export or remove the file.")
    return text, suffix.lstrip("."), encoding


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans, position = [], 0
    for line in text.split("\n"):
        spans.append((position, position + len(line)))
        position += len(line) + 1
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _classify_label(label: str, respondent_code: str) -> Speaker | None:
    key = label.strip().lower()
    if key in INTERVIEWER_LABELS:
        return Speaker.INTERVIEWER
    if key in RESPONDENT_LABELS or (respondent_code and label.strip() == respondent_code):
        return Speaker.RESPONDENT
    return None


def parse_transcript(
    text: str,
    path: Path | str,
    *,
    source: str | None = None,
    metadata: SourceMetadata | None = None,
    file_format: str = "txt",
    encoding: str = "utf-8",
    speaker_aliases: dict[str, Speaker] | None = None,
    pseudonyms: Pseudonymizer | None = None,
) -> Transcript:
    """Parse normalised text into a :class:`Transcript` (header, metadata, turns).

    Respondent code: metadata's, the header's, else from ``pseudonyms`` (default: in memory, this call only).

    Interviews need turns labelled by speaker (``Onderzoeker:``/``Respondent:``, ``I:``/``R:``,
    ``Interviewer:``, a speaker code or a name); policy documents (header ``Titel:`` or role
    ``document``) become one turn per paragraph.
    """
    path = Path(path)
    metadata = metadata or SourceMetadata()
    aliases = {k.lower(): v for k, v in (speaker_aliases or {}).items()}
    spans = _line_spans(text)
    lines = text.split("\n")

    header: dict[str, str] = {}
    first_body = 0
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        key, sep, value = stripped.partition(":")
        if sep and key.strip().lower() in HEADER_KEYS and not _STAMP_ONLY.match(line):
            header.setdefault(HEADER_KEYS[key.strip().lower()], value.strip())
            first_body = number + 1
            continue
        break

    municipality = metadata.municipality or _municipality_from_header(header)
    respondent = metadata.respondent or _respondent_from_header(header, source or path.name, pseudonyms)
    is_document = metadata.role == Role.DOCUMENT or "title" in header or "document_type" in header
    detection = ""
    if file_format == "pdf" and not is_document and not metadata.role:
        # A PDF may be either (issue 18): the content decides, and the ingest says why.
        decision = decide_source_kind(_labelled_lines(lines, first_body, respondent, aliases))
        is_document = decision.kind == "document"
        detection = f"read as {'a policy document' if is_document else 'an interview'}: {decision.reason}"
        aliases = {**{label.lower(): side for label, side in decision.speakers.items()}, **aliases}
    elif file_format == "pdf":
        detection = ("read as a policy document: the metadata gives role 'document'" if metadata.role == Role.DOCUMENT
                     else "read as a policy document: its header names a title or document type" if is_document
                     else f"read as an interview: the metadata gives role {metadata.role!r}")
    role = Role(metadata.role) if metadata.role else (Role.DOCUMENT if is_document else _role_from_header(header, respondent))
    if not municipality:
        logger.warning("%s: no municipality in the header or metadata.csv; stored as 'onbekend'", path)
        municipality = "onbekend"

    if is_document:
        turns = _document_turns(text, spans, first_body)
        if not any(turn.speaker == Speaker.DOCUMENT for turn in turns):
            raise NoRespondentTurnsError(path, "the document has no paragraphs of text", line=first_body + 1)
    else:
        turns = _interview_turns(text, lines, spans, first_body, path, respondent, aliases)

    return Transcript(
        source=source or path.name,
        path=str(path),
        content_hash=text_hash(text),
        text=text,
        municipality=municipality,
        respondent=respondent,
        role=role,
        turns=tuple(turns),
        file_format=file_format,
        encoding=encoding,
        header=tuple(sorted((k, v) for k, v in header.items() if k not in ("respondent",))),
        detection=detection,
    )


def _labelled_lines(lines: list[str], first_body: int, respondent: str,
                    aliases: dict[str, Speaker]) -> list[LabelledLine]:
    """The lines that start with a speaker-like label, with the side each names and whether its turn asks."""
    found: list[tuple[str, Speaker | None, int]] = []
    for number in range(first_body, len(lines)):
        match = _LABEL_LINE.match(lines[number])
        if match:
            label = match.group("label").strip()
            found.append((label, aliases.get(label.lower()) or _classify_label(label, respondent), number))
    result = []
    for index, (label, speaker, number) in enumerate(found):
        end = found[index + 1][2] if index + 1 < len(found) else len(lines)
        result.append(LabelledLine(label, speaker, "?" in "\n".join(lines[number:end])))
    return result


def _interview_turns(
    text: str,
    lines: list[str],
    spans: list[tuple[int, int]],
    first_body: int,
    path: Path,
    respondent: str,
    aliases: dict[str, Speaker],
) -> list[Turn]:
    candidates: list[tuple[int, re.Match[str]]] = []
    for number in range(first_body, len(lines)):
        match = _LABEL_LINE.match(lines[number])
        if match:
            candidates.append((number, match))
    frequency = Counter(match.group("label").strip() for _, match in candidates)

    def speaker_of(label: str) -> Speaker | None:
        return aliases.get(label.lower()) or _classify_label(label, respondent)

    # Unknown labels count as speakers only when they recur (or carry a timestamp);
    # a one-off "Kortom: ..." inside an answer is text.
    unknown = sorted(
        {label for label, n in frequency.items() if speaker_of(label) is None and n >= 2}
    )
    known = {speaker_of(label) for label in frequency if speaker_of(label) is not None}
    resolved: dict[str, Speaker] = {}
    if len(unknown) == 1 and known == {Speaker.INTERVIEWER}:
        resolved[unknown[0]] = Speaker.RESPONDENT
    elif len(unknown) == 1 and known == {Speaker.RESPONDENT}:
        resolved[unknown[0]] = Speaker.INTERVIEWER
    elif unknown:
        label = unknown[0] if not known else next(u for u in unknown)
        number = next(n for n, m in candidates if m.group("label").strip() == label)
        raise UnknownSpeakerError(
            path, f"unknown speaker label {label!r}", line=number + 1,
            expected='turns starting with "Onderzoeker:" or "Respondent:" (or I:/R:, Interviewer:, the respondent code)',
            fix=f"Rename the speaker, or map it with --speaker '{label}=interviewer' or '{label}=respondent'.",
        )

    starts: list[tuple[int, Speaker, str, int]] = []  # (line number, speaker, label, body start)
    for number, match in candidates:
        label = match.group("label").strip()
        speaker = speaker_of(label) or resolved.get(label)
        if speaker is None:
            continue
        starts.append((number, speaker, label, spans[number][0] + match.end()))
    if not starts:
        raise NoRespondentTurnsError(
            path, "no speaker turns found", line=first_body + 1,
            expected='turns starting with "Onderzoeker:" and "Respondent:"',
            fix="Check that each turn starts on a new line with the speaker and a colon.",
        )
    turns: list[Turn] = []
    for index, (number, speaker, label, body_start) in enumerate(starts):
        body_end = spans[starts[index + 1][0]][0] if index + 1 < len(starts) else len(text)
        start, end = _strip_span(text, body_start, body_end)
        if start == end:
            continue
        turns.append(Turn(len(turns), speaker, label, start, end, number + 1))
    if not any(turn.speaker == Speaker.RESPONDENT for turn in turns):
        raise NoRespondentTurnsError(
            path, "the transcript has only interviewer turns, no respondent speech to code",
            line=starts[0][0] + 1, expected='at least one turn starting with "Respondent:" (or R:, the respondent code)',
            fix="Check the speaker labels, or map the respondent's label with --speaker 'LABEL=respondent'.",
        )
    return turns


def _document_turns(text: str, spans: list[tuple[int, int]], first_body: int) -> list[Turn]:
    """Headings (short lines without final punctuation) and paragraphs of a document."""
    turns: list[Turn] = []
    block: list[int] = []

    def add(first: int, last: int, heading: bool) -> None:
        start, end = _strip_span(text, spans[first][0], spans[last][1])
        if start < end:
            speaker = Speaker.INTERVIEWER if heading else Speaker.DOCUMENT
            turns.append(Turn(len(turns), speaker, "kop" if heading else "tekst", start, end, first + 1))

    def flush() -> None:
        if block:
            add(block[0], block[-1], heading=False)
        block.clear()

    for number in range(first_body, len(spans)):
        line = text[spans[number][0] : spans[number][1]].strip()
        if not line:
            flush()
        elif len(line) < 90 and line[-1] not in ".?!…:;,)»”’" and not block:
            add(number, number, heading=True)
        else:
            block.append(number)
    flush()
    return turns


def _municipality_from_header(header: dict[str, str]) -> str:
    value = header.get("municipality") or header.get("employer", "")
    value = re.sub(r"^(de\s+)?gemeente\s+", "", value.strip(), flags=re.IGNORECASE).strip(" .…")
    return value


def _respondent_from_header(header: dict[str, str], source: str, pseudonyms: Pseudonymizer | None) -> str:
    value, pseudonyms = header.get("respondent", "").strip(), pseudonyms or Pseudonymizer.ephemeral()
    if _CODE_LIKE.match(value):
        return value
    if not value:
        return pseudonyms.code_for_source(source)
    code = pseudonyms.code_for_name(value)  # a name: never stored; the registry's code replaces it
    logger.warning("%s: the header names the respondent; stored as %s. Give the thesis code in metadata.csv "
                   "to use that instead.", source, code)
    return code


def _role_from_header(header: dict[str, str], respondent: str) -> Role:
    function = header.get("function", "").lower()
    if "beleid" in function:
        return Role.BELEIDSMEDEWERKER
    if any(word in function for word in ("manager", "teamleider", "hoofd", "directeur", "coach", "leidinggevende")):
        return Role.MANAGER
    if "regio" in function:
        return Role.REGIO
    if not _CODE_LIKE.match(respondent):  # a registry code (R0001) says nothing about the role
        return Role.OTHER
    return {"B": Role.BELEIDSMEDEWERKER, "M": Role.MANAGER, "R": Role.REGIO, "T": Role.REGIO}.get(respondent[:1], Role.OTHER)


def load_transcript(
    path: Path,
    *,
    source: str | None = None,
    metadata: SourceMetadata | None = None,
    speaker_aliases: dict[str, Speaker] | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
    pseudonyms: Pseudonymizer | None = None,
) -> Transcript:
    """Read and parse one file (:func:`parse_transcript`). Raises a :class:`TranscriptFormatError`
    subclass on bad input, :class:`~pipeline.errors.InputTooLargeError` for a file over ``limits``."""
    path = Path(path)
    if not path.is_file():
        raise TranscriptFormatError(path, "no such file", fix="Check the path.")
    text, file_format, encoding = read_source_text(path, limits)
    return parse_transcript(
        text, path, source=source, metadata=metadata, file_format=file_format,
        encoding=encoding, speaker_aliases=speaker_aliases, pseudonyms=pseudonyms,
    )
