"""A Celery worker node for the Celery backend (`spine worker start --backend celery`).

Celery supervises the processes (prefork with K children, K=1 included) and
delivers the messages; each child runs a Runner (worker/celery_runner.py),
which claims the message's execution by id in PostgreSQL and runs it. The
node's first child also runs the pool's scheduler thread and the outbox relay,
as a pool's slot 0 runs the scheduler: schedules fire once per slot whatever
the number of nodes (the database keeps them exactly once), and Celery beat is
not used. Connections to PostgreSQL are opened in each child after the fork;
the parent opens none.

A message is acknowledged as a child takes it, just before the claim (see
app.engine.backends.celery_app), so no message stays unacknowledged for the
length of a run. The parent holds up to one more message per child, waiting for
a free one; `WaitingMessages` gives back any that waited longer than
SPINE_CELERY_REQUEUE_WAITING_AFTER (the copy it still holds runs later and
claims nothing if the returned one ran first). Prefork even for one child: a
solo node runs its task in the consumer's own thread, so neither the broker's
heartbeats nor this check would run until the task returned. SIGTERM is
Celery's warm shutdown: the running executions finish and are recorded.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import weakref
from typing import Any

from billiard.process import current_process
from celery import Celery, signals
from celery.worker import state

from app.catalog import store_graph
from app.config import Settings
from app.engine.backends.celery_app import (
    TASK_NAME,
    make_app,
    new_task_id,
    publish_many,
    queue_name,
)
from app.engine.models import LANES
from app.engine.registry import Registry
from worker.celery_relay import Relay
from worker.celery_runner import BACKEND, Outcome, Runner
from worker.history_keeper import HistoryKeeper
from worker.scheduler import Scheduler

__all__ = ["Node", "WaitingMessages", "main"]

log = logging.getLogger("spine.celery")


class WaitingMessages:
    """The parent's check that no message waits unacknowledged for a busy child too long."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._since: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    @property
    def interval(self) -> float:
        return max(0.2, min(self.after / 4, 10.0))

    def received(self, request: Any = None, **_: Any) -> None:
        """Celery's task_received (in the parent): the message is held from now."""
        if request is not None:
            self._since[request] = time.monotonic()

    def give_back(self) -> int:
        """Requeue the held messages no child has taken for `after` seconds."""
        limit = time.monotonic() - self.after
        old = [
            r
            for r in list(state.reserved_requests)
            if r.time_start is None and not r.acknowledged and self._since.get(r, limit) < limit
        ]
        for request in old:
            request.reject(requeue=True)
        if old:
            log.info("gave back %d message(s) that waited for a busy child", len(old))
        return len(old)


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
        self.waiting = WaitingMessages(settings.celery_requeue_waiting_after)
        self.app.task(name=TASK_NAME)(self._run)  # ignore_result, early ack: the app's conf
        signals.worker_process_init.connect(self._process_init, weak=False)
        signals.worker_process_shutdown.connect(self._process_shutdown, weak=False)
        signals.task_received.connect(self.waiting.received, weak=False)
        signals.worker_ready.connect(self._ready, weak=False)

    def _run(self, execution_id: str) -> Outcome:
        """The task: claim by id and run (its message was acknowledged as it began)."""
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
                lambda tasks: publish_many(self.app, tasks, prefix),
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

    def _ready(self, sender: Any = None, **_: Any) -> None:
        """The node is up (in the parent): check the waiting messages from now on."""
        timer = getattr(sender, "timer", None)
        if timer is not None:
            timer.call_repeatedly(self.waiting.interval, self.waiting.give_back)

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
    queues = [queue_name(settings.celery_queue_prefix, lane) for lane in LANES]
    worker = node.app.Worker(
        pool_cls="prefork",
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
