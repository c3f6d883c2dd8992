"""The API process under abuse, served by real uvicorn: quiet logs, bounded connections,
and a login that cannot be guessed at network speed."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
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


LOGIN_TOKEN = "login-backoff-token-0123"


@pytest.mark.api_env(SPINE_API_TOKEN=LOGIN_TOKEN)
def test_wrong_login_tokens_back_off_doubling_and_the_right_one_resets(api: Api) -> None:
    """One typo is free; then 1 s, 2 s, ... during which every attempt is a 429 unchecked."""
    with httpx.Client(base_url=api.url, follow_redirects=False, timeout=10) as client:
        page = client.get("/ui/login")
        found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        csrf = found.group(1)

        def attempt(token: str) -> httpx.Response:
            form = {"_csrf_token": csrf, "token": token, "next": "/ui"}
            return client.post("/ui/login", data=form)

        assert attempt("typo").status_code == 303  # back to the form, free
        assert attempt("wrong").status_code == 303  # counted: 1 s to wait now
        # A burst inside the wait (half of it: the answers are rendered pages, and a
        # loaded machine may serve few of them in the second), at most 200 attempts.
        inside = time.monotonic() + 0.5
        burst = [attempt("guess-0")]
        while len(burst) < 200 and time.monotonic() < inside:
            burst.append(attempt(f"guess-{len(burst)}"))
        assert {r.status_code for r in burst} == {429}, len(burst)
        assert burst[0].headers["retry-after"] == "1"
        assert "try again in 1 s" in burst[0].text

        # Polling with a wrong token is refused until the wait is over; then it counts.
        wait_until(lambda: attempt("wrong again").status_code == 303, timeout=10, interval=0.05)
        doubled = attempt("guess")
        assert doubled.status_code == 429 and doubled.headers["retry-after"] == "2"
        assert attempt(LOGIN_TOKEN).status_code == 429  # not even checked while waiting

        def logged_in() -> httpx.Response | None:
            response = attempt(LOGIN_TOKEN)
            return response if response.status_code == 303 else None

        success = wait_until(logged_in, timeout=10, interval=0.05)
        assert "spine_token=" in success.headers["set-cookie"]
        # The right token reset the count: one free typo again, then a 1 s wait.
        assert attempt("typo").status_code == 303
        assert attempt("wrong").status_code == 303
        assert attempt("guess").headers["retry-after"] == "1"


def _send_huge_head(port: int, head: bytes, tail: bytes, size: int) -> tuple[int, bytes]:
    """Send `head`, `size` filler bytes, `tail`; return (bytes sent, what came back)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(head)
            chunk = b"a" * (256 * 1024)
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
            s.sendall(tail)
        except OSError:
            pass  # refused mid-send: the server closed the connection
        try:
            answer = s.recv(4096)
        except OSError:
            answer = b""
    return sent, answer


def test_a_100_mb_header_or_query_string_is_refused_at_once(api: Api) -> None:
    size = 100 * 1024 * 1024
    for head, tail in (
        (b"GET /api/v1/health HTTP/1.1\r\nHost: test\r\nX-Big: ", b"\r\n\r\n"),
        (b"GET /api/v1/health?q=", b" HTTP/1.1\r\nHost: test\r\n\r\n"),
    ):
        sent, answer = _send_huge_head(api.port, head, tail, size)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b"65536 bytes" in answer
        assert sent < 16 * 1024 * 1024, f"the server read {sent:,} bytes before refusing"
    # Heads under the cap, and a body larger than the cap after a small head, still pass.
    big = "b" * 40_000
    assert httpx.get(f"{api.url}/api/v1/health", headers={"X-Big": big}).status_code == 200
    assert httpx.get(f"{api.url}/api/v1/health?q={big}").status_code == 200
    body = b'{"pipeline": "noop", "logical_key": "' + b"k" * 150 + b'", "params": {}}'
    body += b" " * 200_000  # one read can hold the head and the start of the body
    response = httpx.post(
        f"{api.url}/api/v1/executions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
