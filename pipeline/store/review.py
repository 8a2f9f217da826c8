"""The review queue's SQL (issue 6): annotators, review items and the audit trail of
decisions, mixed into :class:`pipeline.store.database.Store`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import ReviewConflictError, ReviewItemNotFoundError, UserExistsError
from pipeline.records import (MANUAL_MODEL_ID, Coding, Prediction, ReviewDecision, ReviewItem, ReviewStatus, User,
                              UserRole, Utterance)
from pipeline.store.rows import _codings_from_json, _codings_json, _utterance_from_row, chunks, inserted_id, narrow_review_items


class UserQueries:
    """The annotators' accounts (migration 0003); a mixin of :class:`pipeline.store.database.Store`."""

    engine: Engine

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[Connection]: ...

    # review queue, annotators and audit trail (issue 6) ------------------------------------
    @cached_property
    def users(self) -> sa.Table:
        """The ``users`` table (migration 0003)."""
        return sa.Table("users", sa.MetaData(), autoload_with=self.engine)

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


OPEN_STATUSES = (ReviewStatus.PENDING.value, ReviewStatus.CLAIMED.value, ReviewStatus.WAITING.value)


def _queue_order(r: sa.Table) -> tuple[sa.ColumnElement[Any], ...]:
    """Planned batches in turn, then unplanned items; highest priority first within them."""
    return (sa.case((r.c.batch.is_(None), 1), else_=0), r.c.batch, r.c.priority.desc(), r.c.created_at, r.c.id)


class ReviewQueries:
    """The review queue and its audit trail (migration 0003); a mixin of :class:`pipeline.store.database.Store`."""

    engine: Engine
    transcripts: sa.Table
    utterances: sa.Table
    annotations: sa.Table
    predictions: sa.Table
    review_items: sa.Table

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[Connection]: ...

    @cached_property
    def review_decisions(self) -> sa.Table:
        """The ``review_decisions`` table: the audit trail (migration 0003)."""
        return sa.Table("review_decisions", sa.MetaData(), autoload_with=self.engine)

    def upsert_review_items(self, items: Sequence[ReviewItem]) -> int:
        """Insert new review items; refresh priority and reasons of those still pending.

        Claimed, decided and retired items are left as they are. Returns how many items
        were new. One transaction.
        """
        r = self.review_items
        with self.transaction() as connection:
            ids = [item.item_id for item in items]
            existing: dict[str, str] = {}
            for chunk in chunks(ids, 500):
                existing.update(connection.execute(
                    sa.select(r.c.id, r.c.status).where(r.c.id.in_(chunk))).all())
            new_rows = []
            for item in items:
                values = {"priority": item.priority, "reasons": json.dumps(list(item.reasons)),
                          "uncertainty": item.uncertainty, "impact": item.impact}
                status = existing.get(item.item_id)
                if status is None:
                    new_rows.append({"id": item.item_id, "utterance_id": item.utterance_id, "model_id": item.model_id,
                                     "status": item.status.value, "version": 0, "created_at": item.created_at,
                                     **values})
                elif status in (ReviewStatus.PENDING, ReviewStatus.WAITING):
                    connection.execute(r.update().where(r.c.id == item.item_id).values(**values))
            for batch in chunks(new_rows, 1000):  # one multi-row insert per 1000 items (issue 8)
                connection.execute(r.insert(), batch)
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
        open_statuses = OPEN_STATUSES
        with self.transaction() as connection:
            for chunk in chunks(ids, 500):
                rows = connection.execute(sa.select(r.c.id, r.c.utterance_id, r.c.status, r.c.version).where(
                    r.c.utterance_id.in_(chunk), r.c.model_id != keep_model_id,
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
            for chunk in chunks(ids, 500):
                for row in connection.execute(sa.select(r).where(r.c.id.in_(chunk))).mappings():
                    found[row["id"]] = self._review_item(row)
        return found

    def list_review_items(self, statuses: Sequence[str] | None = None, *, limit: int | None = None,
                          claimed_by: str | None = None, municipality: str | None = None,
                          respondent: str | None = None, code: str | None = None) -> list[ReviewItem]:
        """Review items, highest priority first (ties: oldest, then id).

        ``municipality``, ``respondent`` and ``code`` narrow the list (see :func:`pipeline.store.rows.narrow_review_items`)."""
        r = self.review_items
        query = sa.select(r).order_by(r.c.priority.desc(), r.c.created_at, r.c.id)
        query = narrow_review_items(query, self.review_items, self.utterances, self.predictions,
                                    municipality, respondent, code)
        if statuses:
            query = query.where(r.c.status.in_([str(s) for s in statuses]))
        if claimed_by is not None:
            query = query.where(r.c.claimed_by == claimed_by)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [self._review_item(row) for row in connection.execute(query).mappings()]

    def claimable_review_items(self, user: str, at: str, limit: int, *, municipality: str | None = None,
                               respondent: str | None = None, code: str | None = None) -> list[tuple[ReviewItem, str]]:
        """Items ``user`` may claim, in queue order, with their utterance text.

        Pending items, items whose claim expired before ``at``, and items ``user`` holds, of
        active transcripts only; ``municipality``, ``respondent`` and ``code`` narrow them as in
        :meth:`list_review_items`. Queue order: the planned batches in turn (see
        :meth:`plan_review_items`), then unplanned items; within them the highest priority first.
        """
        r, u, t = self.review_items, self.utterances, self.transcripts
        query = (
            sa.select(r, u.c.text.label("utterance_text")).join(u, u.c.id == r.c.utterance_id)
            .join(t, t.c.id == u.c.transcript_id)
            .where(t.c.status == "active",  # a superseded transcript's items are never handed out (issue 18)
                   sa.or_(r.c.status == ReviewStatus.PENDING.value,
                          sa.and_(r.c.status == ReviewStatus.CLAIMED.value,
                                  sa.or_(r.c.claimed_until < at, r.c.claimed_by == user))),
                   r.c.model_id != MANUAL_MODEL_ID)  # a hand-coding item belongs to its coder alone
            .order_by(*_queue_order(r)).limit(limit)
        )
        query = narrow_review_items(query, self.review_items, self.utterances, self.predictions,
                                    municipality, respondent, code)
        with self.engine.connect() as connection:
            return [(self._review_item(row), row["utterance_text"]) for row in connection.execute(query).mappings()]

    def claim_review_item(self, item_id: str, user: str, at: str, until: str) -> ReviewItem | None:
        """Claim one item for ``user`` until ``until``; None when someone else holds it or it is decided.

        Taking over an expired claim (or a pending item) raises the version, so a decision
        prepared on the old claim can no longer land; renewing one's own claim does not.
        """
        r, u, t = self.review_items, self.utterances, self.transcripts
        active = sa.select(u.c.id).join(t, t.c.id == u.c.transcript_id).where(t.c.status == "active")
        with self.transaction() as connection:
            result = connection.execute(
                r.update().where(
                    r.c.id == item_id, r.c.utterance_id.in_(active),
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
        r, d = self.review_items, self.review_decisions
        open_statuses = OPEN_STATUSES
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
            decision_id = inserted_id(connection.execute(d.insert().values(
                item_id=item_id, utterance_id=before["utterance_id"], action=action, user_name=user, at=at,
                codings=_codings_json(codings), previous=None if previous is None else json.dumps(previous),
                status_before=before["status"], status_after=status.value, version_after=version_after,
                undone=False, note=note, codebook_version=codebook_version)))
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
            undo_id = inserted_id(connection.execute(d.insert().values(
                item_id=last["item_id"], utterance_id=last["utterance_id"], action="undo", user_name=user, at=at,
                codings=last["codings"], previous=None, status_before=last["status_after"],
                status_after=ReviewStatus.CLAIMED.value, version_after=version_after, undone=False,
                note=f"undid decision {last['id']} ({last['action']})",
                codebook_version=last["codebook_version"])))
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
            rows = connection.execute(sa.select(r.c.status, sa.func.count()).group_by(r.c.status)).all()
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
            for chunk in chunks(ids, 500):
                query = (sa.select(p).where(p.c.model_id == model_id, p.c.utterance_id.in_(chunk))
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
            for chunk in chunks(ids, 500):
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
        queries = [query] if names is None else [query.where(u.c.municipality.in_(chunk))
                                                 for chunk in chunks(names, 500)]
        counts: dict[tuple[str, str], tuple[int, int]] = {}
        with self.engine.connect() as connection:
            for part in queries:
                for municipality, code, direction, n in connection.execute(part):
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
            decided_at=row["decided_at"], batch=row.get("batch"), effect=row.get("effect") or "")

    @staticmethod
    def _review_decision(row: sa.RowMapping) -> ReviewDecision:
        return ReviewDecision(int(row["id"]), row["item_id"], row["utterance_id"], row["action"], row["user_name"],
                              row["at"], _codings_from_json(row["codings"]), row["status_before"], row["status_after"],
                              int(row["version_after"]), bool(row["undone"]), row["note"] or "",
                              row["codebook_version"] or "")
