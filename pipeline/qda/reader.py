"""Reading REFI-QDA files: the records, the ``.qdpx`` archive and ``.qdc`` codebooks, and offsets.

Text selections count Unicode code points from 0, end exclusive, over the plain text as
stored in the archive. Here the text is normalised (NFC, LF) and every offset is mapped onto
the normalised text. Where the stored text has CRLF line ends (or a BOM), tools disagree on
whether they count; offsets are read as counted over the stored text unless the selections'
names (ATLAS.ti and others name a selection by its first words) match the text better when
counted over LF text, and the source's notes say which reading was used.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from lxml import etree

from pipeline.config import InputLimits
from pipeline.corpus import decode_bytes
from pipeline.corpus.archives import ZIP_ERRORS, LimitedArchive, check_archive, check_file_size
from pipeline.errors import InputTooLargeError, QdaFormatError
from pipeline.qda.archive import (
    _RGB,
    CODEBOOK_NS,
    PROJECT_NS,
    QdaCase,
    QdaCode,
    QdaCoding,
    QdaProject,
    QdaSelection,
    QdaSource,
    _check_root,
    _guid,
    _norm_guid,
    _parse_xml,
    _q,
    _read_member,
    _where,
)


# the five entities XML predefines; any other entity reference is not expanded (issue 20)
_PREDEFINED_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def read_qdpx(path: Path | str, limits: InputLimits | None = None) -> QdaProject:
    """Read a REFI-QDA project archive: users, code tree, text sources, cases and selections.

    Parameters
    ----------
    path
        The ``.qdpx`` file.
    limits
        Limits on the archive (default :class:`~pipeline.config.InputLimits`): checked on its
        table of contents before anything is unpacked, and while each member is read.

    Returns
    -------
    QdaProject
        Codes, sources with normalised text and selection offsets mapped onto it, cases.

    Raises
    ------
    QdaFormatError
        For a corrupt archive, a missing ``project.qde``, an unknown namespace, a selection
        outside its text or a reference to a GUID that is not in the project, naming the element.
    InputTooLargeError
        For an archive over ``limits`` (a zip bomb among them).
    """
    path = Path(path)
    limits = limits or InputLimits()
    try:
        check_file_size(path, limits.max_file_bytes, "a project")
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise QdaFormatError(f"{path}: no such file.") from None
    except InputTooLargeError:
        raise
    except ZIP_ERRORS as err:
        raise QdaFormatError(f"{path}: not a ZIP archive, so not a .qdpx project (corrupt or incomplete copy?). "
                             "Export the project again as REFI-QDA (.qdpx).") from err
    with archive:
        limited = LimitedArchive(archive, path, limits)
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        qde = [name for name in names if name.lower() == "project.qde"]
        if not qde:
            found = ", ".join(sorted(names)[:5]) or "nothing"
            raise QdaFormatError(f"{path}: no project.qde at the root of the archive (found: {found}). "
                                 "A .qdpx holds project.qde and a sources/ folder; export the project again.")
        root = _parse_xml(_read_member(limited, qde[0], path), f"{path}: project.qde")
        _check_root(root, "Project", PROJECT_NS, f"{path}: project.qde")
        members = {name.split("/", 1)[1].lower(): name for name in names
                   if "/" in name and name.split("/", 1)[0].lower() == "sources"}
        return _project_from_xml(root, path, limited, members)


def _expand_entities(root: etree._Element, where: str) -> dict[str, str]:
    """Expand references to the predefined entities left in the tree; for any other entity
    reference (its text would be cut off where it stands), a note per source GUID that holds
    one. Raises :class:`QdaFormatError` for one outside a source (issue 20)."""
    notes: dict[str, str] = {}
    for entity in list(root.iter(etree.Entity)):
        name, parent = entity.name, entity.getparent()
        if name in _PREDEFINED_ENTITIES and parent is not None:
            text = _PREDEFINED_ENTITIES[name] + (entity.tail or "")
            previous = entity.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + text
            else:
                parent.text = (parent.text or "") + text
            parent.remove(entity)
            continue
        source = next((a for a in entity.iterancestors()
                       if (up := a.getparent()) is not None and etree.QName(up).localname == "Sources"), None)
        problem = (f"the entity reference &{name}; (line {entity.sourceline}), which codeer does not expand: "
                   "the text after it would be lost")
        if source is None:
            raise QdaFormatError(f"{where}: {problem}. Replace the entity with its text and export again.")
        guid = source.get("guid") or ""
        notes.setdefault(guid, f"{etree.QName(source).localname} {source.get('name') or guid!r}: its text holds "
                               f"{problem}; the source is left out. Replace the entity with its text and export again.")
    return notes


def _project_from_xml(root: etree._Element, path: Path, archive: LimitedArchive, members: dict[str, str]) -> QdaProject:
    where = f"{path}: project.qde"
    entity_notes = _expand_entities(root, where)
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
        if element.get("guid", "") in entity_notes:
            skipped.append(entity_notes[element.get("guid", "")])
            continue
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


def _read_text_source(
    element: etree._Element, outer: etree._Element, where: str, archive: LimitedArchive, path: Path,
    members: Mapping[str, str], code_guids: set[str], user_of: Callable[[etree._Element, str], str | None],
    values_of: Callable[[etree._Element], tuple[tuple[str, str], ...]],
) -> QdaSource | str:
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
        raw, had_bom = _docx_text(_source_bytes(rich, element, where, archive, path, members), name,
                                  archive.limits), False
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
        codings: list[QdaCoding] = []
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
    for selection, start, end, selection_codings in raw_selections:
        if not _fits(start, end, size):
            raise QdaFormatError(
                f"{_where(selection, where)} in source {name!r}: positions {start}-{end} lie outside its text "
                f"({size} characters). The archive is inconsistent; export it again.")
        a, b = convert(start), convert(end)
        selections.append(QdaSelection(_guid(selection, where), a, b, selection.get("name", ""),
                                       (selection.findtext(_q("Description")) or "").strip(), selection_codings,
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


def _source_bytes(uri: str, element: etree._Element, where: str, archive: LimitedArchive, path: Path,
                  members: Mapping[str, str]) -> bytes | None:
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


def _docx_text(data: bytes | None, name: str, limits: InputLimits) -> str | None:
    if data is None:
        return None
    import docx  # python-docx, only needed for a DOCX without a plain-text twin

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:  # a zip in the zip: its own bomb check
            check_archive(inner, f"source {name!r}", limits)
        return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)
    except InputTooLargeError:
        raise
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


_Reading = tuple[str, Callable[[int], int], int]  # label, offset -> normalised offset, size of the counted text


def _readings(raw: str, had_bom: bool) -> tuple[str, list[_Reading]]:
    """The normalised text and the ways a tool may have counted offsets over ``raw``."""
    text, positions = _normalise_with_map(raw)

    def reading(label: str, base_positions: list[int] | None, size: int, shift: int = 0) -> _Reading:
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
    return text, readings


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
        check_file_size(path, InputLimits().max_file_bytes, "a codebook")
        data = path.read_bytes()
    except OSError as err:
        raise QdaFormatError(f"{path}: cannot be read ({err.strerror}).") from err
    root = _parse_xml(data, str(path))
    _check_root(root, "CodeBook", CODEBOOK_NS, str(path))
    return tuple(_read_codes(root, CODEBOOK_NS, str(path)))
