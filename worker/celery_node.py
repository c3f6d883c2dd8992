"""A Celery worker node for the Celery backend (`spine worker start --backend celery`).

Celery supervises the processes (prefork with K children, solo for K=1) and
delivers the messages; each process runs a Runner (worker/celery_runner.py),
which claims the message's execution by id in PostgreSQL and runs it. The
node's first process (prefork's child 0, or the solo process) also runs the
pool's scheduler thread and the outbox relay, as a pool's slot 0 runs the
scheduler: schedules fire once per slot whatever the number of nodes (the
database keeps them exactly once), and Celery beat is not used. Connections
are opened in each process after the fork; the parent opens none.

The message is acknowledged when its task returns (`task_acks_late`, see
app.engine.backends.celery_app), so after the claim committed. SIGTERM is
Celery's warm shutdown: the running execution finishes and is recorded.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from billiard.process import current_process
from celery import Celery, signals

from app.catalog import store_graph
from app.config import Settings
from app.engine.backends.celery_app import (
    TASK_NAME,
    make_app,
    new_task_id,
    publish,
    queue_name,
)
from app.engine.models import LANES
from app.engine.registry import Registry
from worker.celery_relay import Relay
from worker.celery_runner import BACKEND, Outcome, Runner
from worker.history_keeper import HistoryKeeper
from worker.scheduler import Scheduler

__all__ = ["Node", "main"]

log = logging.getLogger("spine.celery")


class Node:
    """The Celery app of one node, with its task and its per-process runner."""

    def __init__(self, settings: Settings, url: str, registry: Registry) -> None:
        self.settings = settings
        self.url = url
        self.registry = registry
        self.app: Celery = make_app(settings)
        self.runner: Runner | None = None
        self.scheduler: Scheduler | None = None
        self.keeper: HistoryKeeper | None = None
        self.app.task(name=TASK_NAME)(self._run)  # ignore_result, acks_late: the app's conf
        signals.worker_process_init.connect(self._process_init, weak=False)
        signals.worker_process_shutdown.connect(self._process_shutdown, weak=False)
        signals.worker_ready.connect(self._ready, weak=False)
        signals.worker_shutdown.connect(self._process_shutdown, weak=False)

    def _run(self, execution_id: str) -> Outcome:
        """The task: claim by id and run (its message is acked when this returns)."""
        runner = self.runner or self._start(first=False)
        outcome = runner.run(execution_id)
        if outcome != "ran":
            log.info("task for %s: %s, acknowledged without running", execution_id, outcome)
        return outcome

    def _start(self, *, first: bool) -> Runner:
        runner = Runner(self.settings, self.url, self.registry)
        if first:
            prefix = self.settings.celery_queue_prefix
            relay = Relay(
                self.url,
                lambda execution_id, lane, task_id: publish(
                    self.app, execution_id, lane, prefix, task_id
                ),
                backend=BACKEND,
                republish_after=self.settings.celery_republish_after,
                interval=self.settings.poll_interval,
                new_task_id=new_task_id,
            )
            runner.also_run(relay.run)
            self.scheduler = Scheduler(self.settings, self.url, self.registry, store_graph)
            self.scheduler.start()
            self.keeper = HistoryKeeper(self.settings, self.url)
            self.keeper.start()
        runner.start()
        self.runner = runner
        return runner

    def _process_init(self, **_: Any) -> None:
        """A prefork child: its runner; child 0 also runs the scheduler and the relay."""
        self._start(first=getattr(current_process(), "index", 0) == 0)

    def _ready(self, **_: Any) -> None:
        """The node is up: in the solo pool the node's own process runs executions."""
        if self.app.conf.worker_pool == "solo" and self.runner is None:
            self._start(first=True)

    def _process_shutdown(self, **_: Any) -> None:
        if self.keeper is not None:
            self.keeper.stop()
            self.keeper = None
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.runner is not None:
            self.runner.stop()
            self.runner = None


def main(settings: Settings, url: str, registry: Registry, concurrency: int) -> int:
    """Run a node until SIGTERM (warm: the running executions finish) or SIGINT."""
    node = Node(settings, url, registry)
    pool = "solo" if concurrency == 1 else "prefork"
    node.app.conf.worker_pool = pool
    queues = [queue_name(settings.celery_queue_prefix, lane) for lane in LANES]
    worker = node.app.Worker(
        pool_cls=pool,
        concurrency=concurrency,
        queues=queues,
        hostname=f"spine-{os.getpid()}@{socket.gethostname()}",
        loglevel=settings.log_level,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    worker.start()
    return int(getattr(worker, "exitcode", 0) or 0)
