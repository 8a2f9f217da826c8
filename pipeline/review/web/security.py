"""Login rate limiting and CSRF tokens for the review page."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

CSRF_FIELD = "csrf_token"
MAX_KEYS = 10_000


def new_csrf_token() -> str:
    """A fresh random token for one session's forms."""
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    """Whether a submitted token equals the session's (compared in constant time)."""
    return isinstance(expected, str) and isinstance(given, str) and bool(expected) and \
        secrets.compare_digest(expected.encode(), given.encode())


class LoginLimiter:
    """Failed logins per key (client address, user name) within a sliding window.

    A key with ``max_failures`` failures in the last ``window_s`` seconds is blocked until
    the oldest of them leaves the window; a successful login clears its keys.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        cutoff = self.clock() - self.window_s
        recent = [t for t in self._failures.get(key, []) if t > cutoff]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0 when none is blocked)."""
        wait = 0.0
        for key in keys:
            recent = self._recent(key)
            if len(recent) >= self.max_failures:
                wait = max(wait, recent[-self.max_failures] + self.window_s - self.clock())
        return wait

    def failed(self, *keys: str) -> None:
        """Record one failed attempt for each key."""
        moment = self.clock()
        if len(self._failures) > MAX_KEYS:  # many names sprayed: forget those outside the window
            for stale in list(self._failures):
                self._recent(stale)
        for key in keys:
            self._failures.setdefault(key, []).append(moment)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these keys."""
        for key in keys:
            self._failures.pop(key, None)
