"""REFI-QDA codebooks (``.qdc``): codeer's codebook out, a QDA program's code tree in.

Codes are named by their Dutch labels; each description holds the definition, the include and
exclude notes, the English definition and a ``[codeer]`` line with id, kind and rating flag,
so a codebook exported by codeer comes back whole (its examples excepted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from lxml import etree

from pipeline import __version__
from pipeline.codebook import Code, Codebook, parse_codebook
from pipeline.qda.archive import _RGB, CODEBOOK_NS, QdaCode, _q, _xml_text, qda_guid
from pipeline.qda.directions import (
    DIRECTION_CODE_GUIDS,
    DIRECTION_CODE_NAMES,
    DIRECTION_FOLDER_GUID,
    DIRECTION_FOLDER_NAME,
    direction_code_description,
)
from pipeline.qda.mapping import _fold


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
    # Direction codes beside the codebook, so researchers code direction as the thesis did (issue 18).
    folder = etree.SubElement(container, _q("Code", ns), guid=DIRECTION_FOLDER_GUID, name=DIRECTION_FOLDER_NAME,
                              isCodable="false")
    etree.SubElement(folder, _q("Description", ns)).text = (
        "Richting van het bewijs: zet Positief, Negatief of Gemengd op dezelfde selectie als de prikkel.")
    for direction, guid in DIRECTION_CODE_GUIDS.items():
        child = etree.SubElement(folder, _q("Code", ns), guid=guid, name=DIRECTION_CODE_NAMES[direction],
                                 isCodable="true")
        etree.SubElement(child, _q("Description", ns)).text = direction_code_description(direction)


def export_qdc(codebook: Codebook, out: Path | str) -> int:
    """Write ``codebook`` as a REFI-QDA codebook (``.qdc``); return the number of codes.

    Names are the Dutch labels; each description holds the definition, the include and
    exclude notes, the English definition and a ``[codeer]`` line with id, kind and rating
    flag, so :func:`codebook_from_qda` restores the codebook (examples are not carried). A
    folder ``Richting`` with the direction codes ``Positief``, ``Negatief`` and ``Gemengd``
    follows the codebook.
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
    own_directions = {DIRECTION_FOLDER_GUID, *DIRECTION_CODE_GUIDS.values()}
    codes = [code for code in codes if code.guid not in own_directions]  # codeer's direction codes are no topics
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
    """A codebook as YAML in the layout of ``pipeline/resources/annotations/codebook/*.yaml``."""
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
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
