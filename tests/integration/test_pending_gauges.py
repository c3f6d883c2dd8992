"""The oldest-pending gauge counts only due work, from when it became due (issue 31, defect 3).

It used to count from created_at and include executions waiting on purpose
(a retry's backoff, a future run_at): one `--in 1d` run made it climb all day.
"""

from __future__ import annotations

import re

import psycopg

from tests.api_support import api_client
from tests.integration.test_metrics import by, parse, scrape_api

Conn = psycopg.Connection[dict[str, object]]


def _pending(conn: Conn, lane: str, *, created: str, available: str) -> str:
    """A pending execution created `created` ago, claimable from now + `available`."""
    row = conn.execute(
        "INSERT INTO executions (pipeline, lane, trigger_source, created_at, available_at)"
        " VALUES ('noop', %s, 'test', now() - %s::interval, now() + %s::interval) RETURNING id",
        (lane, created, available),
    ).fetchone()
    assert row is not None
    return str(row["id"])


def _queue(conn: Conn) -> dict[str, str]:
    """normal: one due for a minute (a retry created a day ago) and one delayed to tomorrow;
    backfill: only one waiting out a retry backoff."""
    return {
        "delayed": _pending(conn, "normal", created="2 days", available="1 day"),
        "due": _pending(conn, "normal", created="1 day", available="-60 seconds"),
        "backoff": _pending(conn, "backfill", created="3 days", available="1 hour"),
    }


async def test_the_gauge_counts_due_executions_from_when_they_became_due(
    database_url: str, conn: Conn
) -> None:
    _queue(conn)
    async with api_client() as client:
        samples = parse(await scrape_api(client))
    oldest = by(samples, "spine_oldest_pending_age_seconds", "lane")
    assert 60 <= oldest[("normal",)] < 600  # not a day or two: the due one, due for a minute
    assert oldest[("backfill",)] == 0  # nothing there is due yet
    not_due = by(samples, "spine_pending_not_due", "lane")
    assert not_due == {("normal",): 1, ("backfill",): 1}
    pending = by(samples, "spine_executions", "status", "lane")
    assert pending[("pending", "normal")] == 2 and pending[("pending", "backfill")] == 1


async def test_the_overview_shows_the_longest_due_and_what_waits_apart(
    database_url: str, conn: Conn
) -> None:
    ids = _queue(conn)
    async with api_client() as client:
        page = (await client.get("/ui")).text
    panel = page[page.index('id="oldest"') :]
    panel = panel[: panel.index("</table>")]
    rows = dict(re.findall(r"<tr><td>(normal|backfill)</td>(.*?)</tr>", panel, re.S))
    assert ids["due"][-8:] in rows["normal"] and "1m" in rows["normal"]
    assert ids["delayed"][-8:] not in panel and ids["backoff"][-8:] not in panel
    assert "none due" in rows["backfill"]
    assert re.search(r"1 not yet due.*?next in (23h|1d)", rows["normal"], re.S)
    assert re.search(r"1 not yet due.*?next in (59m|1h)", rows["backfill"], re.S)
