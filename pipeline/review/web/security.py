"""Sessions, login throttling, client addresses and CSRF tokens for the review page (issue 20).

Sessions live in the store: the cookie carries a random token, the store the token's SHA-256,
the user, and when the session was made and last used. Logging out, changing a password or an
expired timeout ends the session for every copy of the cookie.

Failed logins are counted per (user name, client address) in the store, so they survive a
restart and a wrong password from one address never locks the right user out from another.
After ``max_failures`` failures in a row the pair waits ``window_s`` seconds, doubling with each
further failure up to ``max_lock_s``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.store import Store

CSRF_FIELD = "csrf_token"
UNKNOWN_ADDRESS = "?"


def new_csrf_token() -> str:
    """A fresh random token for one session's forms."""
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    """Whether a submitted token equals the session's (compared in constant time)."""
    return isinstance(expected, str) and isinstance(given, str) and bool(expected) and \
        secrets.compare_digest(expected.encode(), given.encode())


def session_id_of(token: str) -> str:
    """The id under which the store keeps a session: the SHA-256 of its token, so the
    database alone does not hand out live sessions."""
    return hashlib.sha256(token.encode()).hexdigest()


def lock_seconds(n_failures: int, max_failures: int, base_s: float, max_s: float) -> float:
    """How long a (name, address) waits after ``n_failures`` failures in a row.

    Examples
    --------
    >>> [lock_seconds(n, 5, 30, 900) for n in (4, 5, 6, 7, 12)]
    [0.0, 30.0, 60.0, 120.0, 900.0]
    """
    if n_failures < max_failures:
        return 0.0
    return float(min(max_s, base_s * 2 ** min(n_failures - max_failures, 30)))


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[str]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy, then the last
    address in ``X-Forwarded-For`` that is not a trusted proxy.

    Examples
    --------
    >>> client_address("10.0.0.2", "203.0.113.9, 10.0.0.2", ["10.0.0.2"])
    '203.0.113.9'
    >>> client_address("198.51.100.7", "203.0.113.9", ["10.0.0.2"])  # not a proxy we trust: header ignored
    '198.51.100.7'
    """
    peer = peer or UNKNOWN_ADDRESS
    trusted = set(trusted_proxies)
    if peer not in trusted or not forwarded_for:
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if hop in trusted:
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:  # a forged or garbled entry: keep the last address we can vouch for
            return peer
    return peer


@dataclass(frozen=True)
class SessionPolicy:
    """How long a review session lasts: ``idle_s`` unused, ``max_s`` after login at most."""

    idle_s: float = 3600.0
    max_s: float = 8 * 3600.0
    clock: Callable[[], float] = time.time
    # write last-use at most this often: not one write per page
    touch_every_s: float = 60.0

    def start(self, store: Store, user_name: str, address: str) -> str:
        """Record a new session for ``user_name``; return the token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        store.delete_sessions_before(now - self.max_s)  # expired for good: keep the table small
        store.create_session(session_id_of(token), user_name, address, now)
        return token

    def user_of(self, store: Store, token: object) -> str | None:
        """The user of a live session, or None for a missing, unknown, revoked or expired one."""
        if not isinstance(token, str) or not token:
            return None
        session_id = session_id_of(token)
        found = store.get_session(session_id)
        now = self.clock()
        if found is None or found.revoked_at is not None:
            return None
        if now - found.last_seen_at > self.idle_s or now - found.created_at > self.max_s:
            store.revoke_session(session_id, now)
            return None
        if now - found.last_seen_at > self.touch_every_s:
            store.touch_session(session_id, now)
        return found.user_name

    def end(self, store: Store, token: object) -> None:
        """Revoke the session of ``token`` (logout); the cookie is worthless from now on."""
        if isinstance(token, str) and token:
            store.revoke_session(session_id_of(token), self.clock())


class LoginLimiter:
    """Failed logins per (user name, client address), kept in the store.

    ``max_failures`` failures in a row lock the pair for ``window_s`` seconds, doubling with
    each further failure up to ``max_lock_s``; a successful login clears the pair.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 60.0, max_lock_s: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_lock_s = max_lock_s
        self.clock = clock

    def retry_after(self, store: Store, name: str, address: str) -> float:
        """Seconds until ``name`` may try again from ``address`` (0 when not locked)."""
        _, locked_until = store.login_failure(name, address)
        return max(0.0, locked_until - self.clock())

    def failed(self, store: Store, name: str, address: str) -> float:
        """Record a failed attempt; return the seconds the pair is now locked for."""
        n, _ = store.login_failure(name, address)
        now = self.clock()
        wait = lock_seconds(n + 1, self.max_failures, self.window_s, self.max_lock_s)
        store.record_login_failure(name, address, now, n + 1, now + wait)
        return wait

    def succeeded(self, store: Store, name: str, address: str) -> None:
        """Forget the failures of the pair."""
        store.clear_login_failures(name, address)
