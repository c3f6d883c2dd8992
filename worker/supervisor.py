"""The supervisor: keeps `max_concurrent` worker processes alive.

It never touches the database (each child opens its own connections after
the fork; slot 0's child also runs the pool's scheduler, see
worker/scheduler.py), restarts a child that dies, turns the first
SIGTERM/SIGINT into a graceful stop of every child and the second into an
immediate one. Children get SIGTERM from the kernel if the supervisor itself
dies (PR_SET_PDEATHSIG).

With SPINE_METRICS_PORT set it also serves the pool's Prometheus metrics: the
children count in prometheus-client's multiprocess files, in a directory of
this pool's own (PROMETHEUS_MULTIPROC_DIR, set before the first fork and
cleaned at start), and a thread here serves their sum.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

from app.config import Settings
from app.engine.retry import Backoff
from app.logs import configure_logging

__all__ = ["Supervisor"]

log = logging.getLogger("spine.supervisor")

_PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_MAX = 10.0
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
STABLE_AFTER = 10.0  # seconds a child must live for its restart not to count as a crash loop
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to this child when the supervisor dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_main(settings: Settings, url: str | None, parent_pid: int, slot: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
        sys.exit(0)
    # Fresh signal dispositions (the worker installs its own handlers), then let
    # through what arrived since the fork: until here the supervisor's handler
    # was this process's too, and must never run in a child.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    configure_logging(settings.log_level, settings.log_format)
    from app import db
    from app.catalog import default_registry, store_graph
    from worker.history_keeper import HistoryKeeper
    from worker.loop import main
    from worker.scheduler import Scheduler

    # This process's entry point: the URL and the registry are resolved once, here.
    url = url or db.database_url(settings)
    registry = default_registry()
    # The pool's one scheduler lives in slot 0's process (worker/scheduler.py says why).
    # So does its history keeper (worker/history_keeper.py).
    scheduler = Scheduler(settings, url, registry, store_graph) if slot == 0 else None
    keeper = HistoryKeeper(settings, url) if slot == 0 else None
    if scheduler is not None and keeper is not None:
        scheduler.start()
        keeper.start()
    try:
        code = main(settings, url, registry)
    finally:
        if scheduler is not None and keeper is not None:
            keeper.stop()
            scheduler.stop()
    sys.exit(code)


class Supervisor:
    def __init__(self, settings: Settings, url: str | None = None, processes: int | None = None):
        self.settings = settings
        self.url = url
        self.size = processes or settings.max_concurrent
        self._ctx = multiprocessing.get_context("fork")
        self._children: dict[int, BaseProcess] = {}  # slot -> process
        self._stopping = False
        self._signals = 0
        self._crashed: dict[int, bool] = {}  # slot -> died with an error since it last ran stably
        self._backoff: dict[int, Backoff] = {}
        self._started_at: dict[int, float] = {}
        self._metrics_dir: Path | None = None
        self._own_metrics_dir = False
        self._stop_serving: list[Callable[[], None]] = []

    def _start_metrics(self) -> None:
        """Choose the metrics mode before prometheus-client is imported; serve when asked.

        The mode is fixed by the environment when the first metric is made, so
        PROMETHEUS_MULTIPROC_DIR is set here, before `worker.metrics` is
        imported and before any fork (children inherit it).
        """
        port = self.settings.metrics_port
        if port:
            given = os.environ.get(MULTIPROC_ENV)
            directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="spine-metrics-"))
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.glob("*.db"):  # counts of an earlier pool are not this one's
                stale.unlink()
            os.environ[MULTIPROC_ENV] = str(directory)
            self._metrics_dir, self._own_metrics_dir = directory, not given
        from prometheus_client import start_http_server

        from worker import metrics

        if self._metrics_dir is not None:
            host = self.settings.metrics_host
            server, _ = start_http_server(
                port, addr=host, registry=metrics.pool_registry(self._metrics_dir)
            )
            # A child must not keep the listening socket (it would outlive the supervisor).
            os.register_at_fork(after_in_child=server.socket.close)
            self._stop_serving = [server.shutdown, server.server_close]
            log.info("serving the pool's metrics on http://%s:%d/metrics", host, port)

    def _stop_metrics(self) -> None:
        for stop in self._stop_serving:
            stop()
        if self._own_metrics_dir and self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _spawn(self, slot: int) -> None:
        proc = self._ctx.Process(
            target=_child_main,
            args=(self.settings, self.url, os.getpid(), slot),
            name=f"spine-worker-{slot}",
            daemon=False,
        )
        # Held across the fork (the child unblocks them once its handlers are its
        # own) and until the child is registered, so a stop that arrived meanwhile
        # is handled after that and its broadcast reaches the new child too.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            proc.start()
            self._children[slot] = proc
            self._started_at[slot] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        log.info("started worker process %d (slot %d)", proc.pid, slot)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            log.info("%s: stopping workers gracefully (again to stop at once)", name)
            self._stopping = True
            self._broadcast(signal.SIGTERM)
        else:
            log.warning("%s again: killing workers now", name)
            self._broadcast(signal.SIGKILL)
            os._exit(1)

    def _broadcast(self, sig: int) -> None:
        for proc in self._children.values():
            if proc.pid is not None and proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("supervisor %d starting %d worker process(es)", os.getpid(), self.size)
        try:
            self._start_metrics()
            return self._supervise()
        finally:
            self._stop_metrics()

    def _supervise(self) -> int:
        from worker import metrics  # imported by _start_metrics, in the mode it chose

        for slot in range(self.size):
            if self._stopping:
                break
            self._spawn(slot)
        exit_code = 0
        while self._children:
            sentinels = {p.sentinel: slot for slot, p in self._children.items()}
            ready = multiprocessing.connection.wait(list(sentinels), timeout=1.0)
            for sentinel in ready:
                slot = sentinels[sentinel]  # type: ignore[index]
                proc = self._children.pop(slot)
                proc.join()
                code = proc.exitcode
                if self._metrics_dir is not None and proc.pid is not None:
                    metrics.process_dead(proc.pid, self._metrics_dir)
                if self._stopping:
                    log.info("worker process %d exited (%s)", proc.pid, _describe(code))
                    if code not in (0, -signal.SIGTERM):
                        exit_code = 1
                    continue
                self._restart(slot, proc.pid, code)
        log.info("supervisor %d stopped", os.getpid())
        return exit_code

    def _restart(self, slot: int, pid: int | None, code: int | None) -> None:
        from worker import metrics

        lived = time.monotonic() - self._started_at.get(slot, 0.0)
        backoff = self._backoff.setdefault(slot, Backoff(0.25, RESTART_BACKOFF_MAX))
        if lived > STABLE_AFTER:  # a child that ran a while before dying is no crash loop
            backoff.reset()
            self._crashed[slot] = False
        # The first crash restarts at once; crashes in a row back off.
        delay = backoff.next() if code != 0 and self._crashed.get(slot) else 0.0
        if code != 0:
            self._crashed[slot] = True
        log.warning(
            "worker process %s died (%s); restarting%s",
            pid,
            _describe(code),
            f" in {delay:.1f}s" if delay else "",
        )
        if delay:
            time.sleep(delay)  # back off a crash loop; signals still interrupt it
        if not self._stopping:
            self._spawn(slot)
            metrics.worker_restarted()


def _describe(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def main(processes: int | None = None) -> int:
    """Run a pool on the configured database until SIGTERM/SIGINT; a bad setting is one line."""
    from app import db
    from app.config import ConfigError, get_settings

    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    # Resolves (or starts) the embedded server; opens no connection before the fork.
    return Supervisor(settings, db.database_url(settings), processes).run()
