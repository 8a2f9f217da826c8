"""The embedding cache: its own SQLite file in the workspace, outside the database."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


class EmbeddingCache:
    """Content-addressed embedding cache in its own SQLite file in the workspace.

    Every entry records its encoder id, dimension and a checksum; an entry that does not
    verify is ignored (and so recomputed), never trusted.
    """

    def __init__(self, path: Path) -> None:
        import sqlite3

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._connection = sqlite3.connect(str(path), timeout=30)
        self._connection.execute("PRAGMA journal_mode=WAL")
        # a cache: losing the last commits on power loss only costs re-encoding (issue 8)
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, encoder_id TEXT NOT NULL, "
            "dim INTEGER NOT NULL, dtype TEXT NOT NULL, checksum TEXT NOT NULL, vector BLOB NOT NULL)")
        self._connection.commit()

    def get_many(self, keys: Sequence[str], encoder_id: str, dim: int) -> dict[str, "np.ndarray"]:
        """Valid cached vectors for ``keys``; corrupt or mismatching entries are left out."""
        import numpy as np

        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._connection.execute(
                f"SELECT key, encoder_id, dim, dtype, checksum, vector FROM embeddings WHERE key IN ({marks})", chunk)
            for key, row_encoder, row_dim, dtype, checksum, blob in rows:
                if (row_encoder, row_dim, dtype) != (encoder_id, dim, "float32") or len(blob) != dim * 4 \
                        or _checksum(blob) != checksum:
                    logger.warning("embedding cache: entry %s does not verify; it will be recomputed", key[:12])
                    continue
                vector = np.frombuffer(blob, dtype=np.float32)
                if not np.isfinite(vector).all():
                    continue
                found[key] = vector
        return found

    def put_many(self, vectors: dict[str, "np.ndarray"], encoder_id: str, dim: int) -> None:
        """Store vectors (one transaction)."""
        import numpy as np

        rows = []
        for key, vector in vectors.items():
            blob = np.asarray(vector, dtype=np.float32).tobytes()
            rows.append((key, encoder_id, dim, "float32", _checksum(blob), blob))
        with self._connection:
            self._connection.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, ?)", rows)

    def encoder_ids(self) -> list[str]:
        """The encoders the cache holds vectors of."""
        return [row[0] for row in self._connection.execute("SELECT DISTINCT encoder_id FROM embeddings ORDER BY 1")]

    def delete_keys(self, keys: Sequence[str]) -> int:
        """Delete entries (``codeer forget``); return how many there were."""
        deleted = 0
        unique = list(dict.fromkeys(keys))
        with self._connection:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                cursor = self._connection.execute(
                    f"DELETE FROM embeddings WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                deleted += cursor.rowcount
        return deleted

    def corrupt_for_test(self, key: str) -> None:
        """Flip bytes of one entry (used by the tests to prove corruption is detected)."""
        with self._connection:
            self._connection.execute("UPDATE embeddings SET vector = zeroblob(length(vector)) WHERE key = ?", (key,))

    def __len__(self) -> int:
        return int(self._connection.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        """Close the cache file."""
        self._connection.close()


def _checksum(blob: bytes) -> str:
    import hashlib

    return hashlib.blake2b(blob, digest_size=8).hexdigest()
