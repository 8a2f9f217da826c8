"""What the nightly job reads and writes beside coding (issue 18): the run log, and tonight's
review queue (its plan, and the items a superseded transcript retires); mixed into
:class:`pipeline.store.database.Store`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.records import ReviewItem, ReviewStatus, Utterance
from pipeline.store.review import OPEN_STATUSES


class NightlyQueries:
    """Tonight's review queue; a mixin of :class:`pipeline.store.database.Store`."""

    engine: Engine
    runs: sa.Table
    transcripts: sa.Table
    utterances: sa.Table
    review_items: sa.Table

    if TYPE_CHECKING:
        from contextlib import AbstractContextManager

        @property
        def review_decisions(self) -> sa.Table: ...

        def transaction(self) -> AbstractContextManager[Connection]: ...

        @staticmethod
        def _review_item(row: sa.RowMapping) -> ReviewItem: ...

        def utterances_by_id(self, ids: Iterable[str]) -> dict[str, Utterance]: ...

    def count_active_utterances(self) -> int:
        """Utterances of active (not superseded) transcripts: what the review budget is a share of."""
        u, t = self.utterances, self.transcripts
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(
                u.join(t, t.c.id == u.c.transcript_id)).where(t.c.status == "active")).scalar_one())

    def retire_transcript_review_items(self, connection: Connection, transcript_id: str, *, user: str, at: str,
                                       note: str) -> int:
        """Retire the open items of one transcript's utterances inside ``connection``'s
        transaction (superseding a transcript does, in its own transaction). Returns how many."""
        r, d, u = self.review_items, self.review_decisions, self.utterances
        rows = connection.execute(sa.select(r.c.id, r.c.utterance_id, r.c.status, r.c.version).where(
            r.c.status.in_(OPEN_STATUSES),
            r.c.utterance_id.in_(sa.select(u.c.id).where(u.c.transcript_id == transcript_id)))).all()
        for row in rows:
            connection.execute(r.update().where(r.c.id == row.id).values(
                status=ReviewStatus.RETIRED.value, version=row.version + 1, claimed_by=None, claimed_until=None,
                decided_by=user, decided_at=at, batch=None))
            connection.execute(d.insert().values(
                item_id=row.id, utterance_id=row.utterance_id, action="retire", user_name=user, at=at, codings="[]",
                previous=None, status_before=row.status, status_after=ReviewStatus.RETIRED.value,
                version_after=row.version + 1, undone=False, note=note))
        return len(rows)

    def open_review_items(self) -> list[tuple[ReviewItem, Utterance]]:
        """Open items (pending, waiting, claimed) of active transcripts with their utterances."""
        r, u, t = self.review_items, self.utterances, self.transcripts
        active = sa.select(u.c.id).join(t, t.c.id == u.c.transcript_id).where(t.c.status == "active")
        with self.engine.connect() as connection:
            items = [self._review_item(row) for row in connection.execute(
                sa.select(r).where(r.c.status.in_(OPEN_STATUSES), r.c.utterance_id.in_(active))
                .order_by(r.c.priority.desc(), r.c.id)).mappings()]
        utterances = self.utterances_by_id(item.utterance_id for item in items)
        return [(item, utterances[item.utterance_id]) for item in items]

    def plan_review_items(self, plan: Sequence[tuple[str, ReviewStatus, int | None, float, float, str]]) -> int:
        """Write tonight's queue in one transaction: per item ``(item_id, status, batch,
        priority, impact, effect)`` with status pending (in the budget) or waiting (outside it).

        Only pending and waiting items change: an item claimed or decided meanwhile is left as
        it is. A changed status raises the version. Returns how many items changed.
        """
        r = self.review_items
        n_changed = 0
        movable = (ReviewStatus.PENDING.value, ReviewStatus.WAITING.value)
        with self.transaction() as connection:
            for item_id, status, batch, priority, impact, effect in plan:
                result = connection.execute(r.update().where(r.c.id == item_id, r.c.status.in_(movable)).values(
                    version=sa.case((r.c.status == status.value, r.c.version), else_=r.c.version + 1),
                    status=status.value, batch=batch, priority=priority, impact=impact, effect=effect))
                n_changed += int(result.rowcount)
        return n_changed
