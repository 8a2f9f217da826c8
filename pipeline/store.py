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
from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import ReviewConflictError, ReviewItemNotFoundError, UserExistsError
from pipeline.records import (
    Annotation, Coding, Prediction, ReviewDecision, ReviewItem, ReviewStatus, Role, Speaker, Transcript, User,
    UserRole, Utterance,
)

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.questionnaire import QuestionnaireResponses

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
        stamp = now()
        rows = [{"utterance_id": x.utterance_id, "model_id": x.model_id, "code": x.code,
                 "probability": float(x.probability), "predicted": bool(x.predicted), "direction": x.direction,
                 "direction_p": None if x.direction_p is None else float(x.direction_p), "facet": x.facet,
                 "created_at": stamp} for x in predictions]
        if not rows:
            return 0
        by_model: dict[str, list[str]] = {}
        for row in rows:
            by_model.setdefault(row["model_id"], []).append(row["utterance_id"])
        with self.transaction() as connection:
            # one DELETE per 500 utterances, not one per utterance (issue 8)
            for model_id, utterance_ids in by_model.items():
                unique = list(dict.fromkeys(utterance_ids))
                for start in range(0, len(unique), 500):
                    connection.execute(p.delete().where(p.c.model_id == model_id,
                                                        p.c.utterance_id.in_(unique[start : start + 500])))
            if connection.dialect.name == "sqlite":
                # plain tuples through the driver: SQLAlchemy's per-row processing was most of
                # the classify stage's own time (issue 8)
                columns = list(rows[0])
                statement = f"INSERT INTO {p.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                connection.exec_driver_sql(statement, [tuple(row[c] for c in columns) for row in rows])
            else:
                for start in range(0, len(rows), 1000):
                    connection.execute(p.insert(), rows[start : start + 1000])
        return len(rows)

    def predicted_utterance_ids(self, model_id: str) -> set[str]:
        """Ids of the utterances that already have predictions of ``model_id``."""
        p = self.predictions
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(p.c.utterance_id).where(p.c.model_id == model_id).distinct()).scalars())

    def _unpredicted(self, model_id: str):  # type: ignore[no-untyped-def]
        p, u = self.predictions, self.utterances
        return ~sa.exists().where(p.c.utterance_id == u.c.id, p.c.model_id == model_id)

    def pending_transcript_ids(self, model_id: str) -> list[str]:
        """Active transcripts with utterances that have no predictions of ``model_id``, by source."""
        u, t = self.utterances, self.transcripts
        query = (sa.select(t.c.id).where(t.c.status == "active", sa.exists().where(
            u.c.transcript_id == t.c.id, self._unpredicted(model_id))).order_by(t.c.source))
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def iter_pending_utterances(self, model_id: str, transcript_id: str | None = None, *,
                                page_size: int = 2000) -> Iterator[Utterance]:
        """Active utterances without predictions of ``model_id`` (of one transcript, or all),
        in transcript and position order, streamed.

        Read a page of at most ``page_size`` at a time, by keyset (the transcripts in source
        order, then ``position > last``), each page its own short read: no read stays open
        while the caller stores what it made of the last page, so on SQLite the WAL can be
        checkpointed during a long run (issue 8)."""
        u, t = self.utterances, self.transcripts
        transcript_ids = self.pending_transcript_ids(model_id) if transcript_id is None else [transcript_id]
        for current in transcript_ids:
            last = -1
            while True:
                query = (sa.select(u).join(t, t.c.id == u.c.transcript_id)
                         .where(u.c.transcript_id == current, t.c.status == "active", u.c.position > last,
                                self._unpredicted(model_id))
                         .order_by(u.c.position).limit(page_size))
                with self.engine.connect() as connection:
                    rows = connection.execute(query).mappings().all()
                for row in rows:
                    yield _utterance_from_row(row)
                if len(rows) < page_size:
                    break
                last = rows[-1]["position"]

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

    def codings_frame(self, model_id: str | None) -> "pd.DataFrame":
        """The codings table the ratings are computed from: every human annotation (weight 1,
        source ``human``) and the predicted codes of ``model_id`` (weight = probability, source
        ``predicted``) on active transcripts, with the utterance's metadata and text.
        Columns: see :data:`pipeline.aggregate.CODING_COLUMNS` plus ``direction_p`` and ``text``."""
        import pandas as pd

        with self.engine.connect() as connection:
            rows = [tuple(row) for query in self._codings_queries(model_id) for row in connection.execute(query)]
        return pd.DataFrame(rows, columns=CODINGS_FRAME_COLUMNS)

    def _codings_queries(self, model_id: str | None) -> list[sa.Select]:  # type: ignore[type-arg]
        a, p, u, t = self.annotations, self.predictions, self.utterances, self.transcripts
        meta = (u.c.id.label("utterance_id"), u.c.transcript_id, u.c.municipality, u.c.respondent, u.c.role, u.c.text)
        human = (sa.select(*meta, a.c.code, a.c.direction, a.c.facet, sa.literal(1.0).label("weight"),
                           sa.literal("human").label("source"), sa.literal(None).label("direction_p"))
                 .join(a, a.c.utterance_id == u.c.id).join(t, t.c.id == u.c.transcript_id).where(t.c.status == "active"))
        queries = [human]
        if model_id:
            queries.append(
                sa.select(*meta, p.c.code, p.c.direction, p.c.facet, p.c.probability.label("weight"),
                          sa.literal("predicted").label("source"), p.c.direction_p)
                .join(p, p.c.utterance_id == u.c.id).join(t, t.c.id == u.c.transcript_id)
                .where(t.c.status == "active", p.c.model_id == model_id, p.c.predicted.is_(True)))
        return queries

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


    # review queue, annotators and audit trail (issue 6) ------------------------------------
    @cached_property
    def users(self) -> sa.Table:
        """The ``users`` table (migration 0003)."""
        return sa.Table("users", sa.MetaData(), autoload_with=self.engine)

    @cached_property
    def review_decisions(self) -> sa.Table:
        """The ``review_decisions`` table: the audit trail (migration 0003)."""
        return sa.Table("review_decisions", sa.MetaData(), autoload_with=self.engine)

    def add_user(self, name: str, role: str, password_hash: str, at: str) -> User:
        """Create a user; raise :class:`UserExistsError` when the name is taken."""
        users = self.users
        with self.transaction() as connection:
            if connection.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None:
                raise UserExistsError(f"user {name!r} already exists; pick another name or run 'codeer users list'.")
            connection.execute(users.insert().values(name=name, role=role, password_hash=password_hash,
                                                     active=True, created_at=at))
        return User(name, UserRole(role), at, True)

    def user_with_hash(self, name: str) -> tuple[User, str] | None:
        """A user and their password hash, or None when no such user exists."""
        users = self.users
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(users).where(users.c.name == name)).mappings().first()
        if row is None:
            return None
        return User(row["name"], UserRole(row["role"]), row["created_at"], bool(row["active"])), row["password_hash"]

    def set_user_password_hash(self, name: str, password_hash: str) -> None:
        """Replace a user's password hash (rehashing with newer parameters)."""
        users = self.users
        with self.transaction() as connection:
            connection.execute(users.update().where(users.c.name == name).values(password_hash=password_hash))

    def list_users(self) -> list[User]:
        """Every user, by name."""
        users = self.users
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(users).order_by(users.c.name)).mappings().all()
        return [User(r["name"], UserRole(r["role"]), r["created_at"], bool(r["active"])) for r in rows]

    def upsert_review_items(self, items: Sequence[ReviewItem]) -> int:
        """Insert new review items; refresh priority and reasons of those still pending.

        Claimed, decided and retired items are left as they are. Returns how many items
        were new. One transaction.
        """
        r = self.review_items
        with self.transaction() as connection:
            ids = [item.item_id for item in items]
            existing: dict[str, str] = {}
            for start in range(0, len(ids), 500):
                existing.update(connection.execute(
                    sa.select(r.c.id, r.c.status).where(r.c.id.in_(ids[start:start + 500]))).tuples().all())
            new_rows = []
            for item in items:
                values = {"priority": item.priority, "reasons": json.dumps(list(item.reasons)),
                          "uncertainty": item.uncertainty, "impact": item.impact}
                status = existing.get(item.item_id)
                if status is None:
                    new_rows.append({"id": item.item_id, "utterance_id": item.utterance_id, "model_id": item.model_id,
                                     "status": item.status.value, "version": 0, "created_at": item.created_at,
                                     **values})
                elif status == ReviewStatus.PENDING:
                    connection.execute(r.update().where(r.c.id == item.item_id).values(**values))
            for start in range(0, len(new_rows), 1000):  # one multi-row insert per 1000 items (issue 8)
                connection.execute(r.insert(), new_rows[start : start + 1000])
            n_new = len(new_rows)
        return n_new

    def retire_review_items(self, utterance_ids: Iterable[str], *, keep_model_id: str, user: str, at: str,
                            note: str) -> int:
        """Retire open items of other models on these utterances (status ``retired``, kept).

        Every retired item gets an audit row with ``note``. Returns how many were retired.
        """
        r, d = self.review_items, self.review_decisions
        ids = list(dict.fromkeys(utterance_ids))
        n_retired = 0
        open_statuses = (ReviewStatus.PENDING.value, ReviewStatus.CLAIMED.value)
        with self.transaction() as connection:
            for start in range(0, len(ids), 500):
                rows = connection.execute(sa.select(r.c.id, r.c.utterance_id, r.c.status, r.c.version).where(
                    r.c.utterance_id.in_(ids[start:start + 500]), r.c.model_id != keep_model_id,
                    r.c.status.in_(open_statuses))).all()
                for row in rows:
                    result = connection.execute(r.update().where(r.c.id == row.id, r.c.version == row.version).values(
                        status=ReviewStatus.RETIRED.value, version=row.version + 1, claimed_by=None,
                        claimed_until=None, decided_by=user, decided_at=at))
                    if result.rowcount != 1:
                        continue
                    connection.execute(d.insert().values(
                        item_id=row.id, utterance_id=row.utterance_id, action="retire", user_name=user, at=at,
                        codings="[]", previous=None, status_before=row.status,
                        status_after=ReviewStatus.RETIRED.value, version_after=row.version + 1, undone=False,
                        note=note))
                    n_retired += 1
        return n_retired

    def review_items_by_id(self, ids: Iterable[str]) -> dict[str, ReviewItem]:
        """Review items by id (missing ids are left out)."""
        r = self.review_items
        ids = list(ids)
        found: dict[str, ReviewItem] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                for row in connection.execute(sa.select(r).where(r.c.id.in_(ids[start:start + 500]))).mappings():
                    found[row["id"]] = self._review_item(row)
        return found

    def list_review_items(self, statuses: Sequence[str] | None = None, *, limit: int | None = None,
                          claimed_by: str | None = None) -> list[ReviewItem]:
        """Review items, highest priority first (ties: oldest, then id)."""
        r = self.review_items
        query = sa.select(r).order_by(r.c.priority.desc(), r.c.created_at, r.c.id)
        if statuses:
            query = query.where(r.c.status.in_([str(s) for s in statuses]))
        if claimed_by is not None:
            query = query.where(r.c.claimed_by == claimed_by)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [self._review_item(row) for row in connection.execute(query).mappings()]

    def claimable_review_items(self, user: str, at: str, limit: int) -> list[tuple[ReviewItem, str]]:
        """Items ``user`` may claim, highest priority first, with their utterance text.

        Pending items, items whose claim expired before ``at``, and items ``user`` holds.
        """
        r, u = self.review_items, self.utterances
        query = (
            sa.select(r, u.c.text.label("utterance_text")).join(u, u.c.id == r.c.utterance_id)
            .where(sa.or_(r.c.status == ReviewStatus.PENDING.value,
                          sa.and_(r.c.status == ReviewStatus.CLAIMED.value,
                                  sa.or_(r.c.claimed_until < at, r.c.claimed_by == user))))
            .order_by(r.c.priority.desc(), r.c.created_at, r.c.id).limit(limit)
        )
        with self.engine.connect() as connection:
            return [(self._review_item(row), row["utterance_text"]) for row in connection.execute(query).mappings()]

    def claim_review_item(self, item_id: str, user: str, at: str, until: str) -> ReviewItem | None:
        """Claim one item for ``user`` until ``until``; None when someone else holds it or it is decided.

        Taking over an expired claim (or a pending item) raises the version, so a decision
        prepared on the old claim can no longer land; renewing one's own claim does not.
        """
        r = self.review_items
        with self.transaction() as connection:
            result = connection.execute(
                r.update().where(
                    r.c.id == item_id,
                    sa.or_(r.c.status == ReviewStatus.PENDING.value,
                           sa.and_(r.c.status == ReviewStatus.CLAIMED.value,
                                   sa.or_(r.c.claimed_until < at, r.c.claimed_by == user))))
                .values(status=ReviewStatus.CLAIMED.value, claimed_until=until, claimed_by=user,
                        version=sa.case((r.c.claimed_by == user, r.c.version), else_=r.c.version + 1)))
            if result.rowcount != 1:
                return None
            row = connection.execute(sa.select(r).where(r.c.id == item_id)).mappings().one()
        return self._review_item(row)

    def release_review_claims(self, user: str) -> int:
        """Give back every item ``user`` holds (status pending again); return how many."""
        r = self.review_items
        with self.transaction() as connection:
            result = connection.execute(r.update().where(
                r.c.status == ReviewStatus.CLAIMED.value, r.c.claimed_by == user).values(
                status=ReviewStatus.PENDING.value, claimed_by=None, claimed_until=None))
        return int(result.rowcount)

    def decide_review_item(
        self, item_id: str, *, user: str, expected_version: int, action: str, status: ReviewStatus,
        codings: Sequence[Coding], codebook_version: str, at: str, note: str = "",
    ) -> ReviewDecision:
        """Record one decision in ONE transaction, guarded by the item's version.

        Accept and correct replace ``user``'s review annotations of the utterance by
        ``codings`` (origin ``review``); skip leaves annotations alone. Every decision gets
        an audit row. Raises :class:`ReviewConflictError` when the item was decided, retired,
        changed or claimed by someone else since ``expected_version``; nothing is written then.
        """
        r, d, a = self.review_items, self.review_decisions, self.annotations
        open_statuses = (ReviewStatus.PENDING.value, ReviewStatus.CLAIMED.value)
        with self.transaction() as connection:
            before = connection.execute(sa.select(r).where(r.c.id == item_id)).mappings().first()
            if before is None:
                raise ReviewItemNotFoundError(f"review item {item_id!r} does not exist; reload the queue.")
            result = connection.execute(
                r.update().where(
                    r.c.id == item_id, r.c.version == expected_version, r.c.status.in_(open_statuses),
                    sa.or_(r.c.status == ReviewStatus.PENDING.value, r.c.claimed_by.is_(None),
                           r.c.claimed_by == user, r.c.claimed_until < at))
                .values(status=status.value, version=r.c.version + 1, decided_by=user, decided_at=at,
                        claimed_by=None, claimed_until=None))
            if result.rowcount != 1:
                current = connection.execute(sa.select(r).where(r.c.id == item_id)).mappings().one()
                raise ReviewConflictError(self._conflict_message(current, user, expected_version, at))
            previous: list[dict[str, object]] | None = None
            if action in ("accept", "correct"):
                previous = self._replace_review_annotations(connection, before["utterance_id"], user, codings,
                                                            codebook_version, at)
            version_after = int(before["version"]) + 1
            decision_id = connection.execute(d.insert().values(
                item_id=item_id, utterance_id=before["utterance_id"], action=action, user_name=user, at=at,
                codings=_codings_json(codings), previous=None if previous is None else json.dumps(previous),
                status_before=before["status"], status_after=status.value, version_after=version_after,
                undone=False, note=note, codebook_version=codebook_version)).inserted_primary_key[0]
        return ReviewDecision(int(decision_id), item_id, before["utterance_id"], action, user, at, tuple(codings),
                              before["status"], status.value, version_after, False, note, codebook_version)

    def undo_last_review_decision(self, user: str, at: str, claim_until: str) -> ReviewDecision | None:
        """Undo ``user``'s newest standing decision in ONE transaction; None when there is none.

        The item goes back to ``user`` as claimed and the annotations the decision replaced
        come back. Raises :class:`ReviewConflictError` when the item changed since.
        """
        r, d = self.review_items, self.review_decisions
        with self.transaction() as connection:
            last = connection.execute(
                sa.select(d).where(d.c.user_name == user, d.c.action.in_(("accept", "correct", "skip")),
                                   d.c.undone.is_(False)).order_by(d.c.id.desc()).limit(1)).mappings().first()
            if last is None:
                return None
            result = connection.execute(
                r.update().where(r.c.id == last["item_id"], r.c.version == last["version_after"])
                .values(status=ReviewStatus.CLAIMED.value, claimed_by=user, claimed_until=claim_until,
                        decided_by=None, decided_at=None, version=r.c.version + 1))
            if result.rowcount != 1:
                current = connection.execute(sa.select(r).where(r.c.id == last["item_id"])).mappings().one()
                raise ReviewConflictError(
                    f"cannot undo your {last['action']} of review item {last['item_id'][:12]}: it changed since "
                    f"(now {current['status']}, by {current['decided_by'] or current['claimed_by'] or 'nobody'}). "
                    "Open the item and decide it again instead.")
            if last["action"] in ("accept", "correct"):
                self._restore_review_annotations(connection, last["utterance_id"], user,
                                                 json.loads(last["previous"] or "[]"))
            connection.execute(d.update().where(d.c.id == last["id"]).values(undone=True))
            version_after = int(last["version_after"]) + 1
            undo_id = connection.execute(d.insert().values(
                item_id=last["item_id"], utterance_id=last["utterance_id"], action="undo", user_name=user, at=at,
                codings=last["codings"], previous=None, status_before=last["status_after"],
                status_after=ReviewStatus.CLAIMED.value, version_after=version_after, undone=False,
                note=f"undid decision {last['id']} ({last['action']})",
                codebook_version=last["codebook_version"])).inserted_primary_key[0]
        return ReviewDecision(int(undo_id), last["item_id"], last["utterance_id"], "undo", user, at,
                              _codings_from_json(last["codings"]), last["status_after"], ReviewStatus.CLAIMED.value,
                              version_after, False, f"undid decision {last['id']} ({last['action']})",
                              last["codebook_version"] or "")

    def list_review_decisions(self, *, user: str | None = None, item_id: str | None = None,
                              limit: int | None = 200) -> list[ReviewDecision]:
        """The audit trail, newest first."""
        d = self.review_decisions
        query = sa.select(d).order_by(d.c.id.desc())
        if user is not None:
            query = query.where(d.c.user_name == user)
        if item_id is not None:
            query = query.where(d.c.item_id == item_id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [self._review_decision(row) for row in connection.execute(query).mappings()]

    def count_review_decisions(self, user: str, since: str) -> int:
        """Standing accept/correct/skip decisions of ``user`` made at or after ``since``."""
        d = self.review_decisions
        query = sa.select(sa.func.count()).select_from(d).where(
            d.c.user_name == user, d.c.at >= since, d.c.undone.is_(False),
            d.c.action.in_(("accept", "correct", "skip")))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def review_status_counts(self) -> dict[str, int]:
        """Number of review items per status."""
        r = self.review_items
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(r.c.status, sa.func.count()).group_by(r.c.status)).tuples().all()
        return {status: int(n) for status, n in rows}

    def utterance_neighbours(self, utterance_id: str, before: int = 2, after: int = 2) -> tuple[list[Utterance], list[Utterance]]:
        """The utterances just before and after one utterance in its transcript, in order."""
        u = self.utterances
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(u.c.transcript_id, u.c.position).where(u.c.id == utterance_id)).first()
            if row is None:
                return [], []
            rows = connection.execute(sa.select(u).where(
                u.c.transcript_id == row.transcript_id, u.c.position >= row.position - before,
                u.c.position <= row.position + after, u.c.id != utterance_id).order_by(u.c.position)).mappings().all()
        neighbours = [_utterance_from_row(r) for r in rows]
        return ([n for n in neighbours if n.position < row.position], [n for n in neighbours if n.position > row.position])

    def predictions_by_utterance(self, model_id: str, utterance_ids: Iterable[str]) -> dict[str, list[Prediction]]:
        """Predictions of one model per utterance, most probable code first."""
        p = self.predictions
        ids = list(dict.fromkeys(utterance_ids))
        found: dict[str, list[Prediction]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                query = (sa.select(p).where(p.c.model_id == model_id, p.c.utterance_id.in_(ids[start:start + 500]))
                         .order_by(p.c.utterance_id, p.c.probability.desc(), p.c.code))
                for row in connection.execute(query).mappings():
                    found.setdefault(row["utterance_id"], []).append(Prediction(
                        row["utterance_id"], row["model_id"], row["code"], row["probability"], bool(row["predicted"]),
                        row["direction"], row["direction_p"], row["facet"]))
        return found

    def human_labels(self, utterance_ids: Iterable[str]) -> dict[str, tuple[Coding, ...]]:
        """The human codings of utterances that have any (review codings win over seed codings).

        An utterance whose standing review decision was "no code" maps to an empty tuple.
        """
        a, d = self.annotations, self.review_decisions
        ids = list(dict.fromkeys(utterance_ids))
        review: dict[str, list[Coding]] = {}
        other: dict[str, list[Coding]] = {}
        decided: set[str] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for row in connection.execute(sa.select(a.c.utterance_id, a.c.code, a.c.direction, a.c.facet, a.c.origin)
                                              .where(a.c.utterance_id.in_(chunk)).order_by(a.c.id)):
                    target = review if row.origin == "review" else other
                    target.setdefault(row.utterance_id, []).append(Coding(row.code, row.direction, row.facet))
                decided.update(connection.execute(sa.select(d.c.utterance_id).where(
                    d.c.utterance_id.in_(chunk), d.c.action.in_(("accept", "correct")), d.c.undone.is_(False))).scalars())
        labels = {uid: tuple(codings) for uid, codings in other.items()}
        labels.update({uid: () for uid in decided if uid not in review})
        labels.update({uid: tuple(codings) for uid, codings in review.items()})
        return labels

    def evidence_counts(self, municipalities: Iterable[str] | None = None) -> dict[tuple[str, str], tuple[int, int]]:
        """Human evidence per ``(municipality, code)`` on active transcripts: ``(n_plus, n_minus)``.

        With ``municipalities``, only theirs: what one batch of the review queue needs, at a
        cost that does not grow with the rest of the corpus (issue 8)."""
        a, u, t = self.annotations, self.utterances, self.transcripts
        query = (sa.select(u.c.municipality, a.c.code, a.c.direction, sa.func.count(sa.distinct(a.c.utterance_id)))
                 .join(u, u.c.id == a.c.utterance_id).join(t, t.c.id == u.c.transcript_id)
                 .where(t.c.status == "active").group_by(u.c.municipality, a.c.code, a.c.direction))
        names = None if municipalities is None else sorted(set(municipalities))
        queries = [query] if names is None else [query.where(u.c.municipality.in_(names[start:start + 500]))
                                                 for start in range(0, len(names), 500)]
        counts: dict[tuple[str, str], tuple[int, int]] = {}
        with self.engine.connect() as connection:
            for part in queries:
                for municipality, code, direction, n in connection.execute(part).tuples():
                    plus, minus = counts.get((municipality, code), (0, 0))
                    counts[(municipality, code)] = (plus + n * (direction == "+"), minus + n * (direction == "-"))
        return counts

    def iter_review_decisions_for_training(self) -> Iterator[tuple[ReviewDecision, Utterance, str, str]]:
        """Standing accept/correct decisions: ``(decision, utterance, source, content_hash)``, oldest first."""
        d, u, t = self.review_decisions, self.utterances, self.transcripts
        query = (sa.select(u, d.c.id.label("decision_id"), d.c.item_id, d.c.utterance_id, d.c.action, d.c.user_name,
                           d.c.at, d.c.codings, d.c.status_before, d.c.status_after, d.c.version_after, d.c.undone,
                           d.c.note, d.c.codebook_version, t.c.source.label("transcript_source"),
                           t.c.content_hash.label("transcript_hash"))
                 .join(u, u.c.id == d.c.utterance_id).join(t, t.c.id == u.c.transcript_id)
                 .where(d.c.action.in_(("accept", "correct")), d.c.undone.is_(False), t.c.status == "active")
                 .order_by(d.c.id))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        for row in rows:
            decision = ReviewDecision(int(row["decision_id"]), row["item_id"], row["utterance_id"], row["action"],
                                      row["user_name"], row["at"], _codings_from_json(row["codings"]),
                                      row["status_before"], row["status_after"], int(row["version_after"]),
                                      bool(row["undone"]), row["note"] or "", row["codebook_version"] or "")
            yield decision, _utterance_from_row(row), row["transcript_source"], row["transcript_hash"]

    def _replace_review_annotations(self, connection: Connection, utterance_id: str, user: str,
                                    codings: Sequence[Coding], codebook_version: str, at: str) -> list[dict[str, object]]:
        a = self.annotations
        mine = sa.and_(a.c.utterance_id == utterance_id, a.c.annotator == user, a.c.origin == "review")
        previous = [dict(row) for row in connection.execute(
            sa.select(a.c.code, a.c.direction, a.c.facet, a.c.codebook_version, a.c.created_at)
            .where(mine).order_by(a.c.id)).mappings()]
        connection.execute(a.delete().where(mine))
        for coding in codings:
            connection.execute(a.insert().values(
                utterance_id=utterance_id, code=coding.code, direction=coding.direction, facet=coding.facet,
                annotator=user, origin="review", codebook_version=codebook_version, created_at=at))
        return previous

    def _restore_review_annotations(self, connection: Connection, utterance_id: str, user: str,
                                    rows: list[dict[str, object]]) -> None:
        a = self.annotations
        connection.execute(a.delete().where(a.c.utterance_id == utterance_id, a.c.annotator == user,
                                            a.c.origin == "review"))
        for row in rows:
            connection.execute(a.insert().values(utterance_id=utterance_id, annotator=user, origin="review", **row))

    @staticmethod
    def _conflict_message(row: sa.RowMapping, user: str, expected_version: int, at: str) -> str:
        item = f"review item {row['id'][:12]}"
        status = row["status"]
        if status in (ReviewStatus.ACCEPTED, ReviewStatus.CORRECTED, ReviewStatus.SKIPPED):
            return (f"{item} was already {status} by {row['decided_by']} at {row['decided_at']}; your decision "
                    "was not saved. Move on to the next item (or ask them to undo).")
        if status == ReviewStatus.RETIRED:
            return (f"{item} was retired at {row['decided_at']} ({row['decided_by']}): a newer model replaced it. "
                    "Your decision was not saved; move on to the next item.")
        if status == ReviewStatus.CLAIMED and row["claimed_by"] != user and (row["claimed_until"] or "") >= at:
            return (f"{item} is claimed by {row['claimed_by']} until {row['claimed_until']}; your decision was not "
                    "saved. Take another item.")
        return (f"{item} changed since you opened it (version {expected_version}, now {row['version']}); your "
                "decision was not saved. Reload the item and decide again.")

    @staticmethod
    def _review_item(row: sa.RowMapping) -> ReviewItem:
        return ReviewItem(
            item_id=row["id"], utterance_id=row["utterance_id"], model_id=row["model_id"],
            status=ReviewStatus(row["status"]), priority=float(row["priority"]),
            reasons=tuple(json.loads(row["reasons"] or "[]")), uncertainty=float(row["uncertainty"]),
            impact=float(row["impact"]), version=int(row["version"]), created_at=row["created_at"],
            claimed_by=row["claimed_by"], claimed_until=row["claimed_until"], decided_by=row["decided_by"],
            decided_at=row["decided_at"])

    @staticmethod
    def _review_decision(row: sa.RowMapping) -> ReviewDecision:
        return ReviewDecision(int(row["id"]), row["item_id"], row["utterance_id"], row["action"], row["user_name"],
                              row["at"], _codings_from_json(row["codings"]), row["status_before"], row["status_after"],
                              int(row["version_after"]), bool(row["undone"]), row["note"] or "",
                              row["codebook_version"] or "")

    # incremental runs and streaming at scale (issue 8) ---------------------------------------
    def active_version(self, source: str) -> tuple[str, int] | None:
        """``(transcript id, n utterances)`` of the active version of ``source``, or None."""
        t, u = self.transcripts, self.utterances
        with self.engine.connect() as connection:
            active = connection.execute(
                sa.select(t.c.id).where(t.c.source == source, t.c.status == "active")).scalar_one_or_none()
            if active is None:
                return None
            n = connection.execute(sa.select(sa.func.count()).select_from(u).where(u.c.transcript_id == active))
            return str(active), int(n.scalar_one())

    def iter_codings_frames(self, model_id: str | None, *, municipalities_per_frame: int = 10) -> Iterator["pd.DataFrame"]:
        """:meth:`codings_frame` a few municipalities at a time, in municipality order: every
        row of an utterance comes in the same frame, and the rows of all frames together are
        those of :meth:`codings_frame`. Each frame is its own short read (issue 8)."""
        import pandas as pd

        u, t = self.utterances, self.transcripts
        with self.engine.connect() as connection:
            names = list(connection.execute(
                sa.select(u.c.municipality).join(t, t.c.id == u.c.transcript_id).where(t.c.status == "active")
                .distinct().order_by(u.c.municipality)).scalars())
        for start in range(0, len(names), municipalities_per_frame):
            chunk = names[start : start + municipalities_per_frame]
            with self.engine.connect() as connection:
                rows = [tuple(row) for query in self._codings_queries(model_id)
                        for row in connection.execute(query.where(u.c.municipality.in_(chunk)))]
            yield pd.DataFrame(rows, columns=CODINGS_FRAME_COLUMNS)


CODINGS_FRAME_COLUMNS = ["utterance_id", "transcript_id", "municipality", "respondent", "role", "text", "code",
                         "direction", "facet", "weight", "source", "direction_p"]


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


# review queue helpers (issue 6) ------------------------------------------------------------
def _codings_json(codings: Sequence[Coding]) -> str:
    return json.dumps([{"code": c.code, "direction": c.direction, "facet": c.facet} for c in codings])


def _codings_from_json(text: str | None) -> tuple[Coding, ...]:
    return tuple(Coding(c["code"], c["direction"], c.get("facet")) for c in json.loads(text or "[]"))
