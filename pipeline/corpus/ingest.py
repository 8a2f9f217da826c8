"""The ingest job: read, segment and store a batch of files, one transaction per file."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import InputLimits, WorkspacePaths
from pipeline.corpus.deidentify import Deidentifier, deidentify_transcript, load_deidentifier
from pipeline.corpus.documents import DEFAULT_LIMITS
from pipeline.corpus.folders import find_skipped, find_sources, metadata_for
from pipeline.corpus.pseudonyms import KEY_FILE, Pseudonymizer, workspace_pseudonymizer
from pipeline.corpus.segment import Segmenter, segment_transcript
from pipeline.corpus.transcripts import METADATA_FILE, SourceMetadata, load_transcript, read_metadata
from pipeline.errors import CodeerError
from pipeline.progress import progress
from pipeline.records import IngestReport, IngestResult, Speaker
from pipeline.store import Store

logger = logging.getLogger(__name__)


def ingest_paths(
    paths: list[Path],
    store: Store,
    segmenter: Segmenter,
    *,
    metadata_file: Path | None = None,
    speaker_aliases: dict[str, Speaker] | None = None,
    run_id: int | None = None,
    show_progress: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
    deidentifier: Deidentifier | None = None,
    pseudonyms: Pseudonymizer | None = None,
    allow: Sequence[str] = (),
) -> IngestReport:
    """Ingest every transcript and document under ``paths``.

    A file that cannot be read fails alone: its error is recorded in the report and the
    batch goes on. Each file is stored in its own transaction, so a crash never leaves a
    half-written transcript behind. Hidden files and folders and Office lock files are not
    read; each is in the report as ``skipped`` with the reason (issue 20). Every file is de-identified before it is stored (see
    :func:`ingest_file`); the municipalities in the metadata files are never taken for names.
    """
    explicit: dict[str, SourceMetadata] | None = read_metadata(metadata_file) if metadata_file else None
    sidecars: dict[Path, dict[str, SourceMetadata]] = {}
    results: list[IngestResult] = []
    sources = find_sources(paths)
    deidentifier = deidentifier or load_deidentifier()
    pseudonyms = pseudonyms or store_pseudonymizer(store)
    for path, source in progress(sources, "ingest", unit="file", enabled=show_progress):
        try:
            metadata = metadata_for(path, sidecars, explicit)
            places = metadata_places(path, sidecars, explicit)
            results.append(ingest_file(path, source, store, segmenter, metadata=metadata,
                                       speaker_aliases=speaker_aliases, run_id=run_id, limits=limits,
                                       deidentifier=deidentifier, pseudonyms=pseudonyms, allow=[*allow, *places]))
        except OSError as err:  # unreadable file, permissions: this file fails, the batch goes on
            results.append(IngestResult(str(path), "failed", error=f"{path}: {err}", reason=type(err).__name__))
    results += [IngestResult(str(path), "skipped", reason=why) for path, why in find_skipped(paths)]
    return IngestReport(tuple(results))


def ingest_file(
    path: Path,
    source: str,
    store: Store,
    segmenter: Segmenter,
    *,
    metadata: SourceMetadata | None = None,
    speaker_aliases: dict[str, Speaker] | None = None,
    run_id: int | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
    deidentifier: Deidentifier | None = None,
    pseudonyms: Pseudonymizer | None = None,
    allow: Sequence[str] = (),
) -> IngestResult:
    """Read, de-identify, segment and store one file in one transaction; bad input becomes a
    failed result.

    The same content under another name (issue 20): when the file it was stored from is gone,
    the source is ``renamed`` (every version moves to the new name); when that file is still
    there, the new file is a ``duplicate`` and nothing is stored. So a source keeps the name it
    was first stored under for as long as that file exists, and never flips between two names.


    Only the de-identified text is stored (:func:`pipeline.corpus.deidentify.deidentify_transcript`):
    names, e-mail addresses and phone numbers become tags, the header's name becomes the
    respondent's code from the workspace registry (``pseudonyms``; default: the registry in
    ``store`` keyed by the workspace key beside a SQLite database). ``allow``: words never taken
    for names. Transient errors (I/O, a locked database) propagate, so a caller can retry them.
    """
    deidentifier = deidentifier or load_deidentifier()
    pseudonyms = pseudonyms or store_pseudonymizer(store)
    try:
        parsed = load_transcript(path, source=source, metadata=metadata, speaker_aliases=speaker_aliases,
                                 limits=limits, pseudonyms=pseudonyms)
        deidentified = deidentify_transcript(parsed, deidentifier, allow=allow)
        transcript = deidentified.transcript
        if deidentified.n_replaced:
            # counts only: the names themselves are never logged
            logger.info("%s: de-identified (%s)", source,
                        ", ".join(f"{n} {kind.lower()}" for kind, n in deidentified.counts.items()))
        active = store.active_version(transcript.source)
        if active is not None and active[0] == transcript.transcript_id:
            # the same content is stored already: skip segmenting, the costly part (issue 8)
            logger.info("%s: unchanged (%d utterances)", source, active[1])
            return IngestResult(str(path), "unchanged", transcript.transcript_id, active[1],
                                note=transcript.detection or None)
        stored = store.content_source(transcript.transcript_id)
        if stored is not None and active is None:
            old_source, old_path = stored
            n_stored = store.active_version(old_source)
            n_utterances = n_stored[1] if n_stored else 0
            if Path(old_path).is_file() and Path(old_path).resolve() != Path(path).resolve():
                logger.info("%s: duplicate of %s; not stored", source, old_source)
                return IngestResult(str(path), "duplicate", transcript.transcript_id, n_utterances,
                                    reason=f"same content as {old_source}")
            store.rename_source(old_source, transcript.source, str(path))
            logger.info("%s: renamed from %s", source, old_source)
            return IngestResult(str(path), "renamed", transcript.transcript_id, n_utterances,
                                reason=f"renamed from {old_source}")
        utterances = segment_transcript(transcript, segmenter)
        status = store.save_transcript(transcript, utterances, run_id=run_id, segmenter=segmenter.name)
    except CodeerError as err:
        # the reason, not the message: a message may quote a speaker label, which may be a name
        logger.info("%s: failed (%s)", source, getattr(err, "reason", type(err).__name__))
        return IngestResult(str(path), "failed", error=str(err), reason=getattr(err, "reason", type(err).__name__))
    logger.info("%s: %s (%d utterances)", source, status, len(utterances))
    return IngestResult(str(path), status, transcript.transcript_id, len(utterances), note=transcript.detection or None)


def metadata_places(path: Path, sidecars: dict[Path, dict[str, SourceMetadata]],
                    explicit: dict[str, SourceMetadata] | None = None) -> list[str]:
    """The municipalities named in the metadata that governs ``path`` (the explicit file and
    the nearest ``metadata.csv`` that :func:`metadata_for` read): never taken for names, and the
    same whether a file is ingested alone or in a batch."""
    rows = list((explicit or {}).values())
    for folder in (path.parent, *path.parent.parents):
        sidecar = folder / METADATA_FILE
        if sidecar in sidecars and sidecar.is_file():
            rows.extend(sidecars[sidecar].values())
            break
    return sorted({row.municipality for row in rows if row.municipality})


def store_pseudonymizer(store: Store, key_file: Path | None = None) -> Pseudonymizer:
    """The pseudonymizer of the workspace that holds ``store``: its registry in the database and
    the workspace key in ``key_file``. Default: ``codeer.key`` beside a SQLite database file;
    for another database (PostgreSQL, in memory) the workspace of the environment
    (``CODEER_HOME``, else the current folder), as :class:`pipeline.config.Settings` finds it.
    The CLI and the flows pass their workspace's :attr:`pipeline.config.WorkspacePaths.key_file`.
    """
    if key_file is None:
        database = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
        if database and database != ":memory:":
            key_file = Path(database).parent / KEY_FILE
        else:
            key_file = WorkspacePaths(Path(os.environ.get("CODEER_HOME") or ".")).key_file
    return workspace_pseudonymizer(store, key_file)
