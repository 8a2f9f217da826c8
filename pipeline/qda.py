"""REFI-QDA exchange with NVivo, ATLAS.ti, MAXQDA and QualCoder (issue 9).

Projects travel as ``.qdpx`` (a ZIP with one ``project.qde`` in namespace
``urn:QDA-XML:project:1.0`` and a flat ``sources/`` folder), codebooks as ``.qdc``
(namespace ``urn:QDA-XML:codebook:1.0``).

Rules kept here:

- **Offsets** are Unicode code points from 0, end exclusive, over the plain text as stored
  in the archive. codeer writes that text as UTF-8 with LF line ends and no BOM, so an
  exported selection is exactly ``text[start:end]`` and is checked against the utterance
  before it is written. On import the text is normalised (NFC, LF) and every offset is
  mapped onto the normalised text. Where a source holds CRLF line ends (or a BOM), tools
  disagree on whether they count; codeer reads the offsets as counted over the stored text
  unless the selections' names (ATLAS.ti and others name a selection by its first words)
  match the text better when counted over LF text, and says which reading it used.
- **Placement** of a selection on utterances: a selection codes every utterance of which it
  covers at least half; a selection that covers no utterance by half codes the one
  utterance it overlaps most (a clause selected inside a long sentence). A selection that
  overlaps no codable utterance (interviewer text, headings) is reported, never dropped.
- **GUIDs** of an export are UUID5s of codeer ids (code id, source key, utterance id,
  annotator), so a re-export updates rather than duplicates in the researcher's program.
- **Direction and facet** have no field in the standard: they go into the selection's
  ``<Description>`` as lines ``[codeer] CODE direction=- facet=practice`` (machine codings
  add ``p=`` and ``model=``), and a mapping may give a direction to a direction sub-code.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import unicodedata
import uuid
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml
from lxml import etree

from pipeline import __version__
from pipeline.codebook import Code, Codebook, parse_codebook
from pipeline.errors import QdaExportError, QdaFormatError, QdaMappingError, TranscriptFormatError
from pipeline.hashing import text_hash
from pipeline.records import Annotation, Coding, Prediction, Role, Speaker, Transcript, Turn, Utterance
from pipeline.segment import Segmenter, segment_transcript
from pipeline.store import StoredAnnotation, Store, now
from pipeline.transcripts import INTERVIEWER_LABELS, RESPONDENT_LABELS, SourceMetadata, decode_bytes, parse_transcript

logger = logging.getLogger(__name__)

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
INCLUDE_CHOICES = ("predicted", "reviewed", "all")
MACHINE_USER_PREFIX = "codeer model "
CODEER_USER = "codeer"
# Fixed for good: every GUID of every export derives from it.
_GUID_NAMESPACE = uuid.UUID("6f1d3c52-7a0e-5b8e-9d43-2c1a8e0b7f11")
_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")
_RGB = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")
_CODEER_LINE = re.compile(r"^\[codeer\]\s+(?P<code>[\w-]+)(?P<rest>(?:\s+[\w]+=\S+)*)\s*$", re.MULTILINE)
_LABEL = re.compile(r"^[ \t]*(?:[\[(]?\d{1,2}:\d{2}(?::\d{2})?[\])]?[ \t]*)?([^\W\d_][\w.'’-]*(?: [\w.'’-]+){0,2})[ \t]*:",
                    re.MULTILINE)
_CODE_LIKE = re.compile(r"^(?=(?:.*[A-Z]){2})[A-Za-z]{2,6}$")
_VARIABLE_NAMES = {"municipality": ("municipality", "gemeente"), "respondent": ("respondent", "respondentcode"),
                   "role": ("role", "rol", "functie")}
_ROLE_WORDS = (("beleid", Role.BELEIDSMEDEWERKER), ("manager", Role.MANAGER), ("teamleider", Role.MANAGER),
               ("leidinggevende", Role.MANAGER), ("regio", Role.REGIO), ("document", Role.DOCUMENT))
_DIRECTION_WORDS = {
    "+": ("+", "plus", "pos", "positief", "positive", "bevorderend", "stimulerend", "aanwezig", "present"),
    "-": ("-", "min", "neg", "negatief", "negative", "belemmerend", "hinderend", "afwezig", "absent"),
    "0": ("0", "neutraal", "neutral", "gemengd", "mixed"),
}
_XML_PARSER = {"resolve_entities": False, "no_network": True, "load_dtd": False, "remove_comments": True}


def qda_guid(kind: str, key: str) -> str:
    """The stable GUID of a codeer object: the same ``kind`` and ``key`` give the same GUID in every export."""
    return str(uuid.uuid5(_GUID_NAMESPACE, f"{kind}:{key}")).upper()


# --------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class QdaCode:
    """A code of a QDA codebook. ``path`` holds the names from the root, with flattened
    ``Parent::Child`` names split; ``parent`` is the GUID of the enclosing ``<Code>``."""

    guid: str
    name: str
    path: tuple[str, ...]
    parent: str | None
    codable: bool
    color: str | None = None
    description: str = ""

    @property
    def full_name(self) -> str:
        """``Parent::Child`` name, as NVivo and MAXQDA show nested codes."""
        return "::".join(self.path)


@dataclass(frozen=True, slots=True)
class QdaCoding:
    """One ``<Coding>``: a code (GUID) put on a selection by a user (GUID)."""

    guid: str
    code: str
    user: str | None
    created_at: str | None


@dataclass(frozen=True, slots=True)
class QdaSelection:
    """A ``<PlainTextSelection>`` with offsets mapped onto :attr:`QdaSource.text`.

    ``verified`` is True when its name matches its text, False when the source names
    selections by their text and this one does not match, None when it cannot be told.
    """

    guid: str
    start: int
    end: int
    name: str
    description: str
    codings: tuple[QdaCoding, ...]
    user: str | None
    created_at: str | None
    verified: bool | None


@dataclass(frozen=True, slots=True)
class QdaSource:
    """A text source with its normalised text (NFC, LF), selections and variables."""

    guid: str
    name: str
    text: str
    selections: tuple[QdaSelection, ...]
    variables: tuple[tuple[str, str], ...]
    user: str | None
    n_source_codings: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QdaCase:
    """A case (for codeer: a municipality or a respondent) with its variables and sources."""

    guid: str
    name: str
    variables: tuple[tuple[str, str], ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class QdaProject:
    """What codeer reads from a ``.qdpx``; ``skipped`` names what it cannot use, and why."""

    path: str
    name: str
    origin: str
    users: Mapping[str, str]
    codes: tuple[QdaCode, ...]
    sources: tuple[QdaSource, ...]
    cases: tuple[QdaCase, ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MappedCode:
    """Where a QDA code goes: a codebook id, and a direction/facet where the code stands for one."""

    code: str
    direction: str | None = None
    facet: str | None = None


@dataclass(frozen=True)
class QdaMapping:
    """A researcher's mapping file: QDA codes (by GUID, ``Parent::Child`` name or name) to
    codebook ids (``None`` = ignore on purpose), variable names and speaker labels."""

    path: str = ""
    codes: Mapping[str, MappedCode | None] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    speakers: Mapping[str, Speaker] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MappingSuggestion:
    """A proposed mapping line, with its similarity score and the runner-up."""

    key: str
    name: str
    code: str | None
    direction: str | None
    score: float
    alternative: str | None
    alternative_score: float
    n_codings: int


@dataclass(frozen=True)
class QdaImportReport:
    """Outcome of :func:`import_qdpx`. Nothing that was left out is left unmentioned."""

    n_sources: int
    statuses: Mapping[str, int]
    n_selections: int
    n_placed: int
    n_codings_added: int
    n_codings_present: int
    unmapped: tuple[str, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every source, code and selection was used."""
        return not self.unmapped and not self.problems


@dataclass(frozen=True)
class QdaExportReport:
    """Outcome of :func:`export_qdpx`."""

    path: str
    n_sources: int
    n_selections: int
    n_human_codings: int
    n_machine_codings: int
    users: tuple[str, ...]
    problems: tuple[str, ...] = ()


# --------------------------------------------------------------------------- reading
def _q(tag: str, ns: str = PROJECT_NS) -> str:
    return f"{{{ns}}}{tag}"


def _where(element: etree._Element, where: str) -> str:
    attributes = " ".join(f'{key}="{element.get(key)}"' for key in ("guid", "name") if element.get(key) is not None)
    return f"{where}, line {element.sourceline}, <{etree.QName(element).localname}{' ' + attributes if attributes else ''}>"


def _norm_guid(value: str) -> str:
    return value.strip().strip("{}").upper()


def _guid(element: etree._Element, where: str, attribute: str = "guid") -> str:
    value = element.get(attribute)
    if value is None or not _GUID.match(value.strip()):
        problem = f"no {attribute!r} attribute" if value is None else f"{attribute}={value!r} is not a GUID"
        raise QdaFormatError(f"{_where(element, where)}: {problem}. The archive is inconsistent; export it again.")
    return _norm_guid(value)


def _parse_xml(data: bytes, where: str) -> etree._Element:
    try:
        return etree.fromstring(data, etree.XMLParser(**_XML_PARSER))
    except etree.XMLSyntaxError as err:
        raise QdaFormatError(f"{where}: not well-formed XML ({err}). Export it again from your QDA program.") from err


def _check_root(root: etree._Element, tag: str, ns: str, where: str) -> None:
    name = etree.QName(root)
    if name.namespace != ns:
        raise QdaFormatError(
            f"{where}: unknown namespace {name.namespace or '(none)'!r} on the root element <{name.localname}>; "
            f"expected {ns!r} (REFI-QDA 1.0). Export the project again as REFI-QDA from your QDA program.")
    if name.localname != tag:
        raise QdaFormatError(f"{where}: root element <{name.localname}>, expected <{tag}>.")


def _read_member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise QdaFormatError(f"{path}: the archive member {name!r} is corrupt ({err}). Export the project again.") from err


def read_qdpx(path: Path | str) -> QdaProject:
    """Read a REFI-QDA project archive: users, code tree, text sources, cases and selections.

    Parameters
    ----------
    path
        The ``.qdpx`` file.

    Returns
    -------
    QdaProject
        Codes, sources with normalised text and selection offsets mapped onto it, cases.

    Raises
    ------
    QdaFormatError
        For a corrupt archive, a missing ``project.qde``, an unknown namespace, a selection
        outside its text or a reference to a GUID that is not in the project, naming the element.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise QdaFormatError(f"{path}: no such file.") from None
    except (zipfile.BadZipFile, OSError) as err:
        raise QdaFormatError(f"{path}: not a ZIP archive, so not a .qdpx project (corrupt or incomplete copy?). "
                             "Export the project again as REFI-QDA (.qdpx).") from err
    with archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        qde = [name for name in names if name.lower() == "project.qde"]
        if not qde:
            found = ", ".join(sorted(names)[:5]) or "nothing"
            raise QdaFormatError(f"{path}: no project.qde at the root of the archive (found: {found}). "
                                 "A .qdpx holds project.qde and a sources/ folder; export the project again.")
        root = _parse_xml(_read_member(archive, qde[0], path), f"{path}: project.qde")
        _check_root(root, "Project", PROJECT_NS, f"{path}: project.qde")
        members = {name.split("/", 1)[1].lower(): name for name in names
                   if "/" in name and name.split("/", 1)[0].lower() == "sources"}
        return _project_from_xml(root, path, archive, members)


def _project_from_xml(root: etree._Element, path: Path, archive: zipfile.ZipFile, members: dict[str, str]) -> QdaProject:
    where = f"{path}: project.qde"
    users = {_guid(user, where): user.get("name") or user.get("id") or _guid(user, where)
             for user in root.iterfind(f"{_q('Users')}/{_q('User')}")}
    codes = _read_codes(root.find(_q("CodeBook")), PROJECT_NS, where)
    code_guids = {code.guid for code in codes}
    variables = {_guid(v, where): v.get("name", "") for v in root.iterfind(f"{_q('Variables')}/{_q('Variable')}")}
    all_guids = {_norm_guid(g) for element in root.iter() if isinstance(element.tag, str) and (g := element.get("guid"))}

    def user_of(element: etree._Element, attribute: str) -> str | None:
        if element.get(attribute) is None:
            return None
        guid = _guid(element, where, attribute)
        if guid not in users:
            raise QdaFormatError(f"{_where(element, where)}: {attribute} {guid} is not a <User> of the project. "
                                 "The archive is inconsistent; export it again.")
        return guid

    def values_of(element: etree._Element) -> tuple[tuple[str, str], ...]:
        found = []
        for value in element.iterfind(_q("VariableValue")):
            ref = value.find(_q("VariableRef"))
            target = _guid(ref, where, "targetGUID") if ref is not None else None
            if target not in variables:
                raise QdaFormatError(f"{_where(value, where)}: refers to variable {target} that is not in <Variables>.")
            data = next((child.text or "" for child in value if etree.QName(child).localname != "VariableRef"), "")
            found.append((variables[target], data.strip()))
        return tuple(found)

    sources: list[QdaSource] = []
    skipped: list[str] = []
    sources_element = root.find(_q("Sources"))
    for element in sources_element if sources_element is not None else ():
        if not isinstance(element.tag, str):
            continue
        kind = etree.QName(element).localname
        name = element.get("name") or element.get("guid") or "?"
        text_element = element if kind == "TextSource" else element.find(_q("Representation"))
        if kind not in ("TextSource", "PDFSource") or text_element is None:
            n = sum(1 for _ in element.iter(_q("Coding")))
            skipped.append(f"{kind} {name!r}: codeer imports text only; the source and its {n} coding(s) are left out.")
            continue
        source = _read_text_source(text_element, element, where, archive, path, members, code_guids, user_of, values_of)
        if isinstance(source, str):
            skipped.append(source)
            continue
        if kind == "PDFSource":
            n = sum(1 for _ in element.iterfind(_q("PDFSelection")))
            if n:
                skipped.append(f"PDFSource {name!r}: {n} area selection(s) on PDF pages are left out; "
                               "the selections on its text representation are imported.")
        sources.append(source)

    cases = []
    for case in root.iterfind(f"{_q('Cases')}/{_q('Case')}"):
        refs = []
        for tag in ("SourceRef", "SelectionRef"):
            for ref in case.iterfind(_q(tag)):
                target = _guid(ref, where, "targetGUID")
                if target not in all_guids:
                    raise QdaFormatError(f"{_where(ref, where)} in case {case.get('name')!r}: refers to {target}, "
                                         "which is not in the project. Export the project again.")
                if tag == "SourceRef":
                    refs.append(target)
        cases.append(QdaCase(_guid(case, where), case.get("name", ""), values_of(case), tuple(refs)))
    return QdaProject(str(path), root.get("name", ""), root.get("origin", ""), users, tuple(codes), tuple(sources),
                      tuple(cases), tuple(skipped))


def _read_codes(parent: etree._Element | None, ns: str, where: str) -> list[QdaCode]:
    codes: list[QdaCode] = []
    seen: set[str] = set()

    def walk(element: etree._Element, above: QdaCode | None) -> None:
        for child in element.iterfind(_q("Code", ns)):
            guid = _guid(child, where)
            name = (child.get("name") or "").strip()
            if not name:
                raise QdaFormatError(f"{_where(child, where)}: a <Code> without a name.")
            if guid in seen:
                raise QdaFormatError(f"{_where(child, where)}: GUID {guid} is used by two codes.")
            seen.add(guid)
            parts = tuple(part.strip() for part in name.split("::") if part.strip()) or (name,)
            color = child.get("color")
            code = QdaCode(guid, name, (above.path if above else ()) + parts, above.guid if above else None,
                           child.get("isCodable", "true").strip().lower() in ("true", "1"),
                           color if color and _RGB.match(color) else None,
                           (child.findtext(_q("Description", ns)) or "").strip())
            codes.append(code)
            walk(child, code)

    codes_element = parent.find(_q("Codes", ns)) if parent is not None else None
    if codes_element is not None:
        walk(codes_element, None)
    return codes


def _read_text_source(element, outer, where, archive, path, members, code_guids, user_of, values_of):  # type: ignore[no-untyped-def]
    """A :class:`QdaSource`, or a string saying why the source is skipped."""
    guid = _guid(outer, where)
    name = outer.get("name") or guid
    notes: list[str] = []
    plain, rich = element.get("plainTextPath"), element.get("richTextPath")
    content = element.findtext(_q("PlainTextContent"))
    if plain:
        raw, had_bom = _decode_source(_source_bytes(plain, element, where, archive, path, members), name)
    elif content is not None:
        raw, had_bom = content, False
    elif rich and rich.lower().endswith(".docx"):
        raw, had_bom = _docx_text(_source_bytes(rich, element, where, archive, path, members), name), False
        notes.append(f"source {name!r}: no plain-text twin; text read from its DOCX paragraphs. "
                     "Check that its codings land on the right words.")
    else:
        return f"TextSource {name!r}: neither plainTextPath nor PlainTextContent; the source is left out."
    if raw is None:
        return f"TextSource {name!r}: the file {plain or rich!r} lies outside the archive; the source is left out."
    text, readings = _readings(raw, had_bom)

    raw_selections = []
    for selection in element.iterfind(_q("PlainTextSelection")):
        try:
            start, end = int(selection.get("startPosition", "")), int(selection.get("endPosition", ""))
        except ValueError:
            raise QdaFormatError(f"{_where(selection, where)}: startPosition/endPosition are not whole numbers.") from None
        codings = []
        for coding in selection.iterfind(_q("Coding")):
            ref = coding.find(_q("CodeRef"))
            target = _guid(ref, where, "targetGUID") if ref is not None else None
            if target not in code_guids:
                raise QdaFormatError(f"{_where(coding, where)} in source {name!r}: refers to code {target}, which is "
                                     "not in the <CodeBook>. The archive is inconsistent; export it again.")
            codings.append(QdaCoding(_guid(coding, where), target, user_of(coding, "creatingUser"),
                                     coding.get("creationDateTime")))
        raw_selections.append((selection, start, end, tuple(codings)))

    label, convert, size = readings[0]
    if len(readings) > 1 and raw_selections:
        scores = [sum(1 for s, a, b, _ in raw_selections if _fits(a, b, n) and
                      _excerpt_matches(s.get("name", ""), text[f(a):f(b)]) is True) for _, f, n in readings]
        label, convert, size = readings[max(range(len(readings)), key=lambda i: (scores[i], -i))]
    if len(readings) > 1:
        notes.append(f"source {name!r}: the stored text has CRLF line ends or a BOM; selection offsets were read "
                     f"as counted over {label}.")
    selections = []
    for selection, start, end, codings in raw_selections:
        if not _fits(start, end, size):
            raise QdaFormatError(
                f"{_where(selection, where)} in source {name!r}: positions {start}-{end} lie outside its text "
                f"({size} characters). The archive is inconsistent; export it again.")
        a, b = convert(start), convert(end)
        selections.append(QdaSelection(_guid(selection, where), a, b, selection.get("name", ""),
                                       (selection.findtext(_q("Description")) or "").strip(), codings,
                                       user_of(selection, "creatingUser"), selection.get("creationDateTime"),
                                       _excerpt_matches(selection.get("name", ""), text[a:b])))
    named = [s for s in selections if s.verified is not None]
    names_are_excerpts = bool(named) and 2 * sum(1 for s in named if s.verified) >= len(named)
    if not names_are_excerpts:
        selections = [replace(s, verified=None) for s in selections]
    n_source_codings = sum(1 for _ in element.iterfind(_q("Coding")))
    return QdaSource(guid, name, text, tuple(selections), values_of(outer), user_of(outer, "creatingUser"),
                     n_source_codings, tuple(notes))


def _fits(start: int, end: int, size: int) -> bool:
    return 0 <= start <= end <= size


def _source_bytes(uri, element, where, archive, path, members) -> bytes | None:  # type: ignore[no-untyped-def]
    if not uri.lower().startswith("internal://"):
        return None
    name = uri[len("internal://"):].lstrip("/")
    member = members.get(name.lower())
    if member is None:
        raise QdaFormatError(f"{_where(element, where)}: refers to {uri!r}, which is not in the archive's "
                             "sources/ folder. Export the project again with its sources included.")
    return _read_member(archive, member, path)


def _decode_source(data: bytes | None, name: str) -> tuple[str | None, bool]:
    if data is None:
        return None, False
    had_bom = data.startswith(b"\xef\xbb\xbf")
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        return "", had_bom
    try:
        return data.decode("utf-8-sig"), had_bom
    except UnicodeDecodeError:
        text, _ = decode_bytes(data, name)
        return text.lstrip("\ufeff"), had_bom


def _docx_text(data: bytes | None, name: str) -> str | None:
    if data is None:
        return None
    import docx  # python-docx, only needed for a DOCX without a plain-text twin

    try:
        return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)
    except Exception as err:  # python-docx raises zip, lxml and package errors for damaged parts
        raise QdaFormatError(f"source {name!r}: its DOCX cannot be read ({type(err).__name__}).") from err


def _normalise_with_map(raw: str) -> tuple[str, list[int] | None]:
    """NFC text with LF line ends and, for every position of ``raw``, its position in it."""
    if "\r" not in raw and unicodedata.is_normalized("NFC", raw):
        return raw, None
    pieces: list[str] = []
    positions = [0] * (len(raw) + 1)
    n = i = 0
    while i < len(raw):
        j = i + 1
        if raw[i] == "\r":
            j += 1 if j < len(raw) and raw[j] == "\n" else 0
            piece = "\n"
        else:
            while j < len(raw) and unicodedata.combining(raw[j]):
                j += 1
            piece = unicodedata.normalize("NFC", raw[i:j])
        for k in range(i, j):
            positions[k] = n
        pieces.append(piece)
        n += len(piece)
        i = j
    positions[len(raw)] = n
    return "".join(pieces), positions


def _readings(raw: str, had_bom: bool) -> tuple[str, list[tuple[str, object, int]]]:
    """The normalised text and the ways of reading offsets: (label, convert, size of the counted text)."""
    text, positions = _normalise_with_map(raw)

    def reading(label: str, base_positions: list[int] | None, size: int, shift: int = 0):  # type: ignore[no-untyped-def]
        def convert(p: int) -> int:
            p = max(p - shift, 0)
            return p if base_positions is None else base_positions[p]

        return label, convert, size + shift

    readings = [reading("the text as stored (CRLF = 2 code points)" if "\r" in raw else "the text as stored",
                        positions, len(raw))]
    if "\r" in raw:
        _, lf_positions = _normalise_with_map(raw.replace("\r\n", "\n").replace("\r", "\n"))
        readings.append(reading("text with LF line ends (CRLF = 1 code point)", lf_positions,
                                len(raw.replace("\r\n", "\n"))))
    if had_bom:
        readings.append(reading("the text as stored with its BOM", positions, len(raw), shift=1))
    return text, readings  # type: ignore[return-value]


def _fold_space(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _excerpt_matches(name: str, text: str) -> bool | None:
    """Whether a selection's name is the start of its text (None: the name is empty)."""
    name = _fold_space(name)
    for mark in ("…", "..."):
        if name.endswith(mark) and len(name) > len(mark):
            name = name[: -len(mark)].rstrip()
            break
    return _fold_space(text).startswith(name) if name else None


def read_qdc(path: Path | str) -> tuple[QdaCode, ...]:
    """Read the code tree of a REFI-QDA codebook (``.qdc``), or of a project (``.qdpx``).

    Raises
    ------
    QdaFormatError
        For a file that is not XML, has an unknown namespace, or a code without GUID or name.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        return read_qdpx(path).codes
    try:
        data = path.read_bytes()
    except OSError as err:
        raise QdaFormatError(f"{path}: cannot be read ({err.strerror}).") from err
    root = _parse_xml(data, str(path))
    _check_root(root, "CodeBook", CODEBOOK_NS, str(path))
    return tuple(_read_codes(root, CODEBOOK_NS, str(path)))


# --------------------------------------------------------------------------- mapping
def load_qda_mapping(path: Path | str, codebook: Codebook) -> QdaMapping:
    """Read and check a mapping file (YAML) against ``codebook``.

    The file has ``codes:`` (key: a code's GUID, ``Parent::Child`` name or name; value: a
    code id, ``{code: ID, direction: "-", facet: practice}``, or ``null`` to ignore the code),
    and optionally ``codebook_version:``, ``variables:`` (``municipality``/``respondent``/
    ``role``: the name of the case or source variable holding it) and ``speakers:``
    (speaker label: ``interviewer`` or ``respondent``).

    Raises
    ------
    QdaMappingError
        Naming the file and key of an unknown code id, direction, facet or field.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise QdaMappingError(f"{path}: cannot be read ({err.strerror}).") from err
    except yaml.YAMLError as err:
        raise QdaMappingError(f"{path}: invalid YAML ({err}).") from err
    if not isinstance(data, dict) or not isinstance(data.get("codes", {}), dict):
        raise QdaMappingError(f"{path}: expected a mapping with 'codes:' (QDA code -> codebook id). "
                              "Run 'codeer import-qdpx FILE --suggest-mapping' for a start.")
    version = data.get("codebook_version")
    if version and version != codebook.version:
        raise QdaMappingError(f"{path}: written for codebook {version!r}, but the project uses {codebook.version!r}.")
    codes: dict[str, MappedCode | None] = {}
    for key, value in (data.get("codes") or {}).items():
        where = f"{path}, code {str(key)!r}"
        if value is None:
            target = None
        else:
            raw = {"code": value} if isinstance(value, str) else value if isinstance(value, dict) else {}
            target = MappedCode(str(raw.get("code", "")), _opt(raw.get("direction")), _opt(raw.get("facet")))
            if target.code not in codebook or not codebook[target.code].codable:
                raise QdaMappingError(f"{where}: {target.code!r} is not a codable code of codebook {codebook.version!r}. "
                                      f"Run 'codeer codebook show --version {codebook.version}' for the ids, or use null.")
            if target.direction not in (None, "+", "-", "0"):
                raise QdaMappingError(f"{where}: direction {target.direction!r} must be '+', '-' or '0'.")
            if target.facet not in (None, "provision", "practice"):
                raise QdaMappingError(f"{where}: facet {target.facet!r} must be 'provision' or 'practice'.")
        codes[_mapping_key(str(key))] = target
    variables = {str(k): str(v) for k, v in (data.get("variables") or {}).items()}
    for key in variables:
        if key not in _VARIABLE_NAMES:
            raise QdaMappingError(f"{path}, variables: {key!r} is not one of {', '.join(_VARIABLE_NAMES)}.")
    speakers = {}
    for label, side in (data.get("speakers") or {}).items():
        if str(side).lower() not in ("interviewer", "respondent"):
            raise QdaMappingError(f"{path}, speakers: {label!r} must map to 'interviewer' or 'respondent'.")
        speakers[str(label)] = Speaker(str(side).lower())
    return QdaMapping(str(path), codes, variables, speakers)


def _opt(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def _mapping_key(key: str) -> str:
    return _norm_guid(key) if _GUID.match(key.strip()) else key.strip().casefold()


def resolve_codes(
    codes: Sequence[QdaCode], mapping: QdaMapping, codebook: Codebook
) -> tuple[dict[str, MappedCode | None], tuple[str, ...]]:
    """Targets of the QDA codes (by GUID; ``None`` = ignored) and the mapping keys that matched nothing.

    A code is looked up by GUID, then ``Parent::Child`` name, then plain name (when unique).
    Codes exported by codeer are recognised by their GUIDs without any mapping. Codes found
    in neither are absent from the result: they are unmapped.
    """
    own = {qda_guid("code", code.id): MappedCode(code.id) for code in codebook.codes if code.codable}
    names = Counter(code.name.casefold() for code in codes)
    targets: dict[str, MappedCode | None] = {}
    used: set[str] = set()
    for code in codes:
        keys = [code.guid, code.full_name.casefold()] + ([code.name.casefold()] if names[code.name.casefold()] == 1 else [])
        key = next((k for k in keys if k in mapping.codes), None)
        if key is not None:
            targets[code.guid] = mapping.codes[key]
            used.add(key)
        elif code.guid in own:
            targets[code.guid] = own[code.guid]
    return targets, tuple(key for key in mapping.codes if key not in used)


def suggest_mapping(codes: Sequence[QdaCode], codebook: Codebook, n_codings: Mapping[str, int] | None = None,
                    threshold: float = 0.35) -> list[MappingSuggestion]:
    """Propose a codebook id for every codable QDA code, by name and definition similarity.

    Names are compared with character n-grams (accents and case folded) against each code's
    id, Dutch and English label; descriptions against its definition and guidance. A code
    whose last name part is a direction word (``positief``, ``-``, ``belemmerend`` ...) is
    matched by its parent's name and gets that direction. Below ``threshold`` the proposal is
    ``None`` (ignore), with the best candidate named for the researcher to judge.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    candidates = [code for code in codebook.codes if code.codable]
    qda_codes = [code for code in codes if code.codable]
    if not candidates or not qda_codes:
        return []
    subjects = []
    by_path = {code.path: code for code in codes}
    for code in qda_codes:
        direction = _direction_word(code.path[-1]) if len(code.path) > 1 else None
        subject = by_path.get(code.path[:-1]) if direction else code
        name = (subject.path[-1] if subject else code.path[-2]) if direction else code.path[-1]
        subjects.append((code, direction, name, subject.description if subject else ""))
    names = [[_fold(code.id.replace("_", " ")), _fold(code.label_nl), _fold(code.label_en)] for code in candidates]
    flat = [name for triple in names for name in triple]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(flat + [_fold(s[2]) for s in subjects])
    similarity = (vectorizer.transform([_fold(s[2]) for s in subjects]) @ vectorizer.transform(flat).T).toarray()
    name_scores = similarity.reshape(len(subjects), len(candidates), 3).max(axis=2)
    definitions = [_fold(f"{code.label_nl} {code.definition_nl} {code.include}") for code in candidates]
    described = [_fold(s[3]) for s in subjects]
    definition_vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5)).fit(definitions + described)
    definition_scores = (definition_vectorizer.transform(described) @ definition_vectorizer.transform(definitions).T).toarray()
    full_names = Counter(code.full_name.casefold() for code in codes)
    suggestions = []
    for i, (code, direction, name, description) in enumerate(subjects):
        scores = []
        for j, candidate in enumerate(candidates):
            exact = _fold(name) in names[j]
            score = 1.0 if exact else float(name_scores[i][j])
            if description and not exact:
                score = 0.6 * score + 0.4 * float(definition_scores[i][j])
            scores.append((score, candidate.id))
        scores.sort(key=lambda item: -item[0])
        (best_score, best), (second_score, second) = scores[0], scores[1] if len(scores) > 1 else (0.0, None)
        key = code.full_name if full_names[code.full_name.casefold()] == 1 else code.guid
        suggestions.append(MappingSuggestion(
            key, code.full_name, best if best_score >= threshold else None, direction if best_score >= threshold else None,
            round(best_score, 2), best if best_score < threshold else second,
            round(best_score if best_score < threshold else second_score, 2), (n_codings or {}).get(code.guid, 0)))
    return suggestions


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).replace("_", " ").split())


def _direction_word(name: str) -> str | None:
    folded = _fold(name).strip("() ")
    return next((direction for direction, words in _DIRECTION_WORDS.items() if folded in words), None)


def propose_mapping(path: Path | str, codebook: Codebook) -> tuple[str, int, int]:
    """Read a ``.qdpx`` and propose a mapping file for it.

    Returns
    -------
    tuple
        The YAML text (see :func:`mapping_yaml`), the number of codes, and how many got a proposal.
    """
    project = read_qdpx(path)
    n_codings: Counter[str] = Counter(c.code for s in project.sources for sel in s.selections for c in sel.codings)
    suggestions = suggest_mapping(project.codes, codebook, n_codings)
    text = mapping_yaml(suggestions, codebook, Path(path).name)
    return text, len(suggestions), sum(1 for s in suggestions if s.code is not None)


def mapping_yaml(suggestions: Sequence[MappingSuggestion], codebook: Codebook, source: str = "") -> str:
    """The proposed mapping as a commented YAML file for the researcher to check and complete."""
    lines = [
        f"# Mapping proposed by 'codeer import-qdpx --suggest-mapping'{' for ' + source if source else ''}.",
        "# Check every line before importing: the proposals come from name and definition similarity.",
        "# Value: a code id, {code: ID, direction: '+'|'-'|'0', facet: provision|practice}, or null to ignore.",
        f"codebook_version: {codebook.version}",
        "variables:   # the case or source variables holding these (defaults shown)",
        "  municipality: municipality",
        "  respondent: respondent",
        "  role: role",
        "codes:",
    ]
    for s in suggestions:
        used = f"{s.n_codings} coding(s); " if s.n_codings else ""
        if s.code is None:
            lines.append(f"  # {used}no confident match (best: {s.alternative} {s.alternative_score:.2f}): map it or keep null")
            value = "null"
        else:
            runner_up = f"; next: {s.alternative} {s.alternative_score:.2f}" if s.alternative else ""
            lines.append(f"  # {used}score {s.score:.2f}{runner_up}")
            value = s.code if s.direction is None else f'{{code: {s.code}, direction: "{s.direction}"}}'
        if s.key != s.name:
            lines.append(f"  # GUID key: the name {s.name!r} is not unique")
        lines.append(f"  {json.dumps(s.key, ensure_ascii=False)}: {value}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- import
def place_selection(start: int, end: int, utterances: Sequence[Utterance]) -> list[tuple[Utterance, int]]:
    """The utterances a selection ``[start, end)`` codes, with the characters it shares with each.

    Every utterance the selection covers at least half of; if there is none, the one
    utterance it overlaps most; none when it overlaps no utterance at all.
    """
    overlaps = [(u, min(end, u.end) - max(start, u.start)) for u in utterances]
    overlaps = [(u, n) for u, n in overlaps if n > 0]
    covered = [(u, n) for u, n in overlaps if 2 * n >= u.end - u.start]
    if covered or not overlaps:
        return covered
    return [max(overlaps, key=lambda item: item[1])]


def _variable(values: Sequence[tuple[str, str]], field_name: str, mapping: QdaMapping) -> str:
    wanted = [mapping.variables[field_name]] if field_name in mapping.variables else list(_VARIABLE_NAMES[field_name])
    wanted = [w.casefold() for w in wanted]
    return next((value for name, value in values if name.casefold() in wanted and value), "")


def _source_metadata(source: QdaSource, project: QdaProject, mapping: QdaMapping) -> tuple[SourceMetadata, list[str]]:
    values = list(source.variables)
    for case in project.cases:
        if source.guid in case.sources:
            values.extend(case.variables)
    notes = []
    municipality = _variable(values, "municipality", mapping)
    respondent = _variable(values, "respondent", mapping)
    if respondent and not _CODE_LIKE.match(respondent):
        # A name, not a code: never store it.
        respondent = "X" + hashlib.sha1(respondent.casefold().encode()).hexdigest()[:4].upper()
        notes.append(f"source {source.name!r}: the respondent variable is not a code; stored as {respondent}.")
    role_value = _variable(values, "role", mapping).casefold()
    role = role_value if role_value in {r.value for r in Role} else next(
        (r.value for word, r in _ROLE_WORDS if word in role_value), "") if role_value else ""
    if role_value and not role:
        notes.append(f"source {source.name!r}: role {role_value!r} is not one of "
                     f"{', '.join(r.value for r in Role)}; the role is inferred instead.")
    if not municipality:
        notes.append(f"source {source.name!r}: no municipality variable; stored as 'onbekend'.")
    return SourceMetadata(municipality, respondent, role), notes


def _has_speaker_labels(text: str, aliases: Mapping[str, Speaker]) -> bool:
    known = INTERVIEWER_LABELS | RESPONDENT_LABELS | {alias.casefold() for alias in aliases}
    return sum(1 for match in _LABEL.finditer(text) if match.group(1).strip().casefold() in known) >= 2


def _is_document(text: str, role: str) -> bool:
    first = next((line for line in text.split("\n") if line.strip()), "")
    return role == Role.DOCUMENT.value or first.partition(":")[0].strip().casefold() in ("titel", "soort")


def transcript_from_source(source: QdaSource, source_key: str, archive: str, metadata: SourceMetadata,
                           speaker_aliases: Mapping[str, Speaker] | None = None) -> Transcript:
    """A :class:`Transcript` of a QDA text source.

    Text with speaker labels (``Onderzoeker:``/``Respondent:`` ...) and policy documents are
    parsed as :func:`pipeline.transcripts.parse_transcript` parses files, so a codeer export
    comes back with the same turns; any other text becomes one respondent (or, for role
    ``document``, document) turn per non-empty line.

    Raises
    ------
    TranscriptFormatError
        When labelled text cannot be parsed (for instance an unknown speaker label).
    """
    path = f"{archive}:{source_key}"
    aliases = dict(speaker_aliases or {})
    if _has_speaker_labels(source.text, aliases) or _is_document(source.text, metadata.role):
        return parse_transcript(source.text, path, source=source_key, metadata=metadata, speaker_aliases=aliases)
    role = Role(metadata.role) if metadata.role else Role.OTHER
    speaker = Speaker.DOCUMENT if role == Role.DOCUMENT else Speaker.RESPONDENT
    turns, position = [], 0
    for number, line in enumerate(source.text.split("\n")):
        stripped = line.strip()
        if stripped:
            start = position + line.index(stripped[0])
            turns.append(Turn(len(turns), speaker, "alinea", start, start + len(stripped), number + 1))
        position += len(line) + 1
    if not turns:
        raise TranscriptFormatError(path, "the source holds no text")
    respondent = metadata.respondent or "X" + hashlib.sha1(source_key.casefold().encode()).hexdigest()[:4].upper()
    return Transcript(source=source_key, path=path, content_hash=text_hash(source.text), text=source.text,
                      municipality=metadata.municipality or "onbekend", respondent=respondent, role=role,
                      turns=tuple(turns))


def _description_codings(description: str) -> dict[str, dict[str, str]]:
    return {m.group("code"): dict(re.findall(r"(\w+)=(\S+)", m.group("rest")))
            for m in _CODEER_LINE.finditer(description)}


def _datetime(value: str | None) -> str | None:
    """An ISO date-time as xsd:dateTime in UTC (``...Z``), or None when it is not one."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def import_qdpx(
    path: Path | str,
    store: Store,
    segmenter: Segmenter,
    codebook: Codebook,
    mapping: QdaMapping | None = None,
    *,
    run_id: int | None = None,
) -> QdaImportReport:
    """Import a REFI-QDA project: its text sources as transcripts, its codings as annotations.

    Sources are segmented as usual and stored (one transaction each, like ``codeer ingest``);
    selections become annotations (origin ``import``, annotator = the REFI user) on the
    utterances they cover (see :func:`place_selection`), in one transaction at the end.
    Codings by codeer's model users (``codeer model ...``) are not human codings and are
    skipped. Importing the same archive twice adds nothing.

    Parameters
    ----------
    path
        The ``.qdpx`` archive.
    store, segmenter, codebook
        Where to store, how to segment, and the codebook the mapping targets.
    mapping
        From :func:`load_qda_mapping`; without one, only codes exported by codeer are recognised.

    Returns
    -------
    QdaImportReport
        Counts, and every code that could not be mapped and every selection or source that
        could not be placed or read, with the reason.

    Raises
    ------
    QdaFormatError
        When the archive itself is corrupt or inconsistent (nothing is stored then).
    """
    project = read_qdpx(path)
    mapping = mapping or QdaMapping()
    targets, unused = resolve_codes(project.codes, mapping, codebook)
    codes_by_guid = {code.guid: code for code in project.codes}
    problems = list(project.skipped)
    notes = [f"mapping key {key!r} matches no code in the archive." for key in unused]
    statuses: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    # (utterance id, annotator) -> code -> (overlap, coding, created_at)
    chosen: dict[tuple[str, str], dict[str, tuple[int, Coding, str]]] = defaultdict(dict)
    context: dict[str, tuple[Utterance, Transcript]] = {}
    n_selections = n_placed = n_machine = n_ignored = 0
    key_counts = Counter(source.name for source in project.sources)
    for source in project.sources:
        key = source.name if key_counts[source.name] == 1 else f"{source.name} [{source.guid[:8]}]"
        notes.extend(source.notes)
        n_selections += len(source.selections)
        if source.n_source_codings:
            problems.append(f"source {key!r}: {source.n_source_codings} coding(s) of the whole source (no selection) "
                            "are left out; codeer codes utterances.")
        if not source.text.strip():
            problems.append(f"source {key!r}: empty text; left out with its {len(source.selections)} selection(s).")
            continue
        metadata, metadata_notes = _source_metadata(source, project, mapping)
        notes.extend(metadata_notes)
        try:
            transcript = transcript_from_source(source, key, Path(project.path).name, metadata, mapping.speakers)
        except TranscriptFormatError as err:
            statuses["failed"] += 1
            problems.append(f"source {key!r}: {err} Its {len(source.selections)} selection(s) are not placed.")
            continue
        status = store.save_transcript(transcript, segment_transcript(transcript, segmenter), run_id=run_id,
                                       segmenter=segmenter.name)
        statuses[status] += 1
        utterances = list(store.iter_utterances(transcript.transcript_id))
        for selection in source.selections:
            lines = _description_codings(selection.description)
            codings: list[tuple[str, Coding, str]] = []
            for qda_coding in selection.codings:
                user = qda_coding.user or selection.user or source.user
                annotator = project.users.get(user, "") if user else ""
                if annotator.startswith(MACHINE_USER_PREFIX):
                    n_machine += 1
                    continue
                if qda_coding.code not in targets:
                    unmapped[qda_coding.code] += 1
                    continue
                target = targets[qda_coding.code]
                if target is None:
                    n_ignored += 1
                    continue
                line = lines.get(target.code, {})
                direction = target.direction or line.get("direction", "0")
                facet = target.facet or _opt(line.get("facet"))
                try:
                    coding = Coding(target.code, direction, facet)
                except ValueError as err:
                    problems.append(f"source {key!r}, selection {selection.guid}: {err}; coding left out.")
                    continue
                created = _datetime(qda_coding.created_at or selection.created_at) or now()
                codings.append((annotator or "qda-import", coding, created))
            if not codings:
                continue
            label = f"source {key!r}, selection {selection.guid} [{selection.start}:{selection.end}] " \
                    f"({', '.join(sorted({c.code for _, c, _ in codings}))})"
            if selection.verified is False:
                problems.append(f"{label}: its text does not match its name {selection.name[:40]!r}; not imported.")
                continue
            placed = place_selection(selection.start, selection.end, utterances)
            if not placed:
                problems.append(f"{label}: lies outside every codable utterance (interviewer text or a heading); "
                                "not imported.")
                continue
            n_placed += 1
            for utterance, overlap in placed:
                context[utterance.utterance_id] = (utterance, transcript)
                for annotator, coding, created in codings:
                    held = chosen[(utterance.utterance_id, annotator)].get(coding.code)
                    if held is not None and (held[1].direction, held[1].facet) != (coding.direction, coding.facet):
                        problems.append(f"{label}: {annotator!r} coded {coding.code!r} on utterance "
                                        f"{utterance.utterance_id} twice with different directions; "
                                        "the selection covering more of it wins.")
                    if held is None or overlap > held[0]:
                        chosen[(utterance.utterance_id, annotator)][coding.code] = (overlap, coding, created)
    annotations = []
    for (utterance_id, annotator), by_code in chosen.items():
        utterance, transcript = context[utterance_id]
        annotations.append(Annotation(
            utterance_id=utterance_id, source_file=transcript.source, content_hash=transcript.content_hash,
            start=utterance.start, end=utterance.end, text=utterance.text,
            codings=tuple(coding for _, coding, _ in by_code.values()), annotator=annotator,
            created_at=min(created for _, _, created in by_code.values()), codebook_version=codebook.version,
            transcript_id=transcript.transcript_id, municipality=utterance.municipality,
            respondent=utterance.respondent, role=utterance.role.value, question=utterance.question, origin="import"))
    added, present = store.add_annotations(annotations)
    if n_machine:
        notes.append(f"{n_machine} coding(s) by codeer models were skipped: they are predictions, not human codings.")
    if n_ignored:
        notes.append(f"{n_ignored} coding(s) on codes mapped to null were ignored, as the mapping says.")
    unmapped_lines = tuple(
        f"code {codes_by_guid[guid].full_name!r} ({guid}): {n} coding(s) not imported, the code is not mapped. "
        "Map it in the mapping file, or set it to null to ignore it." for guid, n in sorted(unmapped.items()))
    logger.info("%s: %d source(s), %d coding(s) added", path, len(project.sources), added)
    return QdaImportReport(len(project.sources), dict(statuses), n_selections, n_placed, added, present,
                           unmapped_lines, tuple(problems), tuple(notes))


# --------------------------------------------------------------------------- export
def _code_description(code: Code) -> str:
    parts = [code.definition_nl] if code.definition_nl else []
    if code.include:
        parts.append(f"Wel coderen: {code.include}")
    if code.exclude:
        parts.append(f"Niet coderen: {code.exclude}")
    if code.definition_en:
        parts.append(f"English: {code.definition_en}")
    meta = {"id": code.id, "kind": code.kind, "rated": code.rated, "label_en": code.label_en}
    parts.append("[codeer] " + json.dumps(meta, ensure_ascii=False))
    return "\n\n".join(parts)


def _parse_code_description(text: str) -> dict[str, object]:
    parts = [part.strip() for part in text.split("\n\n") if part.strip()]
    meta: dict[str, object] = {}
    for part in parts:
        if part.startswith("[codeer] {"):
            try:
                meta.update(json.loads(part[len("[codeer] "):]))
            except ValueError:
                pass
    if not meta:
        return {"definition_nl": text.strip()}
    rest = []
    prefixes = {"Wel coderen: ": "include", "Niet coderen: ": "exclude", "English: ": "definition_en"}
    for part in parts:
        prefix = next((p for p in prefixes if part.startswith(p)), None)
        if prefix:
            meta[prefixes[prefix]] = part[len(prefix):]
        elif not part.startswith("[codeer] {"):
            rest.append(part)
    meta["definition_nl"] = "\n\n".join(rest)
    return meta


def _add_codes(parent: etree._Element, codebook: Codebook, ns: str) -> None:
    container = etree.SubElement(parent, _q("Codes", ns))

    def walk(element: etree._Element, parent_id: str | None) -> None:
        for code in codebook.children(parent_id):
            attributes = {"guid": qda_guid("code", code.id), "name": code.label_nl,
                          "isCodable": "true" if code.codable else "false"}
            if _RGB.match(code.color):
                attributes["color"] = code.color
            child = etree.SubElement(element, _q("Code", ns), attributes)
            etree.SubElement(child, _q("Description", ns)).text = _xml_text(_code_description(code))
            walk(child, code.id)

    walk(container, None)


def _xml_text(text: str) -> str:
    return "".join(c for c in text if c in "\t\n" or ord(c) >= 32)


def _excerpt(text: str, size: int = 60) -> str:
    text = _xml_text(" ".join(text.split()))
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def export_qdc(codebook: Codebook, out: Path | str) -> int:
    """Write ``codebook`` as a REFI-QDA codebook (``.qdc``); return the number of codes.

    Names are the Dutch labels; each description holds the definition, the include and
    exclude notes, the English definition and a ``[codeer]`` line with id, kind and rating
    flag, so :func:`codebook_from_qda` restores the codebook (examples are not carried).
    """
    root = etree.Element(_q("CodeBook", CODEBOOK_NS), nsmap={None: CODEBOOK_NS},
                         origin=f"codeer {__version__} ({codebook.version})")
    _add_codes(root, codebook, CODEBOOK_NS)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return len(codebook.codes)


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", _fold(name)).strip("_") or "code"
    return f"c_{slug}" if slug[0].isdigit() else slug


def codebook_from_qda(codes: Sequence[QdaCode], version: str, *, source: str = "", title: str = "") -> Codebook:
    """A codeer :class:`Codebook` from a QDA code tree (read with :func:`read_qdc`).

    Codes exported by codeer keep their ids, kinds, rating flags and definitions. Other
    codes get ids made from their names, kind ``group`` when not codable and ``context``
    otherwise, unrated: edit kinds and ratings in the YAML afterwards. Flattened
    ``Parent::Child`` names are nested under their parent where it exists.

    Raises
    ------
    CodebookError
        When the result is not a valid codebook (for instance an incentive outside a building block).
    """
    ids: dict[str, str] = {}
    metas: dict[str, dict[str, object]] = {}
    taken: set[str] = set()
    for code in codes:
        meta = _parse_code_description(code.description)
        base = str(meta.get("id") or _slug(code.path[-1]))
        code_id, n = base, 1
        while code_id in taken:
            n += 1
            code_id = f"{base}_{n}"
        taken.add(code_id)
        ids[code.guid], metas[code.guid] = code_id, meta
    by_path = {code.path: code.guid for code in codes}
    rows = []
    for code in codes:
        meta = metas[code.guid]
        parent = code.parent or (by_path.get(code.path[:-1]) if len(code.path) > 1 else None)
        label = code.path[-1] if "id" not in meta else code.name
        rows.append({
            "id": ids[code.guid], "parent": ids.get(parent) if parent else None,
            "kind": meta.get("kind") or ("context" if code.codable else "group"), "rated": bool(meta.get("rated")),
            "label_nl": label, "label_en": meta.get("label_en") or label, "color": code.color or "#888888",
            "definition_nl": meta.get("definition_nl", ""), "definition_en": meta.get("definition_en", ""),
            "include": meta.get("include", ""), "exclude": meta.get("exclude", ""),
        })
    return parse_codebook({"version": version, "title_nl": title or version, "title_en": title or version,
                           "codes": rows}, source or f"{version}.yaml")


def codebook_yaml(codebook: Codebook) -> str:
    """A codebook as YAML in the layout of ``annotations/codebook/*.yaml``."""
    codes = []
    for code in codebook.codes:
        row: dict[str, object] = {"id": code.id, "parent": code.parent, "kind": code.kind, "rated": code.rated,
                                  "label_nl": code.label_nl, "label_en": code.label_en, "color": code.color}
        for key in ("definition_nl", "definition_en", "include", "exclude"):
            if getattr(code, key):
                row[key] = getattr(code, key)
        if code.examples:
            row["examples"] = [{"text": e.text, "direction": e.direction} for e in code.examples]
        codes.append(row)
    data = {"version": codebook.version, "title_nl": codebook.title_nl, "title_en": codebook.title_en,
            "description": codebook.description, "codes": codes}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def export_qdpx(
    store: Store,
    codebook: Codebook,
    out: Path | str,
    *,
    include: str = "all",
    model_ids: Sequence[str] | None = None,
    project_name: str = "codeer",
) -> QdaExportReport:
    """Export the active transcripts, the codebook and the codings as a REFI-QDA project.

    Sources go to ``sources/<GUID>.txt`` as UTF-8 with LF line ends; cases are the
    municipalities, with ``municipality``, ``respondent`` and ``role`` as variables (on the
    sources too). Human codings are filed under their annotators, machine codings
    (predictions with ``predicted`` set) under one user per model, ``codeer model <id>``,
    with probability and direction in the selection's description. One selection per
    utterance and user, exactly on the utterance's offsets, each checked against the text.

    Parameters
    ----------
    include
        ``reviewed``: human codings only (seed, imported and review decisions);
        ``predicted``: machine codings only; ``all`` (default): both.
    model_ids
        The models whose predictions to export (default: every model with predictions).

    Raises
    ------
    QdaExportError
        When a stored utterance does not match its transcript text at its offsets.
    """
    if include not in INCLUDE_CHOICES:
        raise ValueError(f"include must be one of {', '.join(INCLUDE_CHOICES)}, got {include!r}")
    problems: list[str] = []
    human: dict[str, dict[str, dict[str, StoredAnnotation]]] = defaultdict(lambda: defaultdict(dict))
    if include in ("reviewed", "all"):
        for row in store.list_annotations():
            if row.code not in codebook or not codebook[row.code].codable:
                problems.append(f"annotation {row.code!r} by {row.annotator!r} on utterance {row.utterance_id}: "
                                f"not a code of codebook {codebook.version!r}; left out.")
                continue
            held = human[row.utterance_id][row.annotator].get(row.code)
            if held is None or row.created_at >= held.created_at:
                human[row.utterance_id][row.annotator][row.code] = row
    machine: dict[str, dict[str, list[Prediction]]] = defaultdict(lambda: defaultdict(list))
    if include in ("predicted", "all"):
        for model_id in model_ids or store.prediction_model_ids():
            for prediction in store.iter_predictions(model_id, only_predicted=True):
                if prediction.code in codebook:
                    machine[prediction.utterance_id][MACHINE_USER_PREFIX + model_id].append(prediction)
    users = sorted({CODEER_USER} | {a for by_user in human.values() for a in by_user}
                   | {m for by_user in machine.values() for m in by_user})
    user_guids = {name: qda_guid("user", name) for name in users}

    root = etree.Element(_q("Project"), nsmap={None: PROJECT_NS}, name=project_name,
                         origin=f"codeer {__version__}", creatingUserGUID=user_guids[CODEER_USER])
    users_element = etree.SubElement(root, _q("Users"))
    for name in users:
        etree.SubElement(users_element, _q("User"), guid=user_guids[name], name=name)
    _add_codes(etree.SubElement(root, _q("CodeBook")), codebook, PROJECT_NS)
    transcripts = store.list_transcripts()
    variables = {name: qda_guid("variable", name) for name in _VARIABLE_NAMES}
    sources_element = cases_element = None
    if transcripts:
        variables_element = etree.SubElement(root, _q("Variables"))
        for name, guid in variables.items():
            etree.SubElement(variables_element, _q("Variable"), guid=guid, name=name, typeOfVariable="Text")
        cases_element = etree.SubElement(root, _q("Cases"))
        by_municipality: dict[str, list[str]] = defaultdict(list)
        for t in transcripts:
            by_municipality[t.municipality].append(qda_guid("source", t.source))
        for municipality in sorted(by_municipality):
            case = etree.SubElement(cases_element, _q("Case"), guid=qda_guid("case", municipality), name=municipality)
            _variable_value(case, variables["municipality"], municipality)
            for guid in by_municipality[municipality]:
                etree.SubElement(case, _q("SourceRef"), targetGUID=guid)
        sources_element = etree.SubElement(root, _q("Sources"))
    files: dict[str, bytes] = {}
    n_selections = n_human = n_machine = 0
    for t in transcripts:
        text, _, _ = store.transcript_text(t.transcript_id)
        guid = qda_guid("source", t.source)
        source = etree.SubElement(sources_element, _q("TextSource"), guid=guid, name=t.source,
                                  plainTextPath=f"internal://{guid}.txt", creatingUser=user_guids[CODEER_USER])
        for utterance in store.iter_utterances(t.transcript_id):
            if text[utterance.start:utterance.end] != utterance.text or "\r" in utterance.text:
                raise QdaExportError(
                    f"source {t.source!r}, utterance {utterance.utterance_id} [{utterance.start}:{utterance.end}]: "
                    "the stored utterance differs from the transcript text at its offsets, so its codings would "
                    "land on other words. Re-ingest the source and export again.")
            for annotator, by_code in sorted(human.get(utterance.utterance_id, {}).items()):
                rows = [by_code[code] for code in sorted(by_code)]
                lines = [f"[codeer] {r.code} direction={r.direction}" + (f" facet={r.facet}" if r.facet else "")
                         for r in rows]
                _add_selection(source, utterance, annotator, user_guids[annotator], lines,
                               [(r.code, r.created_at) for r in rows])
                n_selections, n_human = n_selections + 1, n_human + len(rows)
            for user, predictions in sorted(machine.get(utterance.utterance_id, {}).items()):
                predictions = sorted(predictions, key=lambda p: p.code)
                lines = [_prediction_line(p) for p in predictions]
                _add_selection(source, utterance, user, user_guids[user], lines, [(p.code, None) for p in predictions])
                n_selections, n_machine = n_selections + 1, n_machine + len(predictions)
        for name in ("municipality", "respondent", "role"):
            _variable_value(source, variables[name], getattr(t, name))
        files[f"sources/{guid}.txt"] = text.encode("utf-8")
    _write_archive(Path(out), etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True), files)
    return QdaExportReport(str(out), len(transcripts), n_selections, n_human, n_machine, tuple(users), tuple(problems))


def _prediction_line(prediction: Prediction) -> str:
    line = f"[codeer] {prediction.code} p={prediction.probability:.3f}"
    if prediction.direction:
        line += f" direction={prediction.direction}"
    if prediction.direction_p is not None:
        line += f" direction_p={prediction.direction_p:.3f}"
    if prediction.facet:
        line += f" facet={prediction.facet}"
    return line + " model=" + "_".join(prediction.model_id.split())


def _variable_value(parent: etree._Element, variable_guid: str, value: str) -> None:
    element = etree.SubElement(parent, _q("VariableValue"))
    etree.SubElement(element, _q("VariableRef"), targetGUID=variable_guid)
    etree.SubElement(element, _q("TextValue")).text = _xml_text(str(value))


def _add_selection(source: etree._Element, utterance: Utterance, user: str, user_guid: str, lines: list[str],
                   codings: Iterable[tuple[str, str | None]]) -> None:
    key = f"{utterance.utterance_id}:{user}"
    attributes = {"guid": qda_guid("selection", key), "name": _excerpt(utterance.text),
                  "startPosition": str(utterance.start), "endPosition": str(utterance.end), "creatingUser": user_guid}
    selection = etree.SubElement(source, _q("PlainTextSelection"), attributes)
    etree.SubElement(selection, _q("Description")).text = "\n".join(lines)
    for code, created in codings:
        coding = etree.SubElement(selection, _q("Coding"), guid=qda_guid("coding", f"{key}:{code}"), creatingUser=user_guid)
        if _datetime(created):
            coding.set("creationDateTime", _datetime(created))
        etree.SubElement(coding, _q("CodeRef"), targetGUID=qda_guid("code", code))


def _write_archive(out: Path, project: bytes, files: Mapping[str, bytes]) -> None:
    """Write the ZIP atomically, with fixed timestamps so the same data gives the same bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, data in [("project.qde", project), *sorted(files.items())]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    partial.replace(out)
