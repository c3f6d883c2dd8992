"""LocalBackend: the multiprocessing worker pool, coordinated through PostgreSQL.

Submitting and retrying need nothing more than the NOTIFY the insert (or
the submitter's Waker) or the retry sends (the workers LISTEN); cancel is the
executions table's own request, and health counts the workers whose
heartbeat is fresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.config import Settings
from app.db import AsyncConn
from app.engine import executions, workers
from app.engine.executions import CancelOutcome
from app.engine.models import Execution

__all__ = ["LocalBackend"]


class LocalBackend:
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def submit(self, conn: AsyncConn, execution: Execution) -> str | None:
        # The NOTIFY of executions.insert (or of the submitter's Waker) wakes the workers.
        return None

    async def submit_many(self, conn: AsyncConn, batch: Sequence[Execution]) -> list[str | None]:
        return [None] * len(batch)

    async def retry(self, conn: AsyncConn, execution: Execution) -> None:
        # The retry's own NOTIFY wakes the workers.
        return None

    async def cancel(
        self, conn: AsyncConn, execution_id: str
    ) -> tuple[Execution | None, CancelOutcome]:
        return await executions.request_cancel(conn, execution_id)

    async def health(self, conn: AsyncConn) -> dict[str, Any]:
        live = await workers.live_workers(conn, self._settings.lease_timeout)
        return {"backend": self.name, "live_workers": len(live), "workers": live}
