"""Which files in the folders a researcher gives are sources (transcripts and documents), which
are left out and why, and the metadata each source gets from its ``metadata.csv``."""

from __future__ import annotations

from pathlib import Path

from pipeline.corpus.transcripts import _SIDECAR_SUFFIXES, METADATA_FILE, SourceMetadata, read_metadata


def find_sources(paths: list[Path]) -> list[tuple[Path, str]]:
    """Expand files and folders into ``(file, source key)`` pairs, sorted, sidecars excluded.

    The source key is the path relative to the folder given (the file name for a file), so a
    changed file is recognised as a new version of the same source. Hidden files and Office
    lock files are left out; :func:`find_skipped` names them.
    """
    return [(path, key) for path, key, why in _walk_sources(paths) if why is None]


def find_skipped(paths: list[Path]) -> list[tuple[Path, str]]:
    """The files under ``paths`` that :func:`find_sources` leaves out although they might be
    transcripts, with the reason: hidden files (names starting with ``.``), files in hidden
    folders and Office lock files (``~$...``) (issue 20)."""
    return [(path, why) for path, _key, why in _walk_sources(paths) if why is not None]


def _walk_sources(paths: list[Path]) -> list[tuple[Path, str, str | None]]:
    found: list[tuple[Path, str, str | None]] = []
    hidden_folders: set[Path] = set()
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            found.append((root, root.name, None))
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name == METADATA_FILE or path.suffix.lower() in _SIDECAR_SUFFIXES:
                continue
            folders = path.relative_to(root).parts[:-1]
            if "authoring" in folders:
                continue
            why = None
            hidden = next((i for i, part in enumerate(folders) if part.startswith(".")), None)
            if hidden is not None:  # the folder is listed once, not each file in it
                folder = root.joinpath(*folders[: hidden + 1])
                if folder not in hidden_folders:
                    hidden_folders.add(folder)
                    found.append((folder, folder.relative_to(root).as_posix(), "a hidden folder"))
                continue
            if path.name.startswith("~$"):
                why = "an Office lock file"
            elif path.name.startswith("."):
                why = "a hidden file"
            found.append((path, path.relative_to(root).as_posix(), why))
    return found


def metadata_for(path: Path, sidecars: dict[Path, dict[str, SourceMetadata]], explicit: dict[str, SourceMetadata] | None) -> SourceMetadata | None:
    """Metadata for a file: the explicit sidecar first, then a ``metadata.csv`` in its folder or above."""
    if explicit and path.name in explicit:
        return explicit[path.name]
    for folder in (path.parent, *path.parent.parents):
        sidecar = folder / METADATA_FILE
        if sidecar not in sidecars:
            sidecars[sidecar] = read_metadata(sidecar) if sidecar.is_file() else {}
        rows = sidecars[sidecar]
        relative = path.relative_to(folder).as_posix()
        if relative in rows or path.name in rows:
            return rows.get(relative) or rows[path.name]
        if sidecar.is_file():
            break
    return None
