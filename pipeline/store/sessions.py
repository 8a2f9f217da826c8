"""Review-page sessions and failed logins (migration 0006, issue 20); a mixin of
:class:`pipeline.store.database.Store`. Times are seconds since the epoch; the policy (timeouts,
backoff) is the caller's, in :mod:`pipeline.review.web.security`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# forget failures this long after the last one, so the table does not grow without end
FAILURE_MEMORY_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A review-page session row (its id is the SHA-256 of the token the cookie carries)."""

    session_id: str
    user_name: str
    address: str
    created_at: float
    last_seen_at: float
    revoked_at: float | None


class SessionQueries:
    """The ``review_sessions`` and ``login_failures`` tables."""

    engine: Engine

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[Connection]: ...

    @cached_property
    def review_sessions(self) -> sa.Table:
        """The ``review_sessions`` table (migration 0006)."""
        return sa.Table("review_sessions", sa.MetaData(), autoload_with=self.engine)

    @cached_property
    def login_failures(self) -> sa.Table:
        """The ``login_failures`` table (migration 0006)."""
        return sa.Table("login_failures", sa.MetaData(), autoload_with=self.engine)

    def create_session(self, session_id: str, user_name: str, address: str, at: float) -> None:
        """Record a new session; ``session_id`` is the hash of its token."""
        with self.transaction() as connection:
            connection.execute(self.review_sessions.insert().values(
                id=session_id, user_name=user_name, address=address, created_at=at, last_seen_at=at))

    def get_session(self, session_id: str) -> StoredSession | None:
        """The session with this id, or None."""
        s = self.review_sessions
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(s).where(s.c.id == session_id)).mappings().first()
        if row is None:
            return None
        return StoredSession(row["id"], row["user_name"], row["address"], row["created_at"], row["last_seen_at"],
                             row["revoked_at"])

    def touch_session(self, session_id: str, at: float) -> None:
        """Record that the session was used at ``at``."""
        s = self.review_sessions
        with self.transaction() as connection:
            connection.execute(s.update().where(s.c.id == session_id, s.c.revoked_at.is_(None))
                               .values(last_seen_at=at))

    def revoke_session(self, session_id: str, at: float) -> None:
        """End one session (logout)."""
        s = self.review_sessions
        with self.transaction() as connection:
            connection.execute(s.update().where(s.c.id == session_id, s.c.revoked_at.is_(None)).values(revoked_at=at))

    def revoke_user_sessions(self, user_name: str, at: float) -> int:
        """End every open session of a user (password change, deactivation); return how many."""
        s = self.review_sessions
        with self.transaction() as connection:
            result = connection.execute(s.update().where(s.c.user_name == user_name, s.c.revoked_at.is_(None))
                                        .values(revoked_at=at))
        return int(result.rowcount or 0)

    def delete_sessions_before(self, at: float) -> int:
        """Delete sessions last used before ``at`` (expired for good); return how many."""
        s = self.review_sessions
        with self.transaction() as connection:
            return int(connection.execute(s.delete().where(s.c.last_seen_at < at)).rowcount or 0)

    def login_failure(self, user_name: str, address: str) -> tuple[int, float]:
        """``(failures in a row, locked until)`` of a user name from an address; ``(0, 0.0)`` when none."""
        f = self.login_failures
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(f.c.n_failures, f.c.locked_until).where(
                f.c.user_name == user_name, f.c.address == address)).first()
        return (0, 0.0) if row is None else (int(row.n_failures), float(row.locked_until))

    def record_login_failure(self, user_name: str, address: str, at: float, n_failures: int,
                             locked_until: float) -> None:
        """Store the failure count and lock of a (user name, address); forget day-old ones."""
        f = self.login_failures
        with self.transaction() as connection:
            connection.execute(f.delete().where(f.c.last_failure_at < at - FAILURE_MEMORY_S))
            connection.execute(f.delete().where(f.c.user_name == user_name, f.c.address == address))
            connection.execute(f.insert().values(user_name=user_name, address=address, n_failures=n_failures,
                                                 last_failure_at=at, locked_until=locked_until))

    def clear_login_failures(self, user_name: str, address: str) -> None:
        """Forget the failures of a (user name, address) after a successful login."""
        f = self.login_failures
        with self.transaction() as connection:
            connection.execute(f.delete().where(f.c.user_name == user_name, f.c.address == address))
