"""Converting annotations between codebook versions (issue 18).

``mapping.yaml`` beside the codebooks says which codes of the newer version derive from which
codes of the older one. Converting follows it in either direction:

- a code that became exactly one code (or came from exactly one) is renamed;
- a code that was split (``tijd_evaluatie`` into ``ervaren_tijd`` and ``evaluatiemomenten``)
  or merged from several, or that has no counterpart (``betrokkenheid_college``), cannot be
  converted without a human decision: it is reported, unless ``choices`` names the code to use;
- when two codes of one annotation become the same code, they are merged (one direction if
  they agree, ``0`` otherwise) and the merge is reported.

An annotation none of whose codings could be converted is left out rather than kept empty:
an empty annotation means "this fragment has no code", which is not what the coder said.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.codebook import Codebook, load_codebook, load_mapping
from pipeline.corpus.annotations import annotation_files, annotation_record, read_annotations
from pipeline.errors import AnnotationError, CodebookError
from pipeline.records import Annotation, Coding


@dataclass(frozen=True)
class CodebookMigration:
    """Outcome of :func:`migrate_annotations`: the converted annotations and what was not converted.

    ``unmapped`` holds one line per code that could not be converted, with its count and why;
    ``merged`` one line per pair of codes merged into one; ``n_left_out`` counts annotations
    none of whose codings could be converted.
    """

    source: str
    target: str
    annotations: tuple[Annotation, ...]
    n_codings: int
    n_converted: int
    unmapped: tuple[str, ...]
    merged: tuple[str, ...]
    n_left_out: int

    @property
    def complete(self) -> bool:
        """True when every coding was converted."""
        return not self.unmapped


def code_translation(source: Codebook, target: Codebook, mapping_path: Path | None = None
                     ) -> dict[str, tuple[str, ...]]:
    """For every code of ``source``, the ``target`` codes it may become (by ``mapping.yaml``).

    One entry: a plain rename; several: a split (or, backwards, a merge); none: no counterpart.

    Raises
    ------
    CodebookError
        When the mapping file maps neither ``source`` to ``target`` nor back, or is incomplete.
    """
    try:
        forward = load_mapping(source, target, mapping_path)
    except CodebookError as forward_error:
        try:
            backward = load_mapping(target, source, mapping_path)
        except CodebookError:
            raise forward_error from None
        return {code: backward.to_source(code) for code in source.by_id}
    result: dict[str, list[str]] = {code: [] for code in source.by_id}
    for target_code, source_codes in forward.derives_from.items():
        for code in source_codes:
            result[code].append(target_code)
    return {code: tuple(codes) for code, codes in result.items()}


def migrate_annotations(annotations: Sequence[Annotation], source: Codebook, target: Codebook, *,
                        choices: Mapping[str, str] | None = None,
                        mapping_path: Path | None = None) -> CodebookMigration:
    """Convert annotations of codebook ``source`` to codebook ``target`` (see the module docstring).

    Parameters
    ----------
    annotations
        Annotations made with ``source`` (checked).
    choices
        For codes that split or have no counterpart: the ``target`` code to give them
        (``{"tijd_evaluatie": "evaluatiemomenten"}``), applied to every such coding.

    Raises
    ------
    AnnotationError
        When an annotation was made with another version than ``source``, or a choice names
        a code that is not a codable ``target`` code.
    """
    translation = code_translation(source, target, mapping_path)
    choices = dict(choices or {})
    for code, chosen in choices.items():
        if code not in source:
            raise AnnotationError(f"choice {code}={chosen}: {code!r} is not a code of codebook {source.version!r}.")
        if chosen not in target or not target[chosen].codable:
            raise AnnotationError(f"choice {code}={chosen}: {chosen!r} is not a codable code of codebook "
                                  f"{target.version!r}. Run 'codeer codebook show --version {target.version}'.")
    not_converted: Counter[str] = Counter()
    merged: Counter[tuple[str, str, str]] = Counter()
    converted, n_codings, n_converted, n_left_out = [], 0, 0, 0
    for annotation in annotations:
        if annotation.codebook_version != source.version:
            raise AnnotationError(
                f"annotation of utterance {annotation.utterance_id} ({annotation.source_file}) was made with codebook "
                f"{annotation.codebook_version!r}, not {source.version!r}; convert each version separately.")
        codings: dict[str, Coding] = {}
        origins: dict[str, str] = {}
        for coding in annotation.codings:
            n_codings += 1
            options = translation.get(coding.code, ())
            new_code = choices.get(coding.code) or (options[0] if len(options) == 1 else None)
            if new_code is None or not target[new_code].codable:
                not_converted[coding.code] += 1
                continue
            n_converted += 1
            held = codings.get(new_code)
            if held is None:
                codings[new_code], origins[new_code] = replace(coding, code=new_code), coding.code
                continue
            merged[(origins[new_code], coding.code, new_code)] += 1
            codings[new_code] = Coding(new_code, held.direction if held.direction == coding.direction else "0",
                                       held.facet if held.facet == coding.facet else None)
        if annotation.codings and not codings:
            n_left_out += 1
            continue
        converted.append(replace(annotation, codings=tuple(codings.values()), codebook_version=target.version))
    unmapped = tuple(_unmapped_line(code, n, translation[code], source, target)
                     for code, n in sorted(not_converted.items()))
    merges = tuple(f"{a!r} and {b!r} on one utterance became {c!r} {n} time(s); the direction is kept where they "
                   "agree, 0 otherwise." for (a, b, c), n in sorted(merged.items()))
    return CodebookMigration(source.version, target.version, tuple(converted), n_codings, n_converted, unmapped,
                             merges, n_left_out)


def _unmapped_line(code: str, n: int, options: tuple[str, ...], source: Codebook, target: Codebook) -> str:
    if not options:
        why = f"it has no counterpart in {target.version!r}"
        fix = "Code these fragments again with the new codebook"
    else:
        why = f"it split into {' and '.join(repr(o) for o in options)}"
        fix = f"Choose one for all with --choose {code}={options[0]}, or code these fragments again"
    return f"{code!r} ({source.version}): {n} coding(s) not converted; {why}. {fix}."


def write_annotation_file(annotations: Sequence[Annotation], out: Path | str) -> None:
    """Write annotations as a JSONL annotation file (the seed format), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for annotation in annotations:
            handle.write(json.dumps(annotation_record(annotation), ensure_ascii=False) + "\n")
    partial.replace(out)


def annotation_versions(paths: Sequence[Path]) -> Counter[str]:
    """How many records of the annotation files name each codebook version (records unchecked)."""
    versions: Counter[str] = Counter()
    for path in annotation_files(paths):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    versions[str(json.loads(line).get("codebook_version", ""))] += 1
                except (json.JSONDecodeError, AttributeError) as err:
                    raise AnnotationError(f"{path}, line {number}: not a JSON record ({err}).") from err
    return versions


def migrate_annotation_files(paths: Sequence[Path], target_version: str, out: Path | str, *,
                             choices: Mapping[str, str] | None = None,
                             codebook_directory: Path | None = None) -> CodebookMigration:
    """Convert annotation files to codebook ``target_version`` and write them to ``out`` (JSONL).

    The files' codebook version is read from their records (one version for all). Nothing is
    written when the files are already in ``target_version``.

    Raises
    ------
    AnnotationError
        When the files hold no records, several versions, or records invalid in their version.
    CodebookError
        When a version is unknown or the mapping does not connect the two versions.
    """
    versions = annotation_versions(paths)
    if not versions:
        raise AnnotationError(f"{', '.join(str(p) for p in paths)}: no annotation records found.")
    if len(versions) > 1:
        counts = ", ".join(f"{n} of {v!r}" for v, n in sorted(versions.items()))
        raise AnnotationError(f"the files hold records of several codebook versions ({counts}); "
                              "convert the files of each version separately.")
    (source_version,) = versions
    source = load_codebook(source_version, codebook_directory)
    target = load_codebook(target_version, codebook_directory)
    if source.version == target.version:
        raise AnnotationError(f"the annotations are already in codebook {target.version!r}; nothing to convert.")
    mapping_path = Path(source.path).with_name("mapping.yaml")
    result = migrate_annotations(read_annotations(list(paths), source), source, target, choices=choices,
                                 mapping_path=mapping_path)
    write_annotation_file(result.annotations, out)
    return result
