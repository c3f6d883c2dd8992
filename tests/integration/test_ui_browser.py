"""The dashboard in a real headless Chromium: pages, live updates, actions, charts, the token.

A real `spine api` subprocess serves the pages (and a real worker pool runs
the executions where one is needed); Playwright drives Debian's `chromium`
through its executable path (`scripts/ensure-chromium` installs it; never
`playwright install`). Without it these tests skip, saying why. Each test saves
screenshots under tests/artifacts/ui/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import get_settings
from tests.finra_support import WEEK_FILES
from tests.support import (
    ROOT,
    free_port,
    run_inline,
    spine_env,
    stop_tree,
    wait_until,
    worker_pool,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="the `playwright` package is missing")

CHROMIUM = os.environ.get("SPINE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts" / "ui"
TOKEN = "browser-test-token"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() or shutil.which("chromium")),
    reason=f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium (apt-get install chromium)",
)


class Watched:
    """A page and what went wrong on it: console errors, failed requests, 4xx/5xx answers."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _failed(self, request: Any) -> None:
        # The live stream is cut when the browser leaves the page: that is not a failure.
        if "/ui/events" in request.url and request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"request failed: {request.url} {request.failure}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@contextmanager
def api_server(database_url: str, page: Watched, **settings: str) -> Iterator[str]:
    """`spine api` on a free port; yields its base URL; stopped by pid.

    The page leaves first: a server waits for open responses (the live stream)
    before it stops.
    """
    port = free_port()
    env = spine_env(database_url, **{"SPINE_DATA_DIR": str(ROOT / "data"), **settings})
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(base), timeout=30)
        yield base
    finally:
        page.page.goto("about:blank")
        stop_tree(proc.pid)
        proc.wait()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield Watched(context.new_page())
    finally:
        context.close()


def submit(base: str, pipeline: str, params: dict[str, Any], token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"pipeline": pipeline, "params": params}
    response = httpx.post(f"{base}/api/v1/executions", json=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def status_of(base: str, execution_id: str) -> str:
    return str(httpx.get(f"{base}/api/v1/executions/{execution_id}", timeout=10).json()["status"])


@pytest.fixture
def market_data(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample trades loaded (daily metrics for several symbols)."""
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    # In a thread of its own: Playwright's sync API keeps an event loop on this one.
    with ThreadPoolExecutor(1) as thread:
        load = run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
        done = thread.submit(asyncio.run, load).result()
    assert done.status == "completed", done.error
    return database_url


@pytest.fixture
def finra_data(market_data: str) -> str:
    """The OTC sample and the three real FINRA weeks loaded."""
    with ThreadPoolExecutor(1) as thread:
        for path in WEEK_FILES.values():
            load = run_inline(market_data, "finra_weekly_ingest", {"file": f"finra/{path.name}"})
            done = thread.submit(asyncio.run, load).result()
            assert done.status == "completed", done.error
    return market_data


def test_every_page_loads_without_errors_on_a_laptop_and_a_phone(
    finra_data: str, page: Watched, tmp_path: Path
) -> None:
    database_url = finra_data
    data_dir = str(tmp_path)
    with api_server(database_url, page, SPINE_DATA_DIR=data_dir) as base:
        # A real failure: the file is there when submitted, gone when the worker runs.
        shutil.copy(ROOT / "data" / "otc_sample.csv", tmp_path / "gone.csv")
        failing = submit(base, "otc_ingest", {"file": "gone.csv"})
        (tmp_path / "gone.csv").unlink()
        with worker_pool(database_url, processes=1, SPINE_DATA_DIR=data_dir):
            wait_until(lambda: status_of(base, failing) == "failed")
        pages = {
            "overview": "/ui",
            "executions": "/ui/executions",
            "executions-filtered": "/ui/executions?status=failed&lane=normal&pipeline=otc_ingest",
            "execution-failed": f"/ui/executions/{failing}",
            "market": "/ui/market",
            "loads": "/ui/loads",
            "load-rejects": f"/ui/loads/{_first_load(base)}",
            "finra": "/ui/finra",
            "finra-first-week-by-hhi": f"/ui/finra?week={min(WEEK_FILES)}&sort=hhi",
            "login": "/ui/login",
        }
        for viewport, size in (("laptop", (1280, 860)), ("phone", (390, 844))):
            page.page.set_viewport_size({"width": size[0], "height": size[1]})
            for name, path in pages.items():
                response = page.page.goto(base + path)
                assert response is not None and response.status == 200, path
                page.page.wait_for_load_state("networkidle")
                assert response.headers["content-security-policy"].startswith("default-src 'self'")
                # Nothing wider than the screen: the page scrolls down, not sideways.
                overflow = page.page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{path} is {overflow}px too wide on a {viewport}"
                if name.startswith("finra"):  # the venue bars are drawn, from the API's numbers
                    page.page.wait_for_function("window.spineCharts && window.spineCharts.venues")
                    drawn = page.page.evaluate("window.spineCharts.venues.data[1]")
                    week = min(WEEK_FILES) if "first-week" in name else max(WEEK_FILES)
                    venues = httpx.get(
                        f"{base}/api/v1/finra/weeks/{week}/venues", params={"limit": 15}, timeout=10
                    ).json()
                    assert drawn == [float(v["share_of_shares_pct"]) for v in venues]
                page.shot(f"{name}-{viewport}")
        assert page.page.locator("text=Traceback").count() == 0  # the login page is last
        page.page.goto(f"{base}/ui/executions/{failing}")
        assert "gone.csv" in page.page.locator(".failure").inner_text()
    assert page.problems == []


def _first_load(base: str) -> int:
    loads = httpx.get(f"{base}/api/v1/otc/loads", timeout=10).json()
    assert loads and loads[0]["rejected"] > 0
    return int(loads[0]["id"])


def test_retry_runs_a_failed_execution_again_to_completion(
    database_url: str, page: Watched, tmp_path: Path
) -> None:
    data_dir = str(tmp_path)
    with (
        api_server(database_url, page, SPINE_DATA_DIR=data_dir) as base,
        worker_pool(database_url, processes=1, SPINE_DATA_DIR=data_dir),
    ):
        # It fails for want of its file; given the file back, the retry completes.
        shutil.copy(ROOT / "data" / "otc_sample.csv", tmp_path / "late.csv")
        execution_id = submit(base, "otc_ingest", {"file": "late.csv"})
        (tmp_path / "late.csv").unlink()
        wait_until(lambda: status_of(base, execution_id) == "failed")
        page.page.goto(f"{base}/ui/executions/{execution_id}")
        # A missing file is bad input: failed at once, and the page says it was not retried.
        sync_api.expect(page.page.locator("#attempts")).to_contain_text("not retried")
        shutil.copy(ROOT / "data" / "otc_sample.csv", tmp_path / "late.csv")
        page.page.click("#retry")
        sync_api.expect(page.page.locator(".notice")).to_contain_text("Retry submitted")
        sync_api.expect(page.page.locator("#status")).to_have_text("completed", timeout=30_000)
        # The live feed may show `completed` with the new run's first event (each
        # change carries the row's status) while the end then reloads the page: the
        # count waits for the page that stays.
        sync_api.expect(page.page.locator("#timeline >> text=retried")).to_have_count(1)
        page.shot("execution-retried")
        assert status_of(base, execution_id) == "completed"
    assert page.problems == []


def test_a_submitted_execution_appears_and_completes_without_a_reload(
    database_url: str, page: Watched
) -> None:
    with api_server(database_url, page) as base, worker_pool(database_url, processes=1):
        page.page.goto(f"{base}/ui/executions")
        page.page.evaluate("window.sameDocument = true")
        sync_api.expect(page.page.locator("#live.on")).to_be_visible()
        execution_id = submit(base, "sleep", {"seconds": 1})
        row = page.page.locator(f'tr[data-id="{execution_id}"]')
        sync_api.expect(row).to_be_visible(timeout=15_000)
        sync_api.expect(row.locator(".status")).to_have_text("completed", timeout=30_000)
        assert page.page.evaluate("window.sameDocument") is True  # no reload happened
        page.shot("executions-live")
        assert status_of(base, execution_id) == "completed"
    assert page.problems == []


def test_cancel_on_a_running_sleep_ends_it_cancelled(database_url: str, page: Watched) -> None:
    with api_server(database_url, page) as base, worker_pool(database_url, processes=1):
        execution_id = submit(base, "sleep", {"seconds": 120})
        wait_until(lambda: status_of(base, execution_id) == "running")
        page.page.goto(f"{base}/ui/executions/{execution_id}")
        sync_api.expect(page.page.locator("#progress")).to_have_attribute(
            "max", "120000", timeout=10_000
        )
        page.shot("execution-running")
        page.page.click("#cancel")
        wait_until(lambda: status_of(base, execution_id) == "cancelled")
        sync_api.expect(page.page.locator("#status")).to_have_text("cancelled", timeout=15_000)
        # Waits out the end's reload of the page (the old one still had the button).
        sync_api.expect(page.page.locator("#cancel")).to_have_count(0)
        page.shot("execution-cancelled")
        assert status_of(base, execution_id) == "cancelled"
    assert page.problems == []


def test_the_symbol_chart_draws_the_apis_numbers(market_data: str, page: Watched) -> None:
    with api_server(market_data, page) as base:
        rows = httpx.get(
            f"{base}/api/v1/otc/metrics/daily", params={"symbol": "ACME", "limit": 500}
        ).json()
        assert len(rows) >= 2
        page.page.goto(f"{base}/ui/market?symbol=ACME")
        page.page.wait_for_function("window.spineCharts && window.spineCharts.symbol")
        drawn = page.page.evaluate(
            """() => {
                const u = window.spineCharts.symbol;
                return {
                    labels: u.series.map((s) => s.label || null),
                    data: u.data,
                    // Where the first VWAP point lands: inside the plotting area.
                    y0: u.valToPos(u.data[1][0], "y"),
                    height: u.bbox.height / devicePixelRatio,
                };
            }"""
        )
        page.shot("market-acme")
    assert drawn["labels"] == ["date", "VWAP", "high", "low", "volume"]
    x, vwap, high, low, volume = drawn["data"]
    assert [_day(t) for t in x] == [r["date"] for r in rows]
    assert vwap == [r["vwap"] for r in rows]
    assert high == [r["high_price"] for r in rows]
    assert low == [r["low_price"] for r in rows]
    assert volume == [r["total_volume"] for r in rows]
    assert 0 <= drawn["y0"] <= drawn["height"]
    assert page.problems == []


def _day(epoch_seconds: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).date().isoformat()


def test_with_a_token_the_buttons_refuse_until_logged_in(database_url: str, page: Watched) -> None:
    with api_server(database_url, page, SPINE_API_TOKEN=TOKEN) as base:
        execution_id = submit(base, "sleep", {"seconds": 60}, token=TOKEN)  # no worker: pending
        page.page.goto(f"{base}/ui/executions/{execution_id}")
        with page.page.expect_response(f"**/ui/executions/{execution_id}/cancel") as answer:
            page.page.click("#cancel")
        assert answer.value.status == 401
        assert "needs the API token" in page.page.content()
        page.shot("token-refused")
        assert status_of(base, execution_id) == "pending"
        page.problems.clear()  # the refusal above is the point of this test

        page.page.goto(f"{base}/ui/login?next=/ui/executions/{execution_id}")
        page.page.fill("input[name=token]", "not-the-token")
        page.page.click("button[type=submit] >> text=Log in")
        sync_api.expect(page.page.locator(".problem")).to_have_text("That is not the token.")
        page.page.fill("input[name=token]", TOKEN)
        page.page.click("button[type=submit] >> text=Log in")
        page.page.wait_for_url(f"**/ui/executions/{execution_id}")
        cookie = next(c for c in page.page.context.cookies() if c["name"] == "spine_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
        page.page.click("#cancel")
        sync_api.expect(page.page.locator("#status")).to_have_text("cancelled")
        assert status_of(base, execution_id) == "cancelled"
    assert page.problems == []


def test_on_a_phone_the_menu_collapses_and_the_bars_are_whole(
    market_data: str, page: Watched
) -> None:
    with api_server(market_data, page) as base:
        page.page.set_viewport_size({"width": 390, "height": 844})
        page.page.goto(f"{base}/ui/market?symbol=ACME")
        page.page.wait_for_function("window.spineCharts && window.spineCharts.symbol")
        nav, toggle = page.page.locator("#menu"), page.page.locator("#menu-toggle")
        sync_api.expect(nav).to_be_hidden()
        sync_api.expect(toggle).to_be_visible()
        toggle.click()
        sync_api.expect(nav).to_be_visible()
        sync_api.expect(toggle).to_have_attribute("aria-expanded", "true")
        page.shot("phone-menu-open")
        # A table wider than the phone scrolls inside its own box, not the page.
        boxes = page.page.evaluate(
            """() => [...document.querySelectorAll("table")].map((t) => {
                let box = t.parentElement;
                while (box && getComputedStyle(box).overflowX !== "auto") box = box.parentElement;
                return { wide: t.scrollWidth > window.innerWidth,
                         boxed: !!box && box.clientWidth <= window.innerWidth };
            })"""
        )
        assert boxes and any(b["wide"] for b in boxes)
        assert all(b["boxed"] for b in boxes if b["wide"]), boxes
        # The first and last volume bars are drawn whole: their centres are at least
        # half a day inside the plot, not on its edges.
        edges = page.page.evaluate(
            """() => {
                const u = window.spineCharts.symbol, x = u.data[0];
                return { first: u.valToPos(x[0], "x"), last: u.valToPos(x[x.length - 1], "x"),
                         width: u.bbox.width / devicePixelRatio };
            }"""
        )
        assert edges["first"] > 0 and edges["last"] < edges["width"], edges
        page.page.set_viewport_size({"width": 1280, "height": 860})
        sync_api.expect(toggle).to_be_hidden()
        sync_api.expect(nav).to_be_visible()
    assert page.problems == []
