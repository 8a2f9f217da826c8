"""The evidence pages' SQL (issue 21): a transcript's utterances with their human and model
codes, and the fragments of one code in one municipality; mixed into
:class:`pipeline.store.database.Store`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.records import MANUAL_MODEL_ID, Utterance
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
                for model_id, created in connection.execute(query).tuples():
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
