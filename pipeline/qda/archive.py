"""REFI-QDA records and the XML pieces the reader and the writers share: namespaces, GUIDs,
the records of a ``.qdpx`` project and ``.qdc`` codebook, dates and text."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from pipeline.corpus.archives import ZIP_ERRORS, LimitedArchive
from pipeline.errors import InputTooLargeError, QdaFormatError

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
MACHINE_USER_PREFIX = "codeer model "
CODEER_USER = "codeer"
# Fixed for good: every GUID of every export derives from it.
_GUID_NAMESPACE = uuid.UUID("6f1d3c52-7a0e-5b8e-9d43-2c1a8e0b7f11")
_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")
_RGB = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")
_XML_PARSER = {"resolve_entities": False, "no_network": True, "load_dtd": False, "remove_comments": True}


def qda_guid(kind: str, key: str) -> str:
    """The stable GUID of a codeer object: the same ``kind`` and ``key`` give the same GUID in every export."""
    return str(uuid.uuid5(_GUID_NAMESPACE, f"{kind}:{key}")).upper()


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


def _read_member(archive: LimitedArchive, name: str, path: Path) -> bytes:
    """A member's bytes, read in chunks within the archive's limits (issue 20)."""
    try:
        return archive.read(name)
    except InputTooLargeError:
        raise
    except ZIP_ERRORS as err:
        raise QdaFormatError(f"{path}: the archive member {name!r} is corrupt ({err}). Export the project again.") from err


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


def _xml_text(text: str) -> str:
    return "".join(c for c in text if c in "\t\n" or ord(c) >= 32)
