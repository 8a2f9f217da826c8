"""The run history (issue 20): which job ran when, from which process, how it ended, and the
ratings a finished run left; a mixin of :class:`pipeline.store.database.Store`.

A run records the process that runs it (host and pid). A run still ``running`` whose process
is gone was killed: :meth:`RunQueries.mark_interrupted_runs` records it as ``interrupted``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.store.rows import inserted_id, now

RUNNING, COMPLETED, FAILED, INTERRUPTED = "running", "completed", "failed", "interrupted"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class RunQueries:
    """The ``runs`` table (migrations 0001 and 0006)."""

    engine: Engine
    runs: sa.Table

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[Connection]: ...

    def begin_run(self, kind: str, settings: dict[str, object], segmenter: str = "") -> int:
        """Record the start of a run by this process; return its id. Runs of killed processes
        are recorded as interrupted first (:meth:`mark_interrupted_runs`)."""
        self.mark_interrupted_runs()
        with self.transaction() as connection:
            result = connection.execute(
                self.runs.insert().values(kind=kind, status=RUNNING, started_at=now(), segmenter=segmenter,
                                          settings=json.dumps(settings, default=str), pid=os.getpid(),
                                          host=socket.gethostname())
            )
            return inserted_id(result)

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, object],
                   ratings: Sequence[Mapping[str, object]] | None = None) -> None:
        """Record the end of a run, its summary and, for a run that rated, the ratings it wrote."""
        values: dict[str, object] = {"status": status, "finished_at": now(), "summary": json.dumps(summary, default=str)}
        if ratings is not None:
            values["ratings"] = json.dumps(ratings, ensure_ascii=False, default=str)
        with self.transaction() as connection:
            connection.execute(self.runs.update().where(self.runs.c.id == run_id).values(**values))

    def mark_interrupted_runs(self, alive: Callable[[int], bool] = process_alive) -> list[int]:
        """Record runs of this machine still ``running`` whose process is gone as ``interrupted``.

        Runs of other machines and runs without a recorded process (from before migration 0006)
        are left as they are: whether they still run cannot be told from here. Returns the ids.
        """
        r = self.runs
        host = socket.gethostname()
        with self.transaction() as connection:
            rows = connection.execute(sa.select(r.c.id, r.c.pid).where(
                r.c.status == RUNNING, r.c.host == host, r.c.pid.is_not(None))).all()
            gone = [row.id for row in rows if row.pid != os.getpid() and not alive(int(row.pid))]
            if gone:
                connection.execute(r.update().where(r.c.id.in_(gone)).values(
                    status=INTERRUPTED, finished_at=now(),
                    summary=json.dumps({"error": "the process ended without finishing the run (killed?)"})))
        return gone

    def last_run_ratings(self, kind: str) -> list[dict[str, object]] | None:
        """The ratings the last run of ``kind`` that got to its end recorded, or None when no
        run did: a run that was killed or failed before it rated records none."""
        r = self.runs
        query = (sa.select(r.c.ratings).where(r.c.kind == kind, r.c.ratings.is_not(None),
                                              r.c.status.in_([COMPLETED, FAILED]))
                 .order_by(r.c.id.desc()).limit(1))
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else list(json.loads(found))

    def list_runs(self, kind: str | None = None, *, limit: int | None = None) -> list[dict[str, object]]:
        """Recorded runs, oldest first (``kind``, e.g. ``retrain``; ``limit``: the latest so many),
        with their summary parsed."""
        r = self.runs
        query = sa.select(r.c.id, r.c.kind, r.c.status, r.c.started_at, r.c.finished_at, r.c.summary)
        if kind is not None:
            query = query.where(r.c.kind == kind)
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(query.order_by(r.c.id.desc()).limit(limit)).mappings()]
        for row in rows:
            row["summary"] = json.loads(str(row["summary"])) if row.get("summary") else None
        return rows[::-1]
