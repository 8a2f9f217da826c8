"""The evidence pages' SQL (issue 21): a transcript's utterances with their human and model
codes, the fragments of one code in one municipality, and the hand-coding item through which a
person codes any utterance; mixed into :class:`pipeline.store.database.Store`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.records import MANUAL_MODEL_ID, Coding, ReviewItem, ReviewStatus, Utterance
from pipeline.store.rows import _utterance_from_row


@dataclass(frozen=True, slots=True)
class HumanCoding:
    """One human code on one utterance, with who gave it and how (``seed``, ``review``, ...)."""

    utterance_id: str
    code: str
    direction: str
    facet: str | None
    annotator: str
    origin: str
    created_at: str


@dataclass(frozen=True, slots=True)
class TranscriptInfo:
    """What the transcript page shows of a transcript: no header text, only the codes."""

    transcript_id: str
    source: str
    municipality: str
    respondent: str
    role: str
    kind: str
    status: str


class FragmentQueries:
    """Utterances with their codes, by transcript or by municipality; a mixin of the Store."""

    engine: Engine
    transcripts: sa.Table
    utterances: sa.Table
    annotations: sa.Table
    predictions: sa.Table
    review_items: sa.Table

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[Connection]: ...

        @staticmethod
        def _review_item(row: sa.RowMapping) -> ReviewItem: ...

    def review_codings_of(self, utterance_id: str, user: str) -> tuple[Coding, ...]:
        """``user``'s own review codings of one utterance (what a new decision of theirs replaces)."""
        a = self.annotations
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(a.c.code, a.c.direction, a.c.facet).where(
                a.c.utterance_id == utterance_id, a.c.annotator == user, a.c.origin == "review").order_by(a.c.id))
            return tuple(Coding(row.code, row.direction, row.facet) for row in rows)

    def open_manual_review_item(self, item_id: str, utterance_id: str, model_id: str, user: str, at: str,
                                until: str) -> ReviewItem:
        """The review item through which ``user`` codes an utterance by hand, claimed by them.

        Created (priority 0, reason ``manual``) when missing; a decided one is opened again
        (its version raised) so the next decision goes through the usual guarded path.
        """
        r = self.review_items
        with self.transaction() as connection:
            row = connection.execute(sa.select(r).where(r.c.id == item_id)).mappings().first()
            if row is None:
                connection.execute(r.insert().values(
                    id=item_id, utterance_id=utterance_id, model_id=model_id, status=ReviewStatus.CLAIMED.value,
                    priority=0.0, reasons=json.dumps(["manual"]), uncertainty=0.0, impact=0.0, version=0,
                    created_at=at, claimed_by=user, claimed_until=until))
            else:
                connection.execute(r.update().where(r.c.id == item_id).values(
                    status=ReviewStatus.CLAIMED.value, claimed_by=user, claimed_until=until, decided_by=None,
                    decided_at=None, version=r.c.version + 1))
            row = connection.execute(sa.select(r).where(r.c.id == item_id)).mappings().one()
        return self._review_item(row)

    def transcript_info(self, transcript_id: str) -> TranscriptInfo | None:
        """One stored transcript's identity (no text); None when there is none with this id."""
        t = self.transcripts
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(t.c.id, t.c.source, t.c.municipality, t.c.respondent, t.c.role,
                                               t.c.kind, t.c.status).where(t.c.id == transcript_id)).first()
        return None if row is None else TranscriptInfo(*row)

    def transcript_utterances(self, transcript_id: str) -> list[Utterance]:
        """The utterances of one transcript version (exact id), in position order."""
        u = self.utterances
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(u).where(u.c.transcript_id == transcript_id)
                                      .order_by(u.c.position)).mappings().all()
        return [_utterance_from_row(row) for row in rows]

    def municipality_utterances(self, municipality: str) -> list[Utterance]:
        """The utterances of one municipality on active transcripts, by source and position."""
        u, t = self.utterances, self.transcripts
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(u).join(t, t.c.id == u.c.transcript_id)
                .where(u.c.municipality == municipality, t.c.status == "active")
                .order_by(t.c.source, u.c.position)).mappings().all()
        return [_utterance_from_row(row) for row in rows]

    def human_codings(self, utterance_ids: Iterable[str]) -> dict[str, list[HumanCoding]]:
        """Every human annotation of these utterances (all annotators and origins), oldest first."""
        a = self.annotations
        ids = list(dict.fromkeys(utterance_ids))
        found: dict[str, list[HumanCoding]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                query = (sa.select(a.c.utterance_id, a.c.code, a.c.direction, a.c.facet, a.c.annotator, a.c.origin,
                                   a.c.created_at).where(a.c.utterance_id.in_(ids[start:start + 500]))
                         .order_by(a.c.utterance_id, a.c.id))
                for row in connection.execute(query):
                    found.setdefault(row.utterance_id, []).append(HumanCoding(*row))
        return found

    def newest_model_id(self, utterance_ids: Iterable[str]) -> str | None:
        """The model whose predictions on these utterances are the newest; None when none has any."""
        p = self.predictions
        ids = list(dict.fromkeys(utterance_ids))
        best: tuple[str, str] | None = None
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                query = (sa.select(p.c.model_id, sa.func.max(p.c.created_at))
                         .where(p.c.utterance_id.in_(ids[start:start + 500]), p.c.model_id != MANUAL_MODEL_ID)
                         .group_by(p.c.model_id))
                for model_id, created in connection.execute(query):
                    if best is None or (created, model_id) > (best[1], best[0]):
                        best = (model_id, created)
        return None if best is None else best[0]

    def municipality_names(self) -> list[str]:
        """Municipalities with utterances on active transcripts, sorted."""
        u, t = self.utterances, self.transcripts
        with self.engine.connect() as connection:
            return sorted(connection.execute(sa.select(u.c.municipality).join(t, t.c.id == u.c.transcript_id)
                                             .where(t.c.status == "active").distinct()).scalars())

    def respondent_names(self) -> list[str]:
        """Respondent codes (``BA``, ``MOIJ``) with utterances on active transcripts, sorted."""
        u, t = self.utterances, self.transcripts
        with self.engine.connect() as connection:
            return sorted(connection.execute(sa.select(u.c.respondent).join(t, t.c.id == u.c.transcript_id)
                                             .where(t.c.status == "active").distinct()).scalars())
