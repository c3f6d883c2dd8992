"""The Celery backend's test harness: the broker, a unique queue prefix, real nodes.

The tests run against the RabbitMQ at SPINE_TEST_AMQP_URL. Without one they are
skipped, with the reason in the summary; with SPINE_TEST_REQUIRE_AMQP=1 (set by
.ci/run) a missing broker fails them instead, so CI never passes them silently.
Each test uses queues of its own prefix (the broker is shared) and deletes them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.engine.models import LANES
from tests.support import ROOT, spine_env, stop_tree

__all__ = ["TcpProxy", "amqp_or_skip", "celery_node", "delete_queues"]

AMQP_ENV = "SPINE_TEST_AMQP_URL"
REQUIRE_ENV = "SPINE_TEST_REQUIRE_AMQP"


def amqp_or_skip() -> str:
    """The test broker's URL, or skip (fail when REQUIRE_ENV is set) saying why not."""
    url = os.environ.get(AMQP_ENV, "")
    reason = None
    if not url:
        reason = f"{AMQP_ENV} is not set (no RabbitMQ for the Celery backend's tests)"
    else:
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 3).close()
        except OSError as exc:
            reason = f"no broker answers at {AMQP_ENV}={url} ({exc})"
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 forbids skipping")
        pytest.skip(reason)
    return url


def new_prefix() -> str:
    return f"spine-test-{uuid.uuid4().hex[:10]}"


def delete_queues(amqp_url: str, prefix: str) -> None:
    """Remove the test's queues from the shared broker."""
    from kombu import Connection, Queue

    with Connection(amqp_url, connect_timeout=5) as conn:
        for lane in LANES:
            Queue(f"{prefix}.{lane}").bind(conn.default_channel).delete()


@contextmanager
def celery_node(
    database_url: str, children: int, log_path: Path | None = None, **settings: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`spine worker start --backend celery` as a subprocess; stopped (tree) on exit."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    cmd = [sys.executable, "-m", "app.cli", "worker", "start", "--backend", "celery"]
    proc = subprocess.Popen(
        [*cmd, "--max-concurrent", str(children)],
        env=spine_env(database_url, **settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        stop_tree(proc.pid)
        proc.wait()
        if log_path:
            log.close()  # type: ignore[union-attr]


class TcpProxy:
    """A TCP proxy to the broker that a test can break: drop (`cut`, refusing new
    connections until `restore`), delay (`delay`, every chunk held that long) or
    cut mid-stream (`cut_mid_stream`: the next chunk either way is sent in part,
    then every connection is dropped; new ones are accepted at once)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._closed = False
        self.delay = 0.0
        self._mid_stream = threading.Event()
        self.mid_stream_cuts = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, amqp_url: str) -> str:
        parts = urlsplit(amqp_url)
        netloc = parts.netloc.rsplit("@", 1)
        auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
        return parts._replace(netloc=f"{auth}127.0.0.1:{self.port}").geturl()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until `restore`."""
        self._open.clear()
        with self._lock:
            self._drop_all()

    def _drop_all(self) -> None:
        """Under the lock: shut every proxied connection."""
        for s in self._conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._conns.clear()

    def restore(self) -> None:
        self._open.set()

    def cut_mid_stream(self) -> None:
        """Arm a cut inside the next chunk (a frame broken in two), then drop everything."""
        self._mid_stream.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)  # the injected fault, not a wait for some state
                if len(data) > 1 and self._mid_stream.is_set():
                    with self._lock:
                        if self._mid_stream.is_set():
                            self._mid_stream.clear()
                            self.mid_stream_cuts += 1
                            dst.sendall(data[: len(data) // 2])
                            self._drop_all()
                            break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Backend:
    """A way to run executions in a test: the local pool or Celery nodes (parametrized)."""

    def __init__(self, name: str, amqp_url: str | None = None, prefix: str | None = None):
        self.name = name
        self.amqp_url = amqp_url
        self.prefix = prefix

    @property
    def env(self) -> dict[str, str]:
        """The settings that choose this backend (for the test process and its children)."""
        if self.name == "local":
            return {}
        assert self.amqp_url is not None and self.prefix is not None
        return {
            "SPINE_BACKEND": "celery",
            "SPINE_CELERY_BROKER_URL": self.amqp_url,
            "SPINE_CELERY_QUEUE_PREFIX": self.prefix,
        }

    @contextmanager
    def workers(
        self, database_url: str, processes: int, log_path: Path | None = None, **settings: str
    ) -> Iterator[subprocess.Popen[bytes]]:
        """The pool with `processes` children, or one Celery node with as many."""
        from tests.support import worker_pool

        if self.name == "local":
            with worker_pool(database_url, processes, log_path, **settings) as proc:
                yield proc
        else:
            with celery_node(database_url, processes, log_path, **self.env, **settings) as proc:
                yield proc
