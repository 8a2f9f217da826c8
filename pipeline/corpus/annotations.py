"""Seed annotations: self-contained JSONL records of hand-coded utterances.

Each record carries the utterance id, the source file and its content hash, the offsets and
the text, so a model can be trained from the files alone and an import into the database can
verify that the transcript has not changed since it was coded. See ``annotations/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.errors import AnnotationError
from pipeline.records import Annotation, Coding
from pipeline.store import Store

MIN_PER_INCENTIVE = 40
MIN_PER_CONTEXT = 15
_FACETS = {"provision": "provision", "practice": "practice", "v": "provision", "p": "practice", None: None, "": None}


def annotation_files(paths: Sequence[Path]) -> list[Path]:
    """The ``.jsonl`` files under the given files and folders, sorted."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        files.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    return files


def read_annotations(paths: Sequence[Path], codebook: Codebook) -> list[Annotation]:
    """Read and validate annotation files against ``codebook``.

    Raises :class:`AnnotationError` naming the file and line of the first invalid record
    (bad JSON, missing field, unknown code, other codebook version, bad direction or facet).
    """
    annotations: list[Annotation] = []
    for path in annotation_files(paths):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    annotations.append(_parse_record(line, path, number, codebook))
    return annotations


def _parse_record(line: str, path: Path, number: int, codebook: Codebook) -> Annotation:
    where = f"{path}, line {number}"
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{where}: not valid JSON ({err.msg}).") from err
    for key in ("utterance_id", "source_file", "content_hash", "start", "end", "text", "codes", "annotator", "codebook_version"):
        if key not in raw:
            raise AnnotationError(f"{where}: missing field {key!r}. See annotations/README.md for the record format.")
    if raw["codebook_version"] != codebook.version:
        raise AnnotationError(
            f"{where}: coded with codebook version {raw['codebook_version']!r}, but the project uses "
            f"{codebook.version!r}. Convert them with 'codeer codebook migrate {path} --to "
            f"{codebook.version} --out NEW.jsonl', or set CODEER_CODEBOOK_VERSION={raw['codebook_version']}.")
    codings = []
    for item in raw["codes"]:
        code = item.get("code")
        if code not in codebook or not codebook[code].codable:
            raise AnnotationError(
                f"{where}: unknown code {code!r} in codebook version {codebook.version!r}. "
                f"Run 'codeer codebook show --version {codebook.version}' for the valid ids.")
        facet = item.get("facet")
        if facet not in _FACETS:
            raise AnnotationError(f"{where}: facet {facet!r} of {code!r} must be 'provision', 'practice' or empty.")
        try:
            codings.append(Coding(code, str(item.get("direction", "0")), _FACETS[facet]))
        except ValueError as err:
            raise AnnotationError(f"{where}: {code!r}: {err}.") from err
    return Annotation(
        utterance_id=raw["utterance_id"], source_file=raw["source_file"], content_hash=raw["content_hash"],
        start=int(raw["start"]), end=int(raw["end"]), text=raw["text"], codings=tuple(codings),
        annotator=raw["annotator"], created_at=raw.get("created_at", ""), codebook_version=raw["codebook_version"],
        transcript_id=raw.get("transcript_id", ""), municipality=raw.get("municipality", ""),
        respondent=raw.get("respondent", ""), role=raw.get("role", ""), question=raw.get("question", ""),
        origin=raw.get("origin", "seed"),
    )


def annotation_record(annotation: Annotation) -> dict[str, object]:
    """The JSONL record of an annotation."""
    return {
        "utterance_id": annotation.utterance_id, "source_file": annotation.source_file,
        "content_hash": annotation.content_hash, "transcript_id": annotation.transcript_id,
        "start": annotation.start, "end": annotation.end, "text": annotation.text,
        "municipality": annotation.municipality, "respondent": annotation.respondent, "role": annotation.role,
        "question": annotation.question,
        "codes": [{"code": c.code, "direction": c.direction, "facet": c.facet} for c in annotation.codings],
        "annotator": annotation.annotator, "created_at": annotation.created_at,
        "codebook_version": annotation.codebook_version, "origin": annotation.origin,
    }


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Outcome of importing annotations into the store."""

    n_records: int
    n_codings_added: int
    n_codings_present: int
    problems: tuple[str, ...]


def import_annotations(annotations: Iterable[Annotation], store: Store) -> ImportReport:
    """Attach annotations to stored utterances, verifying hash, offsets and text.

    Records whose utterance is missing, whose transcript changed (stale hash) or whose text
    differs are reported in ``problems`` and not imported; the rest are imported in one
    transaction. Importing the same records twice adds nothing.
    """
    annotations = list(annotations)
    stored = store.utterances_by_id(a.utterance_id for a in annotations)
    hashes = store.transcript_hashes()
    valid: list[Annotation] = []
    problems: list[str] = []
    for annotation in annotations:
        utterance = stored.get(annotation.utterance_id)
        label = f"{annotation.source_file} [{annotation.start}:{annotation.end}] utterance {annotation.utterance_id}"
        if utterance is None:
            known_hash = annotation.content_hash in hashes.values()
            problems.append(f"{label}: utterance not found" + (
                "" if known_hash else "; its transcript (hash " + annotation.content_hash[:12] +
                ") is not stored or has changed (stale hash). Ingest the transcript version that was coded."))
            continue
        if hashes.get(utterance.transcript_id) != annotation.content_hash:
            problems.append(f"{label}: stale hash; the transcript changed since it was coded. Re-code or re-ingest.")
            continue
        if (utterance.start, utterance.end, utterance.text) != (annotation.start, annotation.end, annotation.text):
            problems.append(f"{label}: text or offsets do not match the stored utterance.")
            continue
        if annotation.codings:
            valid.append(annotation)
    added, present = store.add_annotations(valid)
    return ImportReport(len(annotations), added, present, tuple(problems))


def annotation_stats(annotations: Iterable[Annotation], codebook: Codebook) -> pd.DataFrame:
    """Counts per code and direction with the minimum each code should reach.

    Columns: ``code``, ``kind``, ``+``, ``-``, ``0``, ``total``, ``minimum``, ``below_minimum``;
    plus a row ``(none)`` counting annotated utterances without any code.
    """
    counts = {code: {"+": 0, "-": 0, "0": 0} for code in codebook.codable}
    n_empty = 0
    for annotation in annotations:
        if not annotation.codings:
            n_empty += 1
        for coding in annotation.codings:
            counts[coding.code][coding.direction] += 1
    rows = []
    for code, by_direction in counts.items():
        kind = codebook[code].kind
        minimum = MIN_PER_INCENTIVE if kind == "incentive" else MIN_PER_CONTEXT if kind == "context" else 0
        total = sum(by_direction.values())
        rows.append({"code": code, "kind": kind, **by_direction, "total": total, "minimum": minimum,
                     "below_minimum": total < minimum})
    rows.append({"code": "(none)", "kind": "", "+": 0, "-": 0, "0": 0, "total": n_empty, "minimum": 0,
                 "below_minimum": False})
    return pd.DataFrame(rows)
