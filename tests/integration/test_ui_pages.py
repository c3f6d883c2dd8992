"""The dashboard over HTTP (no browser): pages, paging, CSRF, the token, and the live feed.

The browser tests (test_ui_browser.py) cover what needs JavaScript; these
cover the server's side of it quickly, through the real app and database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from app import db
from app.config import get_settings
from app.engine import activity, history
from app.engine.activity import Change
from app.ui.live import LOOKBACK, LiveFeed
from tests.api_support import Client, api_client, make_running
from tests.finra_support import WEEK_FILES, read_file, symbol_of, venues_of
from tests.support import ROOT, run_inline, submit, submit_many

Conn = psycopg.Connection[dict[str, object]]
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
TOKEN = "ui-test-token"


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def form_token(client: Client, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


@asynccontextmanager
async def ui_client() -> AsyncIterator[Client]:
    """The API's test client, showing redirects instead of following them."""
    async with api_client() as client:
        client.follow_redirects = False
        yield client


async def pending_execution(database_url: str) -> str:
    async with await db.aconnect(database_url) as conn:
        execution, _ = await submit(conn, "sleep", {"seconds": 30})
    return execution.id


async def test_every_page_renders_with_a_content_security_policy(database_url: str) -> None:
    execution_id = await pending_execution(database_url)
    async with ui_client() as client:
        paths = ("/ui", "/ui/executions", f"/ui/executions/{execution_id}", "/ui/market")
        for path in (*paths, "/ui/loads", "/ui/finra"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["content-type"].startswith("text/html")
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert "<script>" not in response.text  # only src= scripts and JSON data blocks
        missing = await client.get("/ui/executions/no-such-execution")
        assert missing.status_code == 404
        static = await client.get("/ui/static/vendor/uPlot.iife.min.js")
        assert static.status_code == 200 and b"uPlot" in static.content


async def test_the_list_pages_by_keyset_and_filters(database_url: str, conn: Conn) -> None:
    submit_many(conn, "noop", 60)
    conn.execute("UPDATE executions SET lane = 'backfill' WHERE seq % 10 = 0")  # 6 of them
    async with ui_client() as client:
        first = await client.get("/ui/executions")
        first_ids = re.findall(r'<tr data-id="([^"]+)"', first.text)
        assert len(first_ids) == 50
        older = re.search(r'rel="next" href="([^"]+)"', first.text)
        assert older
        second = await client.get(older.group(1).replace("&amp;", "&"))
        second_ids = re.findall(r'<tr data-id="([^"]+)"', second.text)
        assert len(second_ids) == 10 and not set(first_ids) & set(second_ids)
        assert 'rel="next"' not in second.text

        backfill = await client.get("/ui/executions", params={"lane": "backfill", "status": ""})
        assert len(re.findall(r"<tr data-id=", backfill.text)) == 6
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        later = await client.get("/ui/executions", params={"since": future})
        assert "No execution matches." in later.text
        earlier = await client.get("/ui/executions", params={"until": future, "pipeline": "noop"})
        assert len(re.findall(r"<tr data-id=", earlier.text)) == 50
        bad = await client.get("/ui/executions", params={"status": "bogus"})
        assert bad.status_code == 400
        foreign = await client.get("/ui/executions", params={"cursor": "bm90LWEtY3Vyc29y"})
        assert foreign.status_code == 400


async def test_cancel_needs_the_forms_csrf_token(database_url: str) -> None:
    execution_id = await pending_execution(database_url)
    async with ui_client() as client:
        token = await form_token(client, f"/ui/executions/{execution_id}")
        forged = await client.post(f"/ui/executions/{execution_id}/cancel")
        assert forged.status_code == 403
        still = await client.get(f"/api/v1/executions/{execution_id}")
        assert still.json()["status"] == "pending"
        done = await client.post(
            f"/ui/executions/{execution_id}/cancel", data={"_csrf_token": token}
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith(f"/ui/executions/{execution_id}?notice=")
        assert (await client.get(f"/api/v1/executions/{execution_id}")).json()["status"] == (
            "cancelled"
        )


async def test_with_a_token_actions_need_it_and_the_login_cookie_is_strict(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = await pending_execution(database_url)
    monkeypatch.setenv("SPINE_API_TOKEN", TOKEN)
    async with ui_client() as client:
        csrf = await form_token(client, f"/ui/executions/{execution_id}")  # reads stay open
        refused = await client.post(
            f"/ui/executions/{execution_id}/cancel", data={"_csrf_token": csrf}
        )
        assert refused.status_code == 401

        wrong = await client.post(
            "/ui/login", data={"_csrf_token": csrf, "token": "wrong", "next": "/ui"}
        )
        assert wrong.status_code == 303 and "/ui/login" in wrong.headers["location"]
        assert "spine_token" not in client.cookies

        away = await client.post(
            "/ui/login",
            data={"_csrf_token": csrf, "token": TOKEN, "next": "https://evil.example/"},
        )
        assert away.status_code == 303 and away.headers["location"] == "/ui"  # no open redirect
        cookie = away.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        assert "secure" not in cookie  # plain HTTP here; over HTTPS it is Secure

        allowed = await client.post(
            f"/ui/executions/{execution_id}/cancel", data={"_csrf_token": csrf}
        )
        assert allowed.status_code == 303
        # The API itself still wants the bearer, as before: the cookie is the dashboard's.
        api = await client.post(f"/api/v1/executions/{execution_id}/cancel")
        assert api.status_code == 401


async def test_with_token_reads_pages_send_the_browser_to_log_in(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_API_TOKEN", TOKEN)
    monkeypatch.setenv("SPINE_API_TOKEN_READS", "1")
    async with ui_client() as client:
        page = await client.get("/ui/executions")
        assert page.status_code in (302, 303, 307)
        assert page.headers["location"].startswith("/ui/login?next=")
        assert (await client.get("/ui/login")).status_code == 200
        assert (await client.get("/ui/static/app.css")).status_code == 200
        bearer = await client.get("/ui/executions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200


async def test_retry_puts_a_cancelled_execution_back_to_pending(database_url: str) -> None:
    execution_id = await pending_execution(database_url)
    async with ui_client() as client:
        csrf = await form_token(client, f"/ui/executions/{execution_id}")
        await client.post(f"/ui/executions/{execution_id}/cancel", data={"_csrf_token": csrf})
        page = await client.get(f"/ui/executions/{execution_id}")
        assert 'id="retry"' in page.text and 'id="cancel"' not in page.text
        answer = await client.post(
            f"/ui/executions/{execution_id}/retry", data={"_csrf_token": csrf}
        )
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location.startswith(f"/ui/executions/{execution_id}?notice=Retry+submitted")
        shown = await client.get(location)
        assert 'class="notice"' in shown.text and 'class="problem"' not in shown.text
        assert re.search(r'id="status" class="status status-pending">pending<', shown.text)
        assert 'id="cancel"' in shown.text and 'id="retry"' not in shown.text
        assert "<b>retried</b>" in shown.text  # the timeline shows the retry's event
        again = await client.post(
            f"/ui/executions/{execution_id}/retry", data={"_csrf_token": csrf}
        )
        assert "problem=Retry+refused" in again.headers["location"]  # pending: not ended
    async with await db.aconnect(database_url) as conn:
        row = await history.get(conn, execution_id)
    assert row is not None and row.status == "pending" and row.attempt == 0


async def test_the_detail_shows_attempts_backoff_timeout_and_last_error(
    database_url: str, conn: Conn
) -> None:
    execution_id = await pending_execution(database_url)
    # A first attempt failed and its retry waits out the backoff (as leases.finish writes it).
    conn.execute(
        """UPDATE executions SET attempt = 1, max_attempts = 3, timeout_seconds = 90,
               error = 'boom: the first attempt', available_at = now() + interval '1 hour'
         WHERE id = %s""",
        (execution_id,),
    )
    async with ui_client() as client:
        page = (await client.get(f"/ui/executions/{execution_id}")).text
    assert re.search(r'id="attempts">1 / 3<', page)
    assert 'id="available-at"' in page and "retry backoff" in page
    assert re.search(r'id="timeout">90 s<', page)
    assert "Last error" in page and "boom: the first attempt" in page


async def test_the_overview_shows_queue_backlog_and_workers(database_url: str) -> None:
    oldest = await pending_execution(database_url)
    running = await pending_execution(database_url)
    await make_running(database_url, oldest)  # the claim takes the oldest: now `running`
    async with ui_client() as client:
        page = (await client.get("/ui")).text
    assert running[-8:] in page  # the oldest pending now
    assert "api-test-worker" in page
    counts = re.findall(r'status=(\w+)&amp;lane=normal">(\d+)<', page)
    assert ("pending", "1") in counts and ("running", "1") in counts


async def test_the_overview_lists_schedules_with_their_next_fire(database_url: str) -> None:
    async with ui_client() as client:
        empty = (await client.get("/ui")).text
        assert "No schedules" in empty
        for body in (
            {"name": "nightly", "pipeline": "noop", "cron": "30 18 * * *"},
            {"name": "pulse", "pipeline": "noop", "interval_seconds": 600, "timezone": "UTC"},
        ):
            created = await client.post("/api/v1/schedules", json=body)
            assert created.status_code == 201, created.text
        assert (await client.post("/api/v1/schedules/pulse/pause")).status_code == 200
        nightly = (await client.get("/api/v1/schedules/nightly")).json()
        page = (await client.get("/ui")).text
    rows = dict(re.findall(r'<tr data-schedule="(\w+)">(.*?)</tr>', page, re.S))
    assert set(rows) == {"nightly", "pulse"}
    next_fire = dt.datetime.fromisoformat(nightly["next_fire_at"]).astimezone(dt.UTC)
    assert next_fire.strftime("%Y-%m-%d %H:%M:%S") in rows["nightly"]
    assert "30 18 * * *" in rows["nightly"] and "America/New_York" in rows["nightly"]
    assert re.search(r"<small>in \d+[hms]</small>", rows["nightly"])
    assert "600 s" in rows["pulse"] and "paused" in rows["pulse"]


async def test_throughput_finds_the_last_hour_by_binary_search(database_url: str) -> None:
    """The primary-key search gives what a plain scan of the timestamps gives."""
    async with await db.aconnect(database_url) as conn:
        # Every 3.7 s for about three hours, a fifth of them failures, in time order.
        await _finished_events(
            conn,
            """
            SELECT CASE WHEN n % 5 = 0 THEN 'failed' ELSE 'completed' END,
                   now() - make_interval(secs => (3000 - n) * 3.7), n
            FROM generate_series(1, 3000) AS n
            """,
        )
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        found = await activity.throughput(conn, since)
        cur = await conn.execute(
            """
            SELECT date_trunc('minute', timestamp) AS minute, event_type, count(*)::int AS n
            FROM execution_events WHERE timestamp >= %s GROUP BY 1, 2
            """,
            (since,),
        )
        expected = await cur.fetchall()
    assert sorted(map(_key, found)) == sorted(map(_key, expected))
    assert sum(r["n"] for r in found) > 900  # about an hour's worth of 3.7 s steps


async def test_throughput_counts_an_event_written_after_a_later_one(database_url: str) -> None:
    """A batch's end is stamped when it happened but written with the batch, so event ids do
    not quite follow time; the search must not skip an event of the window for that."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    async with await db.aconnect(database_url) as conn:
        await _finished_events(
            conn,
            """
            SELECT 'completed', %(since)s + make_interval(secs => s.offset_s), s.n
            FROM unnest(ARRAY[-600, 2, -1, 5]) WITH ORDINALITY AS s (offset_s, n)
            """,
            {"since": since},
        )
        found = await activity.throughput(conn, since)
    # The event 2 s into the window was written before one stamped 1 s before it: a search
    # for the window's first id by time alone lands after it.
    assert sum(r["n"] for r in found) == 2


async def _finished_events(
    conn: db.AsyncConn, rows: str, params: dict[str, Any] | None = None
) -> None:
    """Finished executions, one per row of `rows` (event_type, timestamp, n), whose end
    events are written (their ids given) in the order of n."""
    await conn.execute(
        f"""
        WITH e AS (
            SELECT gen_random_uuid()::text AS id, event_type, at, n
            FROM ({rows}) AS e (event_type, at, n)
        ), x AS (
            INSERT INTO executions (id, pipeline, trigger_source, status, completed_at)
            SELECT id, 'noop', 'test', event_type, now() FROM e
        )
        INSERT INTO execution_events (execution_id, event_type, timestamp)
        SELECT e.id, e.event_type, e.at FROM e ORDER BY e.n
        """,
        params,
    )


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["minute"], row["event_type"], row["n"])


async def test_one_feed_fans_each_change_out_to_every_tab_once(database_url: str) -> None:
    async with await db.aconnect(database_url) as conn:
        start = await activity.latest_event_id(conn)
    feed = LiveFeed(database_url)
    try:
        async with feed.subscribe(start) as first, feed.subscribe(start) as second:
            execution_id = await pending_execution(database_url)
            for queue in (first, second):
                change = await asyncio.wait_for(queue.get(), timeout=10)
                assert change is not None
                assert (change.execution_id, change.event_type) == (execution_id, "created")
                assert change.status == "pending"
            async with await db.aconnect(database_url) as conn:
                await feed._read(conn)  # the look-back re-reads the event; it is not resent
            assert first.empty() and second.empty()
    finally:
        await feed.stop()


async def test_a_rare_filter_pages_through_bounded_searches(database_url: str, conn: Conn) -> None:
    """Each page reads at most `budget` rows; following the pages finds every match once."""
    submit_many(conn, "noop", 60)
    conn.execute("UPDATE executions SET lane = 'backfill' WHERE seq % 10 = 0")
    expected = [
        str(r["id"])
        for r in conn.execute(
            "SELECT id FROM executions WHERE lane = 'backfill' ORDER BY created_at DESC, id DESC"
        ).fetchall()
    ]
    found: list[str] = []
    searches = 0
    before = None
    async with await db.aconnect(database_url) as aconn:
        while True:
            page = await activity.browse(aconn, limit=50, lane="backfill", before=before, budget=7)
            found += [e.id for e in page.rows]
            searches += 1
            if page.next_key is None:
                break
            assert page.searched_to is not None  # a short page says where it stopped
            before = page.next_key
    assert found == expected
    assert searches == 9  # 60 rows, 7 at a time


async def test_the_feed_never_replays_more_than_its_look_back(
    database_url: str, conn: Conn
) -> None:
    """A client's `after=0` on a long history starts the feed LOOKBACK events back, no further."""
    submit_many(conn, "noop", LOOKBACK + 100)
    feed = LiveFeed(database_url)
    try:
        async with feed.subscribe(0) as queue:
            execution_id = await pending_execution(database_url)
            received: list[Change] = []
            while not received or received[-1].execution_id != execution_id:
                change = await asyncio.wait_for(queue.get(), timeout=10)
                assert change is not None
                received.append(change)
    finally:
        await feed.stop()
    # At most the look-back and the new execution's event; never the first ones.
    assert len(received) <= LOOKBACK + 1
    assert received[0].event_id > 100


# ------------------------------------------------------------------ loads and rejects


async def test_a_loads_rejects_are_listed_with_reason_and_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    execution = await run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
    assert execution.status == "completed", execution.error
    async with ui_client() as client:
        loads = (await client.get("/ui/loads")).text
        (load_id,) = re.findall(r'<tr data-load="(\d+)">', loads)
        assert "otc_sample.csv" in loads and execution.id[-8:] in loads
        page = await client.get(f"/ui/loads/{load_id}")
        assert page.status_code == 200
        api = (await client.get(f"/api/v1/otc/loads/{load_id}/rejects?limit=100")).json()
    shown = re.findall(
        r'<tr data-line="(\d+)"><td class="num">\d+</td><td class="error">([^<]*)<', page.text
    )
    assert len(api) == 12  # the sample's deliberate bad lines
    assert [(int(n), reason) for n, reason in shown] == [(r["line_no"], r["reason"]) for r in api]
    assert 'rel="next"' not in page.text  # all of them fit one page


async def test_rejects_page_by_line_number_and_lines_are_cut_and_escaped(conn: Conn) -> None:
    load = conn.execute(
        "INSERT INTO otc_loads (execution_id, source_file, file_bytes, market_tz) "
        "VALUES ('e-ui-rejects', 'bad.csv', 1, 'UTC') RETURNING id"
    ).fetchone()
    assert load is not None
    conn.execute(
        """INSERT INTO otc_trades_rejects (load_id, line_no, reason, line)
           SELECT %s, n, 'wrong_column_count', 'line ' || n FROM generate_series(2, 121) n""",
        (load["id"],),
    )
    conn.execute(
        "UPDATE otc_trades_rejects SET line = %s WHERE load_id = %s AND line_no = 2",
        ("<script>alert(1)</script>" + "y" * 1000, load["id"]),
    )
    seen: list[int] = []
    async with ui_client() as client:
        url: str | None = f"/ui/loads/{load['id']}"
        while url:
            page = await client.get(url)
            assert page.status_code == 200, page.text
            lines = [int(n) for n in re.findall(r'<tr data-line="(\d+)">', page.text)]
            assert 0 < len(lines) <= 50
            seen += lines
            found = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else None
            assert len(seen) <= 120, "the pager goes round in circles"
        first = (await client.get(f"/ui/loads/{load['id']}")).text
        assert (await client.get("/ui/loads/424242")).status_code == 404
        assert (await client.get(f"/ui/loads/{load['id']}?cursor=nonsense")).status_code == 400
    assert seen == list(range(2, 122))  # every line once, in file order, in three pages
    assert "<script>alert" not in first and "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    assert "y" * 275 + "…" in first and "y" * 276 not in first  # cut at 300 characters


async def test_loads_page_newest_first_by_keyset(conn: Conn) -> None:
    conn.execute(
        """INSERT INTO otc_loads (execution_id, source_file, file_bytes, market_tz)
           SELECT 'e-ui-load-' || n, 'f' || n || '.csv', 1, 'UTC' FROM generate_series(1, 60) n"""
    )
    async with ui_client() as client:
        first = (await client.get("/ui/loads")).text
        found = re.search(r'rel="next" href="([^"]+)"', first)
        assert found
        second = (await client.get(found.group(1))).text
    ids = [int(i) for page in (first, second) for i in re.findall(r'<tr data-load="(\d+)">', page)]
    assert len(ids) == 60 and ids == sorted(ids, reverse=True) and len(set(ids)) == 60
    assert "not finished" in first  # no summary yet: counts are not made up
    assert 'rel="next"' not in second


# ------------------------------------------------------------------ FINRA weekly


@pytest.fixture
async def finra_loaded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    for path in WEEK_FILES.values():
        params = {"file": f"finra/{path.name}"}
        execution = await run_inline(database_url, "finra_weekly_ingest", params)
        assert execution.status == "completed", execution.error


async def test_finra_page_picks_a_week_and_shows_venue_share_and_symbol_hhi(
    finra_loaded: None,
) -> None:
    first = min(WEEK_FILES)
    async with ui_client() as client:
        latest = (await client.get("/ui/finra")).text
        page = (await client.get(f"/ui/finra?week={first}&sort=hhi")).text
        bad = await client.get("/ui/finra?week=yesterday")
        bad_sort = await client.get("/ui/finra?sort=price")
        empty = (await client.get("/ui/finra?week=2020-01-06")).text
    options = re.findall(r'<option value="(\d{4}-\d\d-\d\d)"( selected)?>', latest)
    assert [w for w, _ in options] == [str(w) for w in sorted(WEEK_FILES, reverse=True)]
    assert options[0][1] == " selected"  # the newest week by default
    assert f'<option value="{first}" selected>' in page
    rows = read_file(WEEK_FILES[first])
    venues = venues_of(rows)[:15]
    chart = json.loads(re.search(r'id="venue-data">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    assert chart["mpid"] == [v.mpid for v in venues]
    assert chart["pct"] == [float(v.share_of_shares_pct) for v in venues]
    shown = re.findall(r'<tr data-mpid="([^"]+)">', page)
    assert shown == [v.mpid for v in venues]
    symbols = re.findall(r'<tr data-symbol="([^"]+)">.*?<td class="num hhi">([^<]*)<', page, re.S)
    assert len(symbols) == 50
    hhis = [Decimal(h.replace(",", "")) for _, h in symbols if h]  # 1,234.5
    assert hhis == sorted(hhis, reverse=True)  # sorted by HHI, as asked
    for name, hhi in symbols[:5]:
        assert Decimal(hhi.replace(",", "")) == symbol_of(rows, name).hhi
    assert bad.status_code == 400 and "week" in bad.text
    assert bad_sort.status_code == 400 and "sort" in bad_sort.text
    assert "No FINRA rows for the week of 2020-01-06" in empty


async def test_finra_page_without_data_says_how_to_load(database_url: str) -> None:
    async with ui_client() as client:
        page = await client.get("/ui/finra")
    assert page.status_code == 200 and "finra_weekly_ingest" in page.text
    assert 'href="/ui/finra"' in page.text  # in the nav
