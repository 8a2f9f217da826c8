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


# Files of a model folder that do not change what the model computes (issue 18).
_NOT_CONTENT = ("README.md", "readme.md", ".gitattributes")
FOLDER_HASH_MEMO = "folder-hashes.json"


def default_hash_memo() -> Path:
    """Where folder hashes are remembered: ``$CODEER_HASH_MEMO``, else the user's cache folder
    (``$XDG_CACHE_HOME/codeer`` or ``~/.cache/codeer``)."""
    import os

    if os.environ.get("CODEER_HASH_MEMO"):
        return Path(os.environ["CODEER_HASH_MEMO"])
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "codeer" / FOLDER_HASH_MEMO


def folder_hash(folder: Path, *, memo: Path | None = None) -> str:
    """The sha256 of a model folder's content: every file's relative path and bytes (weights,
    configuration, tokenizer), hidden files and READMEs left out.

    Hashing a few hundred MB of weights takes seconds, so each file's hash is remembered in
    the JSON file ``memo`` (default :func:`default_hash_memo`) under its absolute path, size
    and modification time in nanoseconds: a file rewritten in place gets a new size or time
    and is hashed again. An unreadable or unwritable memo only costs the re-hashing.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "config.json").write_text("{}")
    >>> len(folder_hash(folder, memo=folder.parent / "memo.json"))
    64
    """
    import json

    memo_path = memo if memo is not None else default_hash_memo()
    try:
        remembered: dict[str, str] = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        remembered = {}
    folder = Path(folder).resolve()
    digest = hashlib.sha256()
    changed = False
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if path.name in _NOT_CONTENT or any(part.startswith(".") for part in relative.split("/")):
            continue
        stat = path.stat()
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in remembered:
            stale = [k for k in remembered if k.rsplit("|", 2)[0] == str(path)]
            for old in stale:  # the file's earlier versions: keep the memo as small as the folders
                del remembered[old]
            remembered[key] = file_hash(path)
            changed = True
        digest.update(f"{relative}\x00{remembered[key]}\n".encode())
    if changed:
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = memo_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(remembered, indent=0), encoding="utf-8")
            temporary.replace(memo_path)  # atomic: a parallel reader sees the old or the new memo
        except OSError:
            pass  # a read-only cache folder: the hash is right, only not remembered
    return digest.hexdigest()
