"""The store: the database (SQLite or PostgreSQL) behind :class:`Store`, its migrations, and one
query module per concept (review, questionnaires); all SQL lives in this package.
"""

from pipeline.store.database import (
    CODINGS_FRAME_COLUMNS,
    Store,
    open_store,
    upgrade_schema,
)
from pipeline.store.fragments import HumanCoding, TranscriptInfo
from pipeline.store.privacy import ErasurePlan
from pipeline.store.rows import StoredAnnotation, StoredTranscript, now

__all__ = [
    "CODINGS_FRAME_COLUMNS", "ErasurePlan", "HumanCoding", "Store", "StoredAnnotation", "StoredTranscript",
    "TranscriptInfo", "now", "open_store", "upgrade_schema",
]
