"""Dashboard live streams cannot take the API's connections (issue 31, defect 2).

255 open `GET /ui/events` streams used to fill SPINE_API_MAX_CONNECTIONS, and
every health probe then got 503. Served by real uvicorn, as in production.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, free_port, spine_env, stop_tree, wait_until

pytestmark = pytest.mark.slow

STREAM_REQUEST = b"GET /ui/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n"


@pytest.fixture
def api_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """`spine api` as a subprocess; settings from the test's `api_env` marker."""
    marker = request.node.get_closest_marker("api_env")
    overrides: dict[str, str] = marker.kwargs if marker else {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "api.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "api", "--port", str(port)],
            env=spine_env(database_url, **overrides), cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, timeout=60, interval=0.1)
            yield url
        finally:
            stop_tree(proc.pid)
            proc.wait()


def _open_stream(port: int) -> tuple[socket.socket, bytes]:
    """A stream's connection and its response head (up to the first event for a 200)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(STREAM_REQUEST)
    head = b""
    while b"\r\n\r\n" not in head or (
        head.startswith(b"HTTP/1.1 200") and b"connected" not in head
    ):
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head


def _open_streams(port: int, count: int) -> tuple[list[socket.socket], list[bytes]]:
    held, refused = [], []
    for _ in range(count):
        s, head = _open_stream(port)
        if head.startswith(b"HTTP/1.1 200"):
            held.append(s)
        else:
            refused.append(head)
            s.close()  # as a browser's EventSource does after a 503
    return held, refused


def _health_ms(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(f"{url}/api/v1/health")
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200
    return elapsed


@pytest.mark.api_env(SPINE_UI_MAX_LIVE_STREAMS="4", SPINE_API_MAX_CONNECTIONS="16")
def test_streams_past_the_cap_get_503_and_probes_stay_answerable(api_url: str) -> None:
    port = int(api_url.rsplit(":", 1)[1])
    held, refused = _open_streams(port, 4 + 6)
    try:
        assert len(held) == 4
        assert len(refused) == 6
        for head in refused:
            assert head.startswith(b"HTTP/1.1 503"), head
            assert b"\r\nretry-after: 20\r\n" in head.lower(), head
        with httpx.Client(timeout=5) as client:
            assert max(_health_ms(client, api_url) for _ in range(20)) < 1000
            assert client.get(f"{api_url}/api/v1/health/ready").status_code == 200
    finally:
        for s in held:
            s.close()

    def slot_free() -> bool:
        s, head = _open_stream(port)
        s.close()
        return head.startswith(b"HTTP/1.1 200")

    # A closed stream gives its slot back at once (0.1 s measured), not at its 20 s end.
    wait_until(slot_free, timeout=5, interval=0.1)


def test_three_hundred_streams_with_the_defaults_leave_health_fast(api_url: str) -> None:
    """The issue's figure, recorded in docs/operations.md: p99 of GET /api/v1/health."""
    port = int(api_url.rsplit(":", 1)[1])
    held, refused = _open_streams(port, 300)
    try:
        assert len(held) == 32  # SPINE_UI_MAX_LIVE_STREAMS' default
        assert len(refused) == 300 - 32
        with httpx.Client(timeout=5) as client:
            _health_ms(client, api_url)  # the connection is opened outside the measurement
            timings = sorted(_health_ms(client, api_url) for _ in range(1000))
    finally:
        for s in held:
            s.close()
    p99 = timings[989]
    p50 = statistics.median(timings)
    print(f"\nhealth with 300 streams asked: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    # Each answer was a 200 (`_health_ms`): the streams left the health check its
    # connections. The 10 ms (1.6-4.3 ms measured, docs/operations.md) is a
    # figure printed here, not asserted: on a CI machine shared with the other half of
    # the suite, a scheduler's gap reaches the p99. A second answers only a blocked one.
    assert p99 < 1000
