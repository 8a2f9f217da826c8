"""The codebook: code ids, hierarchy, definitions and the mapping between versions.

Codebooks live as YAML in ``pipeline/resources/annotations/codebook/<version>.yaml``; ``mapping.yaml`` declares
how the codes of one version derive from the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import CodebookError, UnknownCodeError
from pipeline.resources import codebook_dir

DEFAULT_VERSION = "garvin2008"
KINDS = ("building_block", "incentive", "group", "context", "flag")


@dataclass(frozen=True, slots=True)
class Example:
    """An example fragment of a code, with its direction."""

    text: str
    direction: str = "+"


@dataclass(frozen=True, slots=True)
class Code:
    """One code of the codebook."""

    id: str
    parent: str | None
    kind: str
    rated: bool
    label_nl: str
    label_en: str
    definition_nl: str = ""
    definition_en: str = ""
    include: str = ""
    exclude: str = ""
    examples: tuple[Example, ...] = ()
    color: str = "#888888"

    @property
    def codable(self) -> bool:
        """Whether fragments are coded with this code directly (groups are folders only)."""
        return self.kind in ("incentive", "context", "flag")

    def description(self) -> str:
        """Definition and guidance as one Dutch text (for zero-shot similarity and exports)."""
        return " ".join(part for part in (self.label_nl + ".", self.definition_nl, self.include) if part)


@dataclass(frozen=True)
class Codebook:
    """A validated codebook version."""

    version: str
    codes: tuple[Code, ...]
    path: str = ""
    title_nl: str = ""
    title_en: str = ""
    description: str = ""
    rating_scales: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @cached_property
    def by_id(self) -> dict[str, Code]:
        """Codes by id."""
        return {code.id: code for code in self.codes}

    def __getitem__(self, code_id: str) -> Code:
        try:
            return self.by_id[code_id]
        except KeyError:
            raise UnknownCodeError(
                f"unknown code {code_id!r} in codebook version {self.version!r}; "
                f"run 'codeer codebook show --version {self.version}' for the valid ids"
            ) from None

    def __contains__(self, code_id: object) -> bool:
        return code_id in self.by_id

    @property
    def incentives(self) -> tuple[str, ...]:
        """Ids of the rated incentives, in codebook order."""
        return tuple(code.id for code in self.codes if code.kind == "incentive")

    @property
    def context_codes(self) -> tuple[str, ...]:
        """Ids of the context codes, in codebook order."""
        return tuple(code.id for code in self.codes if code.kind == "context")

    @property
    def codable(self) -> tuple[str, ...]:
        """Ids of every code a fragment can carry (incentives, context codes, flags)."""
        return tuple(code.id for code in self.codes if code.codable)

    def children(self, code_id: str | None) -> tuple[Code, ...]:
        """Direct children of a code (``None`` for the roots), in codebook order."""
        return tuple(code for code in self.codes if code.parent == code_id)

    def ancestors(self, code_id: str) -> tuple[str, ...]:
        """Parent, grandparent, ... of a code."""
        chain, parent = [], self[code_id].parent
        while parent:
            chain.append(parent)
            parent = self[parent].parent
        return tuple(chain)

    def building_block(self, code_id: str) -> str | None:
        """The building block an incentive belongs to, or None."""
        for ancestor in self.ancestors(code_id):
            if self[ancestor].kind == "building_block":
                return ancestor
        return None

    def root(self, code_id: str) -> Code:
        """The top of a code's branch: the building block of an incentive, the top group of a
        context code (``effecten``, ``verschillen``, ...), or the code itself when it has no parent."""
        ancestors = self.ancestors(code_id)
        return self[ancestors[-1]] if ancestors else self[code_id]

    def grouped(self, code_ids: Sequence[str]) -> list[tuple[Code, tuple[str, ...]]]:
        """``code_ids`` grouped by :meth:`root`, groups in codebook order, codes in the given order.

        What the review page lists under one heading per building block (or context group).
        """
        groups: dict[str, list[str]] = {}
        for code_id in code_ids:
            groups.setdefault(self.root(code_id).id, []).append(code_id)
        order = {code.id: i for i, code in enumerate(self.codes)}
        return [(self[root], tuple(ids)) for root, ids in sorted(groups.items(), key=lambda kv: order[kv[0]])]

    def tree_lines(self) -> list[str]:
        """The code tree as indented lines, for ``codeer codebook show``."""
        lines: list[str] = []

        def walk(parent: str | None, depth: int) -> None:
            for code in self.children(parent):
                mark = " *" if code.rated else ""
                lines.append(f"{'  ' * depth}{code.id}  ({code.label_nl} / {code.label_en}; {code.kind}){mark}")
                walk(code.id, depth + 1)

        walk(None, 0)
        return lines


def _code_from_mapping(raw: dict[str, Any], path: Path, index: int) -> Code:
    required = ("id", "kind", "label_nl", "label_en")
    for key in required:
        if not raw.get(key):
            raise CodebookError(path, f"code #{index + 1} has no {key!r}", raw.get("id"), f"Add '{key}:' to the code.")
    if raw["kind"] not in KINDS:
        raise CodebookError(path, f"kind {raw['kind']!r} is not one of {', '.join(KINDS)}", raw["id"])
    examples = []
    for example in raw.get("examples") or ():
        if isinstance(example, str):
            examples.append(Example(example))
        else:
            direction = str(example.get("direction", "+"))
            if direction not in ("+", "-", "0"):
                raise CodebookError(path, f"example direction {direction!r} is not +, - or 0", raw["id"])
            examples.append(Example(str(example["text"]), direction))
    return Code(
        id=str(raw["id"]),
        parent=raw.get("parent"),
        kind=raw["kind"],
        rated=bool(raw.get("rated", False)),
        label_nl=str(raw["label_nl"]),
        label_en=str(raw["label_en"]),
        definition_nl=str(raw.get("definition_nl", "")).strip(),
        definition_en=str(raw.get("definition_en", "")).strip(),
        include=str(raw.get("include", "")).strip(),
        exclude=str(raw.get("exclude", "")).strip(),
        examples=tuple(examples),
        color=str(raw.get("color", "#888888")),
    )


def parse_codebook(data: Any, path: Path | str) -> Codebook:
    """Build and validate a :class:`Codebook` from parsed YAML.

    Checks: unique ids, parents exist, no cycles, incentives sit under a building block.
    """
    path = Path(path)
    if not isinstance(data, dict) or "codes" not in data or "version" not in data:
        raise CodebookError(path, "not a codebook", fix="A codebook has 'version:' and a list 'codes:'.")
    codes = [_code_from_mapping(raw, path, i) for i, raw in enumerate(data["codes"] or [])]
    seen: set[str] = set()
    for code in codes:
        if code.id in seen:
            raise CodebookError(path, "duplicate code id", code.id, "Give each code a unique id.")
        seen.add(code.id)
    for code in codes:
        if code.parent is not None and code.parent not in seen:
            raise CodebookError(path, f"parent {code.parent!r} does not exist", code.id,
                                "Add the parent code or correct the 'parent:' id.")
    parents = {code.id: code.parent for code in codes}
    for code in codes:
        visited, current = {code.id}, code.parent
        while current is not None:
            if current in visited:
                raise CodebookError(path, f"the parent chain loops back through {current!r}", code.id,
                                    "Break the cycle by correcting a 'parent:'.")
            visited.add(current)
            current = parents[current]
    codebook = Codebook(
        version=str(data["version"]),
        codes=tuple(codes),
        path=str(path),
        title_nl=str(data.get("title_nl", "")),
        title_en=str(data.get("title_en", "")),
        description=str(data.get("description", "")).strip(),
        rating_scales={k: tuple(v) for k, v in (data.get("rating_scales") or {}).items()},
    )
    for code in codes:
        if code.kind == "incentive" and codebook.building_block(code.id) is None:
            raise CodebookError(path, "an incentive must sit under a building block", code.id,
                                "Set 'parent:' to one of the building blocks.")
    return codebook


def load_codebook_file(path: Path | str) -> Codebook:
    """Load and validate one codebook YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CodebookError(path, "no such file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CodebookError(path, f"invalid YAML{where}", fix="Fix the YAML syntax.") from err
    return parse_codebook(data, path)


def load_codebook(version: str = DEFAULT_VERSION, directory: Path | None = None) -> Codebook:
    """Load a shipped codebook version (``garvin2008`` or ``scriptie2017``)."""
    directory = directory or codebook_dir()
    path = directory / f"{version}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in directory.glob("*.yaml") if p.stem != "mapping")
        raise CodebookError(path, f"unknown codebook version {version!r}",
                            fix=f"Use one of: {', '.join(available)}.")
    return load_codebook_file(path)


@dataclass(frozen=True)
class VersionMapping:
    """How each code of version ``target`` derives from codes of version ``source``."""

    source: str
    target: str
    derives_from: dict[str, tuple[str, ...]]

    def to_source(self, code_id: str) -> tuple[str, ...]:
        """The source-version codes a target code collapses into."""
        return self.derives_from.get(code_id, ())


def load_mapping(source: Codebook, target: Codebook, path: Path | None = None) -> VersionMapping:
    """Load ``mapping.yaml`` and check it is complete for both versions."""
    path = path or Path(source.path).with_name("mapping.yaml")
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if data.get("from") != source.version or data.get("to") != target.version:
        raise CodebookError(path, f"maps {data.get('from')!r} to {data.get('to')!r}, "
                            f"not {source.version!r} to {target.version!r}")
    raw = data.get("codes") or {}
    derives = {str(k): tuple(v or ()) for k, v in raw.items()}
    for code_id in target.by_id:
        if code_id not in derives:
            raise CodebookError(path, f"{target.version} code missing from the mapping", code_id,
                                f"Add '{code_id}: [...]' listing the {source.version} codes it derives from.")
    for code_id in derives:
        if code_id not in target:
            raise CodebookError(path, f"not a {target.version} code", code_id, "Remove it or correct the id.")
    used = {c for sources in derives.values() for c in sources}
    for code_id in used - set(source.by_id):
        raise CodebookError(path, f"not a {source.version} code", code_id, "Correct the id.")
    for code_id in set(source.by_id) - used:
        raise CodebookError(path, f"{source.version} code not mapped to any {target.version} code", code_id,
                            "List it under the code(s) it became.")
    return VersionMapping(source.version, target.version, derives)
