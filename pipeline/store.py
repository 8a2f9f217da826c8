"""The database: every SQL statement of codeer lives in this module.

SQLAlchemy 2 Core over SQLite (WAL) by default or any SQLAlchemy URL (PostgreSQL included).
The schema is created and upgraded by Alembic migrations in ``pipeline/migrations``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.records import Annotation, Coding, Prediction, Role, Speaker, Transcript, Utterance

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def now() -> str:
    """The current UTC time as an ISO 8601 string (what the store records)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@dataclass(frozen=True, slots=True)
class StoredTranscript:
    """A transcript row without its text."""

    transcript_id: str
    source: str
    municipality: str
    respondent: str
    role: str
    kind: str
    status: str
    n_utterances: int
    content_hash: str


if TYPE_CHECKING:
    import pandas as pd

    from pipeline.questionnaire import QuestionnaireResponses


@dataclass(frozen=True, slots=True)
class StoredAnnotation:
    """One annotation row: one code on one utterance by one annotator."""

    utterance_id: str
    transcript_id: str
    code: str
    direction: str
    facet: str | None
    annotator: str
    origin: str
    codebook_version: str
    created_at: str


class Store:
    """Access to the codeer database. Create with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata = sa.MetaData()
        metadata.reflect(engine, only=("runs", "transcripts", "utterances", "annotations", "predictions", "review_items"))
        self.tables = metadata.tables
        self.runs = metadata.tables["runs"]
        self.transcripts = metadata.tables["transcripts"]
        self.utterances = metadata.tables["utterances"]
        self.annotations = metadata.tables["annotations"]
        self.predictions = metadata.tables["predictions"]
        self.review_items = metadata.tables["review_items"]

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed on success, rolled back on any error."""
        with self.engine.begin() as connection:
            yield connection

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # runs -----------------------------------------------------------------
    def begin_run(self, kind: str, settings: dict[str, object], segmenter: str = "") -> int:
        """Record the start of a run; return its id."""
        with self.transaction() as connection:
            result = connection.execute(
                self.runs.insert().values(kind=kind, status="running", started_at=now(), segmenter=segmenter,
                                          settings=json.dumps(settings, default=str))
            )
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, status: str, summary: dict[str, object]) -> None:
        """Record the end of a run and its summary."""
        with self.transaction() as connection:
            connection.execute(
                self.runs.update().where(self.runs.c.id == run_id)
                .values(status=status, finished_at=now(), summary=json.dumps(summary, default=str))
            )

    # transcripts ------------------------------------------------------------
    def save_transcript(
        self, transcript: Transcript, utterances: Sequence[Utterance], *, run_id: int | None = None, segmenter: str = ""
    ) -> str:
        """Store a transcript and its utterances in one transaction.

        Returns ``new``, ``changed`` (a new version of a stored source, which supersedes the
        old one and keeps the annotations of utterances whose text did not change) or
        ``unchanged`` (same content already active: nothing is written).
        """
        t = self.transcripts
        with self.transaction() as connection:
            active = connection.execute(
                sa.select(t.c.id).where(t.c.source == transcript.source, t.c.status == "active")
            ).scalar_one_or_none()
            if active == transcript.transcript_id:
                return "unchanged"
            existing = connection.execute(
                sa.select(t.c.id).where(t.c.id == transcript.transcript_id)
            ).scalar_one_or_none()
            if existing is None:
                connection.execute(t.insert().values(
                    id=transcript.transcript_id, source=transcript.source, path=transcript.path,
                    content_hash=transcript.content_hash, file_format=transcript.file_format,
                    encoding=transcript.encoding, kind=transcript.kind, municipality=transcript.municipality,
                    respondent=transcript.respondent, role=transcript.role.value,
                    header=json.dumps(dict(transcript.header), ensure_ascii=False), text=transcript.text,
                    status="active", segmenter=segmenter, ingested_at=now(), run_id=run_id,
                ))
                if utterances:
                    connection.execute(self.utterances.insert(), [_utterance_row(u) for u in utterances])
            else:
                connection.execute(t.update().where(t.c.id == existing).values(
                    status="active", superseded_by=None, source=transcript.source, path=transcript.path))
            if active is not None:
                connection.execute(t.update().where(t.c.id == active).values(
                    status="superseded", superseded_by=transcript.transcript_id))
                n_kept = self._carry_annotations(connection, active, transcript.transcript_id)
                logger.info("%s: new version supersedes %s; %d annotation(s) kept on unchanged utterances",
                            transcript.source, active, n_kept)
                return "changed"
            return "new"

    def _carry_annotations(self, connection: Connection, old_id: str, new_id: str) -> int:
        u, a = self.utterances, self.annotations
        new_by_text: dict[str, list[str]] = {}
        for row in connection.execute(sa.select(u.c.id, u.c.text).where(u.c.transcript_id == new_id).order_by(u.c.position)):
            new_by_text.setdefault(row.text, []).append(row.id)
        old_rows = connection.execute(
            sa.select(a, u.c.text).join(u, u.c.id == a.c.utterance_id).where(u.c.transcript_id == old_id)
            .order_by(u.c.position)
        ).mappings().all()
        old_positions: dict[str, str] = {}
        used: dict[str, int] = {}
        n_kept = 0
        for row in old_rows:
            candidates = new_by_text.get(row["text"])
            if not candidates:
                continue
            if row["utterance_id"] not in old_positions:
                index = used.get(row["text"], 0)
                if index >= len(candidates):
                    continue
                old_positions[row["utterance_id"]] = candidates[index]
                used[row["text"]] = index + 1
            target = old_positions[row["utterance_id"]]
            values = {k: row[k] for k in ("code", "direction", "facet", "annotator", "origin", "codebook_version", "created_at")}
            exists = connection.execute(sa.select(a.c.id).where(
                a.c.utterance_id == target, a.c.code == values["code"], a.c.annotator == values["annotator"],
                a.c.origin == values["origin"])).first()
            if exists is None:
                connection.execute(a.insert().values(utterance_id=target, **values))
                n_kept += 1
        return n_kept

    def list_transcripts(self, include_superseded: bool = False) -> list[StoredTranscript]:
        """Stored transcripts with their utterance counts, ordered by source."""
        t, u = self.transcripts, self.utterances
        query = (
            sa.select(t.c.id, t.c.source, t.c.municipality, t.c.respondent, t.c.role, t.c.kind, t.c.status,
                      t.c.content_hash, sa.func.count(u.c.id).label("n"))
            .select_from(t.outerjoin(u, u.c.transcript_id == t.c.id))
            .group_by(t.c.id).order_by(t.c.source, t.c.status)
        )
        if not include_superseded:
            query = query.where(t.c.status == "active")
        with self.engine.connect() as connection:
            return [StoredTranscript(r.id, r.source, r.municipality, r.respondent, r.role, r.kind, r.status, r.n,
                                     r.content_hash) for r in connection.execute(query)]

    def transcript_text(self, transcript_id: str) -> tuple[str, str, str]:
        """``(text, source, content_hash)`` of a stored transcript."""
        t = self.transcripts
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(t.c.text, t.c.source, t.c.content_hash).where(t.c.id == transcript_id)).one()
        return row.text, row.source, row.content_hash

    def iter_utterances(
        self, transcript_id: str | None = None, *, active_only: bool = True, batch_size: int = 5000
    ) -> Iterator[Utterance]:
        """Stored utterances in transcript and position order, streamed in batches."""
        u, t = self.utterances, self.transcripts
        query = sa.select(u).join(t, t.c.id == u.c.transcript_id).order_by(t.c.source, u.c.position)
        if transcript_id:
            query = query.where(u.c.transcript_id.startswith(transcript_id))
        if active_only:
            query = query.where(t.c.status == "active")
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=batch_size).execute(query)
            for row in result.mappings():
                yield _utterance_from_row(row)

    def utterances_by_id(self, ids: Iterable[str]) -> dict[str, Utterance]:
        """Look up utterances by id."""
        u = self.utterances
        ids = list(ids)
        found: dict[str, Utterance] = {}
        with self.engine.connect() as connection:
            for chunk in range(0, len(ids), 500):
                for row in connection.execute(sa.select(u).where(u.c.id.in_(ids[chunk:chunk + 500]))).mappings():
                    found[row["id"]] = _utterance_from_row(row)
        return found

    def transcript_hashes(self) -> dict[str, str]:
        """Content hash of every stored transcript version, by transcript id."""
        t = self.transcripts
        with self.engine.connect() as connection:
            return dict(connection.execute(sa.select(t.c.id, t.c.content_hash)).tuples().all())

    # annotations --------------------------------------------------------------
    def add_annotations(self, annotations: Iterable[Annotation]) -> tuple[int, int]:
        """Attach human annotations in one transaction; return ``(added, already present)``."""
        a = self.annotations
        added = present = 0
        with self.transaction() as connection:
            for annotation in annotations:
                for coding in annotation.codings:
                    exists = connection.execute(sa.select(a.c.id, a.c.direction, a.c.facet).where(
                        a.c.utterance_id == annotation.utterance_id, a.c.code == coding.code,
                        a.c.annotator == annotation.annotator, a.c.origin == annotation.origin)).first()
                    if exists is not None:
                        present += 1
                        if (exists.direction, exists.facet) != (coding.direction, coding.facet):
                            connection.execute(a.update().where(a.c.id == exists.id).values(
                                direction=coding.direction, facet=coding.facet, created_at=annotation.created_at))
                        continue
                    connection.execute(a.insert().values(
                        utterance_id=annotation.utterance_id, code=coding.code, direction=coding.direction,
                        facet=coding.facet, annotator=annotation.annotator, origin=annotation.origin,
                        codebook_version=annotation.codebook_version, created_at=annotation.created_at))
                    added += 1
        return added, present

    def iter_annotated(self, origins: Sequence[str] | None = None) -> Iterator[tuple[Utterance, tuple[Coding, ...], str, str]]:
        """Annotated active utterances: ``(utterance, codings, annotator, codebook_version)``."""
        a, u, t = self.annotations, self.utterances, self.transcripts
        query = (
            sa.select(u, a.c.code, a.c.direction, a.c.facet, a.c.annotator, a.c.codebook_version)
            .join(u, u.c.id == a.c.utterance_id).join(t, t.c.id == u.c.transcript_id)
            .where(t.c.status == "active").order_by(t.c.source, u.c.position, a.c.id)
        )
        if origins:
            query = query.where(a.c.origin.in_(list(origins)))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        current: str | None = None
        codings: list[Coding] = []
        last = None
        for row in rows:
            if row["id"] != current and last is not None:
                yield _utterance_from_row(last), tuple(codings), last["annotator"], last["codebook_version"]
                codings = []
            current, last = row["id"], row
            codings.append(Coding(row["code"], row["direction"], row["facet"]))
        if last is not None:
            yield _utterance_from_row(last), tuple(codings), last["annotator"], last["codebook_version"]

    def list_annotations(self, origins: Sequence[str] | None = None) -> list[StoredAnnotation]:
        """Annotations on the active transcript versions, in source, utterance, annotator and code order."""
        a, u, t = self.annotations, self.utterances, self.transcripts
        query = (
            sa.select(a.c.utterance_id, u.c.transcript_id, a.c.code, a.c.direction, a.c.facet, a.c.annotator,
                      a.c.origin, a.c.codebook_version, a.c.created_at)
            .join(u, u.c.id == a.c.utterance_id).join(t, t.c.id == u.c.transcript_id)
            .where(t.c.status == "active").order_by(t.c.source, u.c.position, a.c.annotator, a.c.code, a.c.id)
        )
        if origins:
            query = query.where(a.c.origin.in_(list(origins)))
        with self.engine.connect() as connection:
            return [StoredAnnotation(*row) for row in connection.execute(query).tuples()]

    def prediction_model_ids(self) -> list[str]:
        """Ids of the models that have predictions stored, sorted."""
        p = self.predictions
        with self.engine.connect() as connection:
            return sorted(connection.execute(sa.select(p.c.model_id).distinct()).scalars())

    # predictions ----------------------------------------------------------------
    def save_predictions(self, predictions: Sequence[Prediction]) -> int:
        """Insert or replace predictions (one transaction); return how many were written."""
        p = self.predictions
        rows = [{"utterance_id": x.utterance_id, "model_id": x.model_id, "code": x.code,
                 "probability": float(x.probability), "predicted": bool(x.predicted), "direction": x.direction,
                 "direction_p": None if x.direction_p is None else float(x.direction_p), "facet": x.facet,
                 "created_at": now()} for x in predictions]
        if not rows:
            return 0
        with self.transaction() as connection:
            keys = {(r["utterance_id"], r["model_id"]) for r in rows}
            for utterance_id, model_id in keys:
                connection.execute(p.delete().where(p.c.utterance_id == utterance_id, p.c.model_id == model_id))
            for start in range(0, len(rows), 1000):
                connection.execute(p.insert(), rows[start : start + 1000])
        return len(rows)

    def predicted_utterance_ids(self, model_id: str) -> set[str]:
        """Ids of the utterances that already have predictions of ``model_id``."""
        p = self.predictions
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(p.c.utterance_id).where(p.c.model_id == model_id).distinct()).scalars())

    def iter_predictions(self, model_id: str, *, only_predicted: bool = False) -> Iterator[Prediction]:
        """Predictions of one model on active transcripts, in utterance order."""
        p, u, t = self.predictions, self.utterances, self.transcripts
        query = (sa.select(p).join(u, u.c.id == p.c.utterance_id).join(t, t.c.id == u.c.transcript_id)
                 .where(p.c.model_id == model_id, t.c.status == "active").order_by(t.c.source, u.c.position, p.c.code))
        if only_predicted:
            query = query.where(p.c.predicted.is_(True))
        with self.engine.connect() as connection:
            for row in connection.execute(query).mappings():
                yield Prediction(row["utterance_id"], row["model_id"], row["code"], row["probability"],
                                 bool(row["predicted"]), row["direction"], row["direction_p"], row["facet"])

    def count_rows(self, table: str) -> int:
        """Number of rows in a table (for summaries and tests)."""
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(self.tables[table])).scalar_one())

    # questionnaires ---------------------------------------------------------------
    @property
    def questionnaire_answers(self) -> sa.Table:
        """The ``questionnaire_answers`` table (migration 0002), reflected on first use."""
        table = getattr(self, "_questionnaire_answers", None)
        if table is None:
            table = sa.Table("questionnaire_answers", sa.MetaData(), autoload_with=self.engine)
            self._questionnaire_answers = table
        return table

    def save_questionnaire(self, responses: QuestionnaireResponses) -> tuple[int, int]:
        """Store the answers of one questionnaire file in one transaction; return ``(added, updated)``.

        One row per respondent and item: re-importing the same file changes nothing; a changed
        answer is updated, and an item the respondent has since left empty is removed (counted
        as updated). Only the respondents in ``responses`` are touched.
        """
        q = self.questionnaire_answers
        compared = ("municipality", "role", "code", "answer", "score")
        wanted: dict[tuple[str, str], dict[str, object]] = {}
        for response in responses.responses:
            for answer in response.answers:
                wanted[(response.respondent, answer.item_id)] = {
                    "file": responses.path, "respondent": response.respondent, "municipality": response.municipality,
                    "role": responses.role.value, "item": answer.item_id, "code": answer.code, "answer": answer.answer,
                    "score": None if answer.score is None else float(answer.score)}
        respondents = sorted({response.respondent for response in responses.responses})
        added = updated = 0
        stamp = now()
        with self.transaction() as connection:
            existing: dict[tuple[str, str], sa.RowMapping] = {}
            for start in range(0, len(respondents), 500):
                query = sa.select(q).where(q.c.respondent.in_(respondents[start : start + 500]))
                for row in connection.execute(query).mappings():
                    existing[(row["respondent"], row["item"])] = row
            new_rows = []
            for key, values in wanted.items():
                row = existing.get(key)
                if row is None:
                    new_rows.append({**values, "imported_at": stamp})
                elif any(row[name] != values[name] for name in compared):
                    connection.execute(q.update().where(q.c.id == row["id"]).values(**values, imported_at=stamp))
                    updated += 1
            if new_rows:
                connection.execute(q.insert(), new_rows)
                added = len(new_rows)
            stale = [row["id"] for key, row in existing.items() if key not in wanted]
            if stale:
                connection.execute(q.delete().where(q.c.id.in_(stale)))
                updated += len(stale)
        return added, updated

    def questionnaire_frame(self) -> pd.DataFrame:
        """All stored questionnaire answers as a DataFrame.

        Columns ``municipality, code, role, respondent, item, answer, score, file,
        imported_at``; ``code`` and ``score`` are missing (NA) for open and descriptive
        items. The rows with a code and a score are the evidence frame of
        :func:`pipeline.questionnaire.questionnaire_evidence`.
        """
        import pandas as pd

        q = self.questionnaire_answers
        columns = ["municipality", "code", "role", "respondent", "item", "answer", "score", "file", "imported_at"]
        query = sa.select(*(q.c[name] for name in columns)).order_by(q.c.role, q.c.municipality, q.c.respondent, q.c.item)
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(query).mappings()]
        frame = pd.DataFrame(rows, columns=columns)
        frame["score"] = pd.to_numeric(frame["score"]).astype(float)
        return frame


def _utterance_row(utterance: Utterance) -> dict[str, object]:
    return {
        "id": utterance.utterance_id, "transcript_id": utterance.transcript_id, "turn": utterance.turn,
        "position": utterance.position, "speaker": utterance.speaker.value, "start_offset": utterance.start,
        "end_offset": utterance.end, "text": utterance.text, "question": utterance.question,
        "municipality": utterance.municipality, "respondent": utterance.respondent, "role": utterance.role.value,
    }


def _utterance_from_row(row: sa.RowMapping) -> Utterance:
    return Utterance(
        utterance_id=row["id"], transcript_id=row["transcript_id"], turn=row["turn"], position=row["position"],
        speaker=Speaker(row["speaker"]), start=row["start_offset"], end=row["end_offset"], text=row["text"],
        municipality=row["municipality"], respondent=row["respondent"], role=Role(row["role"]),
        question=row["question"],
    )


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration (transactional)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str) -> Store:
    """Connect to the database at ``url``, creating or upgrading its schema."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    upgrade_schema(engine)
    return Store(engine)


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
