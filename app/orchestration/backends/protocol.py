"""The seam where an orchestration engine plugs in (seed section 3.2)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["OrchestratorBackend"]


@runtime_checkable
class OrchestratorBackend(Protocol):
    name: str

    async def submit(self, execution_id: str) -> str | None:
        """Hand a recorded execution to the engine; returns its run id, if it has one."""
        ...

    async def cancel(self, execution_id: str) -> bool:
        """Request cancellation; True when the request was recorded."""
        ...

    async def health(self) -> dict[str, Any]:
        """What the engine reports about itself."""
        ...
