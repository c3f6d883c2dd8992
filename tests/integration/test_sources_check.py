"""`spine sources check` against a real HTTP publisher in the test process.

The engine's check over three sources (one answering, one on a port nobody listens
on, one answering 503): a line each, no traceback, ok only for the first. The CLI
over the catalog's FINRA source: reachable with credentials (a token asked for and
sent), table and JSON, exit 0; the same source on a closed port: exit 1, one line.
No database is touched.
"""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import date

import pytest
from click.testing import CliRunner, Result

from app.cli import main
from app.config import get_settings
from app.engine.datasets import Dataset, DatasetCatalog
from app.engine.source_checks import check_sources
from app.engine.sources import RemoteSource
from tests.publishers import API_PATH, TOKEN_PATH, Fault, FinraQueryApi, Publisher, serving


def _closed_port() -> int:
    """A port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _dataset(name: str, base_setting: str, source: str | None = None) -> Dataset:
    return Dataset(
        name=name,
        description="A test's.",
        scheme="day",
        pipeline="noop",
        params=lambda p, path: {},
        start=date(2026, 1, 2),
        remote=RemoteSource(
            name=source or name,
            base_setting=base_setting,
            url="/f/{date:%Y%m%d}.txt",
            landing="x/{date:%Y}",
        ),
    )


def spine(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_a_line_per_source_reachable_unreachable_and_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = DatasetCatalog(
        [
            _dataset("up", "source_finra_cdn"),
            _dataset("also_up", "source_finra_cdn", "up"),  # the same source: asked once
            _dataset("down", "source_sec"),
            _dataset("busy", "source_finra_api"),
        ]
    )
    with serving(Publisher({})) as up, serving(Publisher({})) as busy:
        busy.fault("/", Fault(503, {}, b"maintenance\n"))
        monkeypatch.setenv("SPINE_SOURCE_FINRA_CDN", up.url)
        monkeypatch.setenv("SPINE_SOURCE_SEC", f"http://127.0.0.1:{_closed_port()}")
        monkeypatch.setenv("SPINE_SOURCE_FINRA_API", busy.url)
        monkeypatch.setenv("SPINE_HTTP_USER_AGENT", "Market Spine tests ops@example.com")
        get_settings.cache_clear()
        found = asyncio.run(check_sources(get_settings(), catalog))
        assert up.count() == 1 and busy.count() == 1
    by_source = {c.source: c for c in found}
    assert [c.source for c in found] == ["busy", "down", "up"]
    ok = by_source["up"]
    assert ok.datasets == ["also_up", "up"] and ok.url == up.url + "/"
    assert (ok.reachable, ok.status, ok.ok, ok.credentials, ok.error) == (
        True, 404, True, False, None,
    )  # fmt: skip
    assert ok.latency_ms is not None
    down = by_source["down"]
    assert (down.reachable, down.status, down.ok) == (False, None, False)
    assert down.error is not None and "Connect" in down.error and "\n" not in down.error
    failing = by_source["busy"]
    assert (failing.reachable, failing.status, failing.ok, failing.error) == (
        True, 503, False, "HTTP 503",
    )  # fmt: skip


def test_the_cli_checks_finra_with_credentials_then_a_closed_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FinraQueryApi({}, ("client", "s3cret"))
    with serving(Publisher(api=api)) as publisher, serving(Publisher()) as cdn:
        for name, value in {
            "SPINE_SOURCE_FINRA_CDN": cdn.url,  # Reg SHO's files (a 404 answers: reachable)
            "SPINE_SOURCE_SEC": cdn.url,  # the SEC's files, asked with a contact User-Agent
            "SPINE_HTTP_USER_AGENT": "Market Spine tests ops@example.com",
            "SPINE_SOURCE_FINRA_API": publisher.url,
            "SPINE_FINRA_TOKEN_URL": publisher.url + TOKEN_PATH,
            "SPINE_FINRA_API_CLIENT_ID": "client",
            "SPINE_FINRA_API_CLIENT_SECRET": "s3cret",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        table = spine("sources", "check")
        assert table.exit_code == 0, table.output
        line = next(x for x in table.output.splitlines() if x.startswith("finra_api"))
        assert publisher.url + API_PATH in line and "used" in line and " yes " in line
        as_json = spine("sources", "check", "--format", "json")
        assert as_json.exit_code == 0, as_json.output
        checks = {c["source"]: c for c in json.loads(as_json.output)}
        check = checks["finra_api"]
        assert check["datasets"] == ["finra_ats_weekly", "finra_otc_weekly"]
        assert checks["finra_cdn"]["datasets"] == ["regsho_daily"]
        assert checks["finra_cdn"]["reachable"] and not checks["finra_cdn"]["credentials"]
        assert checks["sec"]["datasets"] == ["sec_ftd"] and checks["sec"]["reachable"]
        assert (check["reachable"], check["status"], check["credentials"]) == (True, 405, True)
        assert publisher.count(API_PATH) == 2 and publisher.count(TOKEN_PATH) >= 1
        assert "s3cret" not in table.output + as_json.output

    monkeypatch.delenv("SPINE_FINRA_API_CLIENT_ID")
    monkeypatch.setenv("SPINE_SOURCE_FINRA_API", f"http://127.0.0.1:{_closed_port()}")
    get_settings.cache_clear()
    closed = spine("sources", "check")
    assert closed.exit_code == 1
    assert "Traceback" not in closed.output
    (line,) = [x for x in closed.output.splitlines() if x.startswith("finra_api")]
    assert " no " in line and "ConnectError" in line and "none" in line
