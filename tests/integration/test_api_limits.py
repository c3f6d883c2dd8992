"""The API process under abuse, served by real uvicorn: quiet logs and bounded connections."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, free_port, spine_env, stop_tree, wait_until

pytestmark = pytest.mark.slow


class Api:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def api(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Api]:
    """`spine api` as a subprocess; settings from the test's `api_env` marker."""
    marker = request.node.get_closest_marker("api_env")
    overrides: dict[str, str] = marker.kwargs if marker else {}
    port = free_port()
    log_path = tmp_path / "api.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "api", "--port", str(port)],
            env=spine_env(database_url, **overrides), cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            served = Api(port, log_path)

            def up() -> bool:
                try:
                    return httpx.get(f"{served.url}/api/v1/health", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, timeout=60, interval=0.1)
            yield served
        finally:
            stop_tree(proc.pid)
            proc.wait()


def test_clients_that_disconnect_mid_body_log_one_info_line_each(api: Api) -> None:
    hangups = 20
    for _ in range(hangups):
        with socket.create_connection(("127.0.0.1", api.port)) as s:
            s.sendall(
                b"POST /api/v1/executions HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                b'{"pipeline": "no'
            )

    def handled() -> bool:
        text = api.text()
        return text.count("disconnected") + text.count("unhandled error") >= hangups

    wait_until(handled, timeout=30, interval=0.1)
    text = api.text()
    assert "Traceback" not in text
    assert "unhandled error" not in text
    lines = [line for line in text.splitlines() if "disconnected" in line]
    assert len(lines) == hangups
    assert all(" INFO " in line for line in lines), lines[:3]


@pytest.mark.api_env(SPINE_API_MAX_CONNECTIONS="8")
def test_slow_clients_cannot_make_a_process_hold_more_than_its_limit(api: Api) -> None:
    """Slow-header clients fill the process's quota; past it, requests get an immediate 503."""
    slow = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(12)]
    try:
        for s in slow:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: te")  # and never the rest

        def status() -> int:
            return httpx.get(f"{api.url}/api/v1/health", timeout=5).status_code

        wait_until(lambda: status() == 503, timeout=15, interval=0.1)
    finally:
        for s in slow:
            s.close()
    wait_until(lambda: status() == 200, timeout=15, interval=0.1)
