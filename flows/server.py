"""The temporary Prefect server of a run without a configured server, bound to the run (issue 20).

Prefect's own ephemeral mode starts a server subprocess that outlives its parent when the parent
is killed with SIGKILL (no ``atexit`` runs). :func:`temporary_server` starts that server itself:

- in the run's process group, and on Linux with ``PR_SET_PDEATHSIG``, so the kernel kills the
  server the moment the run's process dies, however it dies;
- with a pid file in the workspace's Prefect home, so the next run stops a server that a killed
  run left behind where the death signal is not available.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PID_FILE = "codeer-temporary-server.json"
SERVER_MARK = "prefect.server.api.server:create_app"
_PR_SET_PDEATHSIG = 1


def _process_alive(pid: int) -> bool:
    from pipeline.store.runs import process_alive

    return process_alive(pid)


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_stale_server(prefect_home: Path, *, alive: Callable[[int], bool] = _process_alive) -> int | None:
    """Stop the temporary server a killed run left behind in ``prefect_home``; return its pid.

    Only a process that the pid file names, whose owner is gone, and whose command line is a
    Prefect server is stopped: a pid reused by another program is left alone.
    """
    pid_file = prefect_home / PID_FILE
    try:
        record = json.loads(pid_file.read_text(encoding="utf-8"))
        server_pid, owner_pid = int(record["server_pid"]), int(record["owner_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if alive(owner_pid) and owner_pid != os.getpid():
        return None  # another run of this workspace is using it
    stopped = None
    if alive(server_pid) and SERVER_MARK in _command_line(server_pid):
        logger.warning("stopping the temporary Prefect server (pid %d) that a killed run left behind", server_pid)
        with suppress(ProcessLookupError):
            os.kill(server_pid, signal.SIGTERM)
            for _ in range(50):
                if not alive(server_pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(server_pid, signal.SIGKILL)
        stopped = server_pid
    pid_file.unlink(missing_ok=True)
    return stopped


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child die with this process (Linux); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_class() -> type:
    from prefect.server.api.server import SubprocessASGIServer

    class BoundServer(SubprocessASGIServer):
        """Prefect's temporary server, started so that it dies with this process."""

        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            # The command of prefect==3.9.1's SubprocessASGIServer (pinned in pyproject.toml),
            # plus the death signal; the process stays in the run's process group.
            import prefect
            from prefect.settings import get_current_settings

            return subprocess.Popen(
                args=[sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
                      "--factory", SERVER_MARK, "--host", "127.0.0.1", "--port", str(self.port),
                      "--log-level", "error", "--lifespan", "on"],
                env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                     "PREFECT__SERVER_FINAL": "1", **get_current_settings().to_environment_variables(exclude_unset=True)},
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 - only prctl and getppid run in the child
            )

    return BoundServer


@contextmanager
def temporary_server(prefect_home: Path) -> Iterator[str]:
    """Run a temporary Prefect server bound to this process; yield its API URL, with
    ``PREFECT_API_URL`` pointing at it, and stop it at the end."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    prefect_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    stop_stale_server(prefect_home)
    server = _server_class()(port=_free_port())
    previous = SubprocessASGIServer._instances.get(None)
    SubprocessASGIServer._instances[None] = server  # Prefect code asking for "the" server gets this one
    pid_file = prefect_home / PID_FILE
    try:
        server.start()
        descriptor = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"server_pid": server.server_process.pid, "owner_pid": os.getpid()}, handle)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        server.stop()
        pid_file.unlink(missing_ok=True)
        if previous is None:
            SubprocessASGIServer._instances.pop(None, None)
        else:
            SubprocessASGIServer._instances[None] = previous
