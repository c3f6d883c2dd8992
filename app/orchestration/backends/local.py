"""LocalBackend: the multiprocessing worker pool, coordinated through PostgreSQL.

Submitting needs nothing more than the NOTIFY the insert already sent (the
workers LISTEN); cancel and health are queries.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from app.config import get_settings
from app.db import AsyncConn
from app.repositories import executions as repo

__all__ = ["LocalBackend"]


class LocalBackend:
    name = "local"

    def __init__(self, pool: AsyncConnectionPool[AsyncConn] | None = None) -> None:
        self._pool = pool

    async def submit(self, execution_id: str) -> str | None:
        # repo.insert's NOTIFY, sent after the commit, already woke the workers.
        return None

    async def cancel(self, execution_id: str) -> bool:
        assert self._pool is not None, "LocalBackend.cancel needs a pool"
        async with self._pool.connection() as conn:
            _, outcome = await repo.request_cancel(conn, execution_id)
        return outcome in {"cancelled", "requested", "already_requested"}

    async def health(self) -> dict[str, Any]:
        assert self._pool is not None, "LocalBackend.health needs a pool"
        async with self._pool.connection() as conn:
            workers = await repo.live_workers(conn, get_settings().lease_timeout)
        return {"backend": self.name, "live_workers": len(workers), "workers": workers}
