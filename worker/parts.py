"""The parts of one worker process, wired together once for both of its kinds.

A pool's worker (worker.loop) and a Celery process's runner
(worker.celery_runner) run executions with the same parts: the completer (the
batched ends), the claimer (claims sized by a BatchSize), the watchdog
(timeouts), the executor (one execution) and the liveness thread (heartbeat and
sweep). They differ only in the batch size (a Celery task claims one by id)
and in their own callbacks, which they pass in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app import db
from app.config import Settings
from app.engine.models import End, Execution
from app.engine.registry import Registry
from worker.batch_size import BatchSize
from worker.claimer import Claimer
from worker.completer import Completer
from worker.executor import Executor
from worker.liveness import Liveness
from worker.watchdog import Watchdog

__all__ = ["Parts", "assemble"]


@dataclass(frozen=True)
class Parts:
    completer: Completer
    claimer: Claimer
    executor: Executor
    liveness: Liveness


def assemble(
    worker_id: str,
    settings: Settings,
    registry: Registry,
    url: str,
    *,
    batch_size: BatchSize,
    give_up: Callable[[Execution], End | None],
    take_notices: Callable[[], Awaitable[None]],
) -> Parts:
    """Worker `worker_id`'s parts: `give_up` is for the watchdog, `take_notices` the executor."""
    completer = Completer(worker_id, registry)
    claimer = Claimer(worker_id, completer, batch_size)
    executor = Executor(
        worker_id,
        settings,
        registry,
        claimer=claimer,
        completer=completer,
        watchdog=Watchdog(settings.timeout_grace, give_up),
        take_notices=take_notices,
    )
    liveness = Liveness(worker_id, settings.lease_timeout, lambda: db.aconnect(url))
    return Parts(completer, claimer, executor, liveness)
