"""Progress of long steps: a bar on a terminal, plain lines in a log (issue 21).

Every step that can take more than a few seconds (train, cross-validation, embed, classify, the
stages of a run, evaluate) reports through this one module. On a terminal it draws a tqdm bar;
when the output is not a terminal (a log file, a CI job, a nightly run) it writes a plain line
per tenth of the work and at the end, never a ``\\r`` run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import IO, TypeVar

T = TypeVar("T")

PLAIN_STEPS = 10  # plain lines per step: one per tenth of the work
PLAIN_EVERY_S = 30.0  # and at least this often when the total is unknown or the work is slow


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class Progress:
    """Progress of one step; use as a context manager and call :meth:`update`.

    Parameters
    ----------
    desc : str
        What is being done, e.g. ``"classify"``.
    total : int, optional
        Units of work in all (None: unknown).
    unit : str
        Name of a unit, e.g. ``"utt"``.
    enabled : bool
        False reports nothing (library calls without ``show_progress``).
    stream : file, optional
        Where to write; default ``sys.stderr``.
    """

    def __init__(self, desc: str, total: int | None = None, unit: str = "it", *, enabled: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.desc, self.total, self.unit, self.enabled = desc, total, unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self._bar = None
        self._started = time.monotonic()
        self._last_line = self._started
        self._next_step = 1

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        self._started = self._last_line = time.monotonic()
        if _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=self.stream, leave=False)
        else:
            size = f" ({self.total} {self._units(self.total)})" if self.total is not None else ""
            self._line(f"{self.desc}: started{size}")
        return self

    def update(self, n: int = 1) -> None:
        """Record ``n`` more units done."""
        self.n += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if self.total:
            step = min(PLAIN_STEPS, self.n * PLAIN_STEPS // self.total)
            if step >= self._next_step and self.n < self.total:
                self._next_step = step + 1
                self._line(f"{self.desc}: {self.n}/{self.total} {self._units(self.total)} ({step * 100 // PLAIN_STEPS}%)")
                return
        if now - self._last_line >= PLAIN_EVERY_S:
            done = f"{self.n}/{self.total}" if self.total else str(self.n)
            self._line(f"{self.desc}: {done} {self._units(self.total or self.n)}")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        seconds = time.monotonic() - self._started
        outcome = "stopped" if error is not None else "done"
        text = f"{self.desc}: {outcome}, {self.n} {self._units(self.n)} in {seconds:.0f} s"
        if self._bar is not None and error is None and seconds < 2:
            return  # a quick step leaves no trace on a terminal
        self._line(text)

    def _units(self, count: int) -> str:
        """The unit for ``count`` of them on a plain line: "1 file", "28 files" (tqdm keeps its own)."""
        return self.unit if count == 1 or self.unit in ("it", "utt") else self.unit + "s"

    def _line(self, text: str) -> None:
        self._last_line = time.monotonic()
        print(text, file=self.stream, flush=True)


def progress(iterable: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it", enabled: bool = True,
             stream: IO[str] | None = None) -> Iterator[T]:
    """Iterate over ``iterable`` and report progress (see :class:`Progress`).

    >>> import io
    >>> log = io.StringIO()
    >>> list(progress(range(3), "count", stream=log))
    [0, 1, 2]
    >>> log.getvalue().splitlines()[0]
    'count: started (3 it)'
    """
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    with Progress(desc, total, unit, enabled=enabled, stream=stream) as bar:
        for item in iterable:
            yield item
            bar.update()


@contextmanager
def stage(desc: str, *, enabled: bool = True, stream: IO[str] | None = None) -> Iterator[None]:
    """A step without units (a stage of a run): a start line and an end line with the time it took."""
    out = stream if stream is not None else sys.stderr
    if enabled:
        print(f"{desc} ...", file=out, flush=True)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        if enabled:
            print(f"{desc}: stopped after {time.monotonic() - start:.0f} s", file=out, flush=True)
        raise
    if enabled:
        print(f"{desc}: done in {time.monotonic() - start:.0f} s", file=out, flush=True)
