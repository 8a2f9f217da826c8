"""Untrusted files within limits: the size of a file, and zip archives (``.docx``, ``.qdpx``)
checked on their table of contents and read in chunks that stop at the limit (issue 20).

A zip member's declared size is a hard bound: :mod:`zipfile` never unpacks more than it, so a
member whose declared size and compression ratio pass cannot grow past them while it is read.
The chunked read still counts what it unpacks, so a damaged archive cannot get round the check.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from pipeline.config import MB, InputLimits
from pipeline.errors import InputTooLargeError

CHUNK_BYTES = MB
# What zipfile raises for a damaged or unusual archive (zlib.error and NotImplementedError were
# found by fuzzing the .qdpx reader, issue 20).
ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error)
# Below this size a member's ratio is no threat: tiny XML parts compress very well.
RATIO_FLOOR_BYTES = MB


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / MB:,.1f} MB"


def check_file_size(path: Path, limit: int, what: str) -> None:
    """Refuse a file larger than ``limit`` bytes before reading it.

    Raises
    ------
    InputTooLargeError
        Naming the file, its size, the limit and the setting that raises it.
    """
    size = path.stat().st_size
    if size > limit:
        setting = "max_text_mb" if what == "text" else "max_file_mb"
        raise InputTooLargeError(
            path, f"the file is {_mb(size)}, more than the {_mb(limit)} codeer reads as {what}",
            fix=f"Split it into smaller files, or raise the limit: CODEER_{setting.upper()} in the environment "
                f"or {setting} in codeer.toml.")


def check_archive(archive: zipfile.ZipFile, path: Path | str, limits: InputLimits,
                  members: list[str] | None = None) -> None:
    """Check an archive's table of contents against ``limits`` before anything is unpacked.

    Parameters
    ----------
    archive : zipfile.ZipFile
    path : Path or str
        The archive, for the message.
    limits : InputLimits
    members : list of str, optional
        The members that will be read (default: all); only they count towards the unpacked size
        and ratio limits, so media a ``.qdpx`` carries but codeer never reads cost nothing.

    Raises
    ------
    InputTooLargeError
        Too many members, a member or all of them too large unpacked, or a compression ratio
        of a zip bomb.
    """
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise InputTooLargeError(
            path, f"the archive holds {len(infos):,} members, more than the {limits.max_members:,} codeer opens",
            fix="Check the file; raise max_archive_members in codeer.toml if it is genuine.")
    chosen = infos if members is None else [archive.getinfo(name) for name in members]
    total = 0
    for info in chosen:
        _check_member(info, path, limits)
        total += info.file_size
    if total > limits.max_unpacked_bytes:
        raise InputTooLargeError(
            path, f"its members unpack to {_mb(total)}, more than the {_mb(limits.max_unpacked_bytes)} codeer unpacks "
                  "from one archive", fix="Check the file; raise max_unpacked_mb in codeer.toml if it is genuine.")


def _check_member(info: zipfile.ZipInfo, path: Path | str, limits: InputLimits) -> None:
    if info.file_size > limits.max_unpacked_bytes:
        raise InputTooLargeError(
            path, f"the archive member {info.filename!r} unpacks to {_mb(info.file_size)}, more than the "
                  f"{_mb(limits.max_unpacked_bytes)} codeer unpacks from one archive",
            fix="Check the file; raise max_unpacked_mb in codeer.toml if it is genuine.")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
        raise InputTooLargeError(
            path, f"the archive member {info.filename!r} is compressed {ratio:,.0f} to 1 (limit "
                  f"{limits.max_compression_ratio:,.0f} to 1): this is what a zip bomb looks like, not a document",
            fix="Export the file again; raise max_compression_ratio in codeer.toml only if you trust it.")


class LimitedArchive:
    """A zip archive opened within limits: :meth:`read` unpacks one member in chunks and
    stops at the limits, counting what all reads together unpacked.

    Examples
    --------
    >>> import io
    >>> data = io.BytesIO()
    >>> with zipfile.ZipFile(data, "w") as z:
    ...     z.writestr("project.qde", "<Project/>")
    >>> LimitedArchive(zipfile.ZipFile(data), "p.qdpx", InputLimits()).read("project.qde")
    b'<Project/>'
    """

    def __init__(self, archive: zipfile.ZipFile, path: Path | str, limits: InputLimits) -> None:
        self.archive, self.path, self.limits = archive, path, limits
        self.n_unpacked = 0
        check_archive(archive, path, limits, members=[])

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``.

        Raises
        ------
        InputTooLargeError
            The member, or all reads together, would pass the limits.
        ZIP_ERRORS
            A corrupt member (the caller adds what to do).
        """
        info = self.archive.getinfo(name)
        _check_member(info, self.path, self.limits)
        left = self.limits.max_unpacked_bytes - self.n_unpacked
        if info.file_size > left:
            raise InputTooLargeError(
                self.path, f"its members unpack to more than the {_mb(self.limits.max_unpacked_bytes)} codeer unpacks "
                           "from one archive", fix="Check the file; raise max_unpacked_mb in codeer.toml if it is genuine.")
        chunks: list[bytes] = []
        n_read = 0
        with self.archive.open(info) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                n_read += len(chunk)
                if n_read > left:  # more than the declared size: a damaged or forged entry
                    raise InputTooLargeError(self.path, f"the archive member {name!r} unpacks to more than it declares",
                                             fix="Export the file again.")
                chunks.append(chunk)
        self.n_unpacked += n_read
        return b"".join(chunks)
