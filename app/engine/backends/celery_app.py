"""The Celery application of the Celery backend: configuration, queues, publishing.

With app.engine.backends.celery and worker/celery_node.py, the only modules that
import Celery (an import-linter contract in pyproject.toml): the default install
needs no broker client. Celery is transport and compute only; PostgreSQL decides.

The configuration, and why:
- `task_ignore_result`: the outcome is the executions row; no result backend.
- Early acknowledgement (`task_acks_late = False`): a message is acknowledged
  as a child takes it, the moment before its claim by id, never held for the
  length of a run (RabbitMQ closes a channel whose delivery stays
  unacknowledged past `consumer_timeout`). Only the node's parent can
  acknowledge, and it hears of a task only as a child takes it and as it
  returns, so "at the claim's commit" is this: a child that dies between taking
  the message and committing its claim leaves the execution pending and
  published, and the relay publishes it again after
  SPINE_CELERY_REPUBLISH_AFTER. A child killed mid-run is the lease's: its
  execution is recovered by the sweep, counted as an attempt, never twice at once.
- `worker_prefetch_multiplier = 1`: a node holds at most one message per child
  waiting for a free one; a message that waits longer than
  SPINE_CELERY_REQUEUE_WAITING_AFTER is given back (worker/celery_node.py).
- No countdown, ETA or Celery retry: the engine's backoff is `available_at`, and
  the relay publishes a retry when it is due.
- One durable queue per lane, `<SPINE_CELERY_QUEUE_PREFIX>.<lane>`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import Celery
from kombu import Exchange, Queue

from app.config import Settings
from app.engine.models import LANES

__all__ = [
    "TASK_NAME",
    "broker_reachable",
    "make_app",
    "new_task_id",
    "publish",
    "publish_many",
    "queue_name",
]

log = logging.getLogger("spine.celery")

TASK_NAME = "spine.run_execution"

CONNECT_TIMEOUT = 2
"""Seconds a publish or a health probe waits for the broker before giving up."""


def queue_name(prefix: str, lane: str) -> str:
    return f"{prefix}.{lane}"


def make_app(settings: Settings) -> Celery:
    """The Celery app of this deployment (a publisher's or a worker node's)."""
    app = Celery("market_spine", broker=settings.celery_broker_url, set_as_current=False)
    prefix = settings.celery_queue_prefix
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_queues=[_queue(queue_name(prefix, lane)) for lane in LANES],
        task_default_queue=queue_name(prefix, "normal"),
        task_create_missing_queues=False,
        task_serializer="json",
        accept_content=["json"],
        # A publish during an outage fails fast: the outbox keeps the execution.
        task_publish_retry=False,
        broker_connection_timeout=CONNECT_TIMEOUT,
        broker_connection_retry_on_startup=True,
        broker_heartbeat=10,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


def _queue(name: str) -> Queue:
    """A durable queue bound to a direct exchange of its own name, by its own name."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name, durable=True)


def new_task_id() -> str:
    return str(uuid.uuid4())


def publish(
    app: Celery, execution_id: str, lane: str, prefix: str, task_id: str | None = None
) -> str:
    """Send the task of one execution (its id only); returns the task id (its run id)."""
    task_id = task_id or new_task_id()
    name = queue_name(prefix, lane)
    app.send_task(TASK_NAME, args=[execution_id], queue=name, routing_key=name, task_id=task_id)
    return task_id


def publish_many(app: Celery, tasks: Sequence[tuple[str, str, str]], prefix: str) -> int:
    """Send the tasks (execution id, lane, task id) in order through one producer (one
    connection and channel) until the broker refuses one; returns how many were sent."""
    if not tasks:
        return 0
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for execution_id, lane, task_id in tasks:
                name = queue_name(prefix, lane)
                app.send_task(
                    TASK_NAME,
                    args=[execution_id],
                    queue=name,
                    routing_key=name,
                    task_id=task_id,
                    producer=producer,
                )
                sent += 1
    except Exception as exc:  # the transport's errors vary
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("broker refused after %d of %d publish(es) (%s)", sent, len(tasks), message)
    return sent


def broker_reachable(app: Celery) -> str | None:
    """None when the broker answers, else why not (one line)."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # any transport error means "not reachable now"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return None
