"""The seam where an orchestration engine plugs in (seed section 3.2).

Submit, the API's cancel and its health report go through this type, so a
second engine (a Celery backend, say) changes none of them.
"""

from __future__ import annotations

from typing import Any, Protocol

from app.db import AsyncConn
from app.engine.executions import CancelOutcome
from app.engine.models import Execution

__all__ = ["OrchestratorBackend"]


class OrchestratorBackend(Protocol):
    name: str

    async def submit(self, execution: Execution) -> str | None:
        """Hand a recorded execution to the engine; returns its run id, if it has one."""
        ...

    async def cancel(
        self, conn: AsyncConn, execution_id: str
    ) -> tuple[Execution | None, CancelOutcome]:
        """Request cancellation; returns the execution after the request and what happened."""
        ...

    async def health(self, conn: AsyncConn) -> dict[str, Any]:
        """What the engine reports about itself (live workers for the local pool)."""
        ...
