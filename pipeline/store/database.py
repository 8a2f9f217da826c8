"""The database: every SQL statement of codeer lives in this package, in this module and the
query mixins its :class:`Store` inherits (:mod:`pipeline.store.review` for users, the review
queue and its audit trail; :mod:`pipeline.store.questionnaire` for questionnaire answers).
Import from :mod:`pipeline.store`.

SQLAlchemy 2 Core over SQLite (WAL) by default or any SQLAlchemy URL (PostgreSQL included).
The schema is created and upgraded by Alembic migrations in ``pipeline/store/migrations``. The
embedding cache (its own SQLite file) is :class:`pipeline.coding.EmbeddingCache`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.records import Annotation, Coding, Prediction, Transcript, Utterance
from pipeline.store.fragments import FragmentQueries
from pipeline.store.privacy import PrivacyQueries
from pipeline.store.questionnaire import QuestionnaireQueries
from pipeline.store.nightly import NightlyQueries
from pipeline.store.review import ReviewQueries, UserQueries
from pipeline.store.rows import StoredAnnotation, StoredTranscript, _utterance_from_row, _utterance_row, chunks, now
from pipeline.store.runs import RunQueries
from pipeline.store.sessions import SessionQueries

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:  # DB-API objects: untyped
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store(UserQueries, ReviewQueries, NightlyQueries, QuestionnaireQueries, FragmentQueries, RunQueries,
            SessionQueries, PrivacyQueries):
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
                # its open review items retire in the same transaction: none is ever handed out (issue 18)
                self.retire_transcript_review_items(connection, active, user="codeer", at=now(),
                                                    note=f"transcript superseded by {transcript.transcript_id}")
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
        for old in old_rows:
            candidates = new_by_text.get(old["text"])
            if not candidates:
                continue
            if old["utterance_id"] not in old_positions:
                index = used.get(old["text"], 0)
                if index >= len(candidates):
                    continue
                old_positions[old["utterance_id"]] = candidates[index]
                used[old["text"]] = index + 1
            target = old_positions[old["utterance_id"]]
            values = {k: old[k] for k in ("code", "direction", "facet", "annotator", "origin", "codebook_version", "created_at")}
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
            for chunk in chunks(ids, 500):
                for row in connection.execute(sa.select(u).where(u.c.id.in_(chunk))).mappings():
                    found[row["id"]] = _utterance_from_row(row)
        return found

    def transcript_hashes(self) -> dict[str, str]:
        """Content hash of every stored transcript version, by transcript id."""
        t = self.transcripts
        with self.engine.connect() as connection:
            return dict(connection.execute(sa.select(t.c.id, t.c.content_hash)).all())

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
            return [StoredAnnotation(*row) for row in connection.execute(query)]

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
        for prediction in predictions:
            by_model.setdefault(prediction.model_id, []).append(prediction.utterance_id)
        with self.transaction() as connection:
            # one DELETE per 500 utterances, not one per utterance (issue 8)
            for model_id, utterance_ids in by_model.items():
                unique = list(dict.fromkeys(utterance_ids))
                for chunk in chunks(unique, 500):
                    connection.execute(p.delete().where(p.c.model_id == model_id,
                                                        p.c.utterance_id.in_(chunk)))
            if connection.dialect.name == "sqlite":
                # plain tuples through the driver: SQLAlchemy's per-row processing was most of
                # the classify stage's own time (issue 8)
                columns = list(rows[0])
                statement = f"INSERT INTO {p.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                connection.exec_driver_sql(statement, [tuple(row[c] for c in columns) for row in rows])
            else:
                for batch in chunks(rows, 1000):
                    connection.execute(p.insert(), batch)
        return len(rows)

    def predicted_utterance_ids(self, model_id: str) -> set[str]:
        """Ids of the utterances that already have predictions of ``model_id``."""
        p = self.predictions
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(p.c.utterance_id).where(p.c.model_id == model_id).distinct()).scalars())

    def _unpredicted(self, model_id: str) -> sa.ColumnElement[bool]:
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
        Columns: see :data:`pipeline.rating.CODING_COLUMNS` plus ``direction_p``, ``text`` and ``turn``
        (the utterance's turn in its transcript, for the report's links)."""
        import pandas as pd

        with self.engine.connect() as connection:
            rows = [tuple(row) for query in self._codings_queries(model_id) for row in connection.execute(query)]
        return pd.DataFrame(rows, columns=CODINGS_FRAME_COLUMNS)

    def _codings_queries(self, model_id: str | None) -> list[sa.Select[Any]]:
        a, p, u, t = self.annotations, self.predictions, self.utterances, self.transcripts
        meta = (u.c.id.label("utterance_id"), u.c.transcript_id, u.c.municipality, u.c.respondent, u.c.role, u.c.text,
                u.c.turn)
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

    def content_source(self, transcript_id: str) -> tuple[str, str] | None:
        """``(source, path)`` of the active transcript with this content, or None (issue 20)."""
        t = self.transcripts
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(t.c.source, t.c.path).where(t.c.id == transcript_id, t.c.status == "active")).first()
        return None if row is None else (row.source, row.path)

    def rename_source(self, old_source: str, new_source: str, path: str) -> None:
        """Move every version of ``old_source`` to ``new_source``; the active one now lies at ``path``."""
        t = self.transcripts
        with self.transaction() as connection:
            connection.execute(t.update().where(t.c.source == old_source, t.c.status == "active").values(path=path))
            connection.execute(t.update().where(t.c.source == old_source).values(source=new_source))

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
        for chunk in chunks(names, municipalities_per_frame):
            with self.engine.connect() as connection:
                rows = [tuple(row) for query in self._codings_queries(model_id)
                        for row in connection.execute(query.where(u.c.municipality.in_(chunk)))]
            yield pd.DataFrame(rows, columns=CODINGS_FRAME_COLUMNS)


CODINGS_FRAME_COLUMNS = ["utterance_id", "transcript_id", "municipality", "respondent", "role", "text", "turn", "code",
                         "direction", "facet", "weight", "source", "direction_p"]


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
            # password hashes and transcripts: readable by the user only (issue 20); SQLite
            # gives its -wal and -shm files the mode of the database file
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    upgrade_schema(engine)
    return Store(engine)
