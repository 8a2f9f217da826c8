"""Content hashes shared by ingest, segmentation, annotations and models."""

from __future__ import annotations

import hashlib
from pathlib import Path


def text_hash(text: str) -> str:
    """Return the sha256 hex digest of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def utterance_id(content_hash: str, start: int, end: int) -> str:
    """Stable utterance id from the transcript's content hash and character offsets."""
    return hashlib.sha1(f"{content_hash}:{start}:{end}".encode()).hexdigest()[:16]
