"""The seam where an orchestration engine plugs in (seed section 3.2).

Every state change a backend must hear goes through this type, whichever
front end started it: the engine's own functions call it (`submit.submit`,
`scheduling.run_now` and `fire_due`, `retries.retry_one` and `retry_many`),
and a cancel is the backend's to do. So a second engine (a Celery backend,
say) changes none of the front ends. Each front end builds its backend once
(the API's and the dashboard's app state, the CLI's context, the scheduler).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from app.db import AsyncConn
from app.engine.executions import CancelOutcome
from app.engine.models import Execution

__all__ = ["OrchestratorBackend"]


@runtime_checkable
class OrchestratorBackend(Protocol):
    name: str

    async def submit(self, conn: AsyncConn, execution: Execution) -> str | None:
        """Hand a recorded execution to the engine (a submit, a schedule's fire, a manual
        run), after its commit; returns its run id, if it has one. `conn` (autocommit, no
        transaction open) is for the backend's own record of the hand-over."""
        ...

    async def submit_many(self, conn: AsyncConn, batch: Sequence[Execution]) -> list[str | None]:
        """`submit` for many at once (submit_many's, a schedule's fires): their run ids,
        in order. A brokered backend records and publishes them as one batch."""
        ...

    async def retry(self, conn: AsyncConn, execution: Execution) -> None:
        """Hand back an execution a manual retry made pending again, after its commit."""
        ...

    async def cancel(
        self, conn: AsyncConn, execution_id: str
    ) -> tuple[Execution | None, CancelOutcome]:
        """Request cancellation; returns the execution after the request and what happened."""
        ...

    async def health(self, conn: AsyncConn) -> dict[str, Any]:
        """What the engine reports about itself (live workers for the local pool)."""
        ...
