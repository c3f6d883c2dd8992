"""Past the cap on live streams the dashboard polls instead (issue 31, defect 2), in Chromium."""

from __future__ import annotations

import socket

import pytest

from tests.integration.test_ui_browser import (  # noqa: F401 (fixtures)
    Watched,
    api_server,
    browser,
    page,
    submit,
    sync_api,
)

pytestmark = pytest.mark.slow


def test_a_tab_refused_a_stream_polls_and_still_shows_new_executions(
    database_url: str,
    page: Watched,  # noqa: F811 (the fixture imported above)
) -> None:
    with api_server(database_url, page, SPINE_UI_MAX_LIVE_STREAMS="1") as base:
        port = int(base.rsplit(":", 1)[1])
        # Another tab holds the only stream (for its 20 s).
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            held.sendall(b"GET /ui/events HTTP/1.1\r\nHost: test\r\n\r\n")
            assert held.recv(4096).startswith(b"HTTP/1.1 200")
            with page.page.expect_response(lambda r: "/ui/events" in r.url) as refused:
                page.page.goto(f"{base}/ui/executions")
            assert refused.value.status == 503
            page.page.evaluate("window.sameDocument = true")
            execution_id = submit(base, "sleep", {"seconds": 1})  # no worker: it stays pending
            row = page.page.locator(f'tr[data-id="{execution_id}"]')
            sync_api.expect(row).to_be_visible(timeout=12_000)  # a poll every 5 s
            assert page.page.evaluate("window.sameDocument") is True  # polled, not reloaded
            sync_api.expect(page.page.locator("#live.on")).to_have_count(0)
        finally:
            held.close()
    refused_streams = [p for p in page.problems if "/ui/events" in p or "503" in p]
    assert refused_streams  # the 503 was seen, and nothing else went wrong
    assert [p for p in page.problems if p not in refused_streams] == []
