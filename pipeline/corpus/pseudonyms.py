"""Respondent codes that neither collide nor reverse (issue 19).

A respondent without a thesis code (``BA``, ``MOIJ``) in the header or ``metadata.csv`` gets a
code from the workspace's registry: ``R0001``, ``R0002``, ... in order of first appearance. The
registry is keyed by an HMAC-SHA256 of the respondent's name (or, without a name, of the file's
source key) under a secret key kept in the workspace (``codeer.key``, mode 0600). So:

- two respondents never share a code: codes are issued one by one, unique by construction;
- the code says nothing about the name: it is a counter, and the registry row that links it to
  the name holds only the HMAC, which cannot be computed from a list of names without the key;
- re-ingesting the same transcript gives the same code (the HMAC is the same).

The key never leaves the workspace: exports carry only the codes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.errors import WorkspaceKeyError

KEY_FILE = "codeer.key"
CODE_PREFIX = "R"


class CodeRegistry(Protocol):
    """Where issued codes are kept: :class:`pipeline.store.Store` in a workspace."""

    def respondent_code(self, key: str, prefix: str = CODE_PREFIX) -> str:
        """The code registered for ``key``, issuing the next free one on first use."""


def normalise_name(name: str) -> str:
    """Case, accents' composition and spacing do not make another person: ``"Jan  de Vries"``
    and ``"jan de vries"`` are one name."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def name_key(name: str, key: bytes) -> str:
    """The registry key of a name: HMAC-SHA256 under the workspace key, hex."""
    return hmac.new(key, normalise_name(name).encode("utf-8"), hashlib.sha256).hexdigest()


def load_workspace_key(path: Path, *, create: bool = True) -> bytes:
    """Read the workspace key, creating it (32 random bytes, file mode 0600) when absent.

    Raises :class:`WorkspaceKeyError` when the file cannot be read or is not a key.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise WorkspaceKeyError(f"{path}: no workspace key. It is made by the first 'codeer ingest'.")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return load_workspace_key(path, create=False)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    try:
        value = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(value)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise WorkspaceKeyError(
            f"{path}: the workspace key cannot be read ({type(err).__name__}). Restore it from a backup of the "
            "workspace; without it, respondents ingested again get new codes.") from err
    if len(key) < 16:
        raise WorkspaceKeyError(f"{path}: the workspace key is too short ({len(key)} bytes, expected 32). "
                                "Restore it from a backup of the workspace.")
    return key


@dataclass
class MemoryRegistry:
    """A registry in memory: for parsing without a workspace (tests, one-off previews).
    Codes are unique within this object only."""

    codes: dict[str, str] = field(default_factory=dict)

    def respondent_code(self, key: str, prefix: str = CODE_PREFIX) -> str:
        """The code of ``key``, the next free one on first use."""
        if key not in self.codes:
            self.codes[key] = f"{prefix}{len(self.codes) + 1:04d}"
        return self.codes[key]


@dataclass(frozen=True)
class Pseudonymizer:
    """Turns respondent names (and source keys) into registry codes."""

    key: bytes = field(repr=False)
    registry: CodeRegistry

    @classmethod
    def ephemeral(cls) -> Pseudonymizer:
        """A pseudonymizer with a random key and an in-memory registry (no workspace)."""
        return cls(secrets.token_bytes(32), MemoryRegistry())

    def code_for_name(self, name: str) -> str:
        """The code of the respondent called ``name``."""
        return self.registry.respondent_code(name_key("name:" + name, self.key))

    def code_for_source(self, source: str) -> str:
        """The code of the unnamed respondent of the file with source key ``source``."""
        return self.registry.respondent_code(name_key("source:" + source, self.key))


def workspace_pseudonymizer(registry: CodeRegistry, key_file: Path) -> Pseudonymizer:
    """The pseudonymizer of a workspace: its key file (created on first use) and its registry."""
    return Pseudonymizer(load_workspace_key(key_file), registry)
