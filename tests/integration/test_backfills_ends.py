"""A backfill's items after their executions are gone, and its cancel against retries.

- An execution pruned (`spine executions prune`) leaves its item saying how it ended, by
  the materialization it recorded, or `pruned` when none did; never `submitted` again.
  The engine's read, the list's counts, the API, the CLI and the gauges agree.
- A backfill cancelled while one of its executions is held asks that one to stop too:
  its failing attempt then ends `cancelled` instead of going back to pending to retry.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine import backfills, workers
from app.engine.backends import make_backend
from app.engine.recording import record_batch
from tests.api_support import api_client
from tests.finra_support import WEEK_FILES
from tests.support import finra_landing, free_port, run_held, spine_cli

Conn = psycopg.Connection[dict[str, Any]]
WORKER = "backfill-test-worker"


spine = spine_cli


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    # Nothing listens there: a fetch fails at once (retryable, as a publisher down).
    down = f"http://127.0.0.1:{free_port()}"
    return finra_landing(tmp_path, monkeypatch, SPINE_SOURCE_FINRA_API=down)


def _backfill(first: date, last: date) -> dict[str, Any]:
    """`spine backfill` of FINRA's OTC tier from `first` to `last`, as its JSON."""
    made = spine(
        "backfill", "finra_otc_weekly", "--from", str(first), "--to", str(last),
        "--key2", "otc", "--format", "json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    found: dict[str, Any] = json.loads(made.output)
    return found


async def _run(url: str, *, cancel_backfill: str | None = None) -> list[str]:
    """Claim and run the pending executions one at a time, as a worker does; with
    `cancel_backfill`, that backfill is cancelled while the first claimed is held."""
    async with await db.aconnect(url) as conn:
        await workers.heartbeat(conn, WORKER, "test", os.getpid())
    pool = await db.open_async_pool(url, get_settings())
    ran: list[str] = []
    try:
        while True:
            _, claimed, _ = await record_batch(pool, WORKER, [], claim=1)
            if not claimed:
                return ran
            if cancel_backfill is not None:
                async with await db.aconnect(url) as conn:
                    backend = make_backend(get_settings())
                    await backfills.cancel(conn, backend, cancel_backfill)
                cancel_backfill = None
            ran.append(claimed[0].id)
            await run_held(pool, claimed[0], WORKER, registry=default_registry())
    finally:
        await pool.close()


def test_pruned_executions_still_say_how_their_items_ended(
    landing: Path, database_url: str, conn: Conn
) -> None:
    weeks = sorted(WEEK_FILES)
    shutil.copy2(WEEK_FILES[weeks[0]], landing / "finra" / WEEK_FILES[weeks[0]].name)
    backfill = _backfill(weeks[0], weeks[1])
    items = {i["key"]: i for i in backfill["items"]}
    loaded, fetched = f"{weeks[0]}/OTC", f"{weeks[1]}/OTC"
    # The fetch (nothing landed) ends cancelled: it records no materialization.
    cancel = spine("executions", "cancel", items[fetched]["execution_id"])
    assert cancel.exit_code == 0, cancel.output
    asyncio.run(_run(database_url))
    before = json.loads(spine("backfills", "show", backfill["id"], "--format", "json").output)
    assert before["counts"] == {"completed": 1, "cancelled": 1}

    pruned = spine("executions", "prune", "--older-than", "0s")
    assert pruned.exit_code == 0, pruned.output
    assert conn.execute("SELECT count(*) AS n FROM executions_all").fetchone() == {"n": 0}

    expected = {loaded: "completed", fetched: backfills.PRUNED}
    counts = {"completed": 1, backfills.PRUNED: 1}

    async def reads() -> tuple[Any, Any, Any, Any]:
        async with await db.aconnect(database_url) as c:
            one = await backfills.get(c, backfill["id"])
            listed = await backfills.list_recent(c)
        async with api_client() as client:
            shown = (await client.get(f"/api/v1/backfills/{backfill['id']}")).json()
            page = (await client.get("/api/v1/backfills")).json()
        return one, listed, shown, page

    one, listed, shown, page = asyncio.run(reads())
    assert one is not None
    assert {i.key: i.execution_status for i in one.items} == expected
    assert one.counts == listed[0].counts == counts
    assert {i["key"]: i["execution_status"] for i in shown["items"]} == expected
    assert shown["counts"] == page[0]["counts"] == counts
    text = spine("backfills", "show", backfill["id"])
    assert "2 partition(s): completed 1, pruned 1" in text.output
    assert f"{loaded}: submitted {items[loaded]['execution_id']} completed" in text.output
    assert "submitted 1" not in text.output


def test_cancel_stops_a_held_execution_from_retrying(landing: Path, database_url: str) -> None:
    weeks = sorted(WEEK_FILES)
    backfill = _backfill(weeks[0], weeks[0])
    [item] = backfill["items"]

    ran = asyncio.run(_run(database_url, cancel_backfill=backfill["id"]))
    assert ran == [item["execution_id"]]  # no retry waits: nothing left to claim later
    with db.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, cancel_requested FROM executions WHERE id = %s",
            (item["execution_id"],),
        ).fetchone()
        events = conn.execute(
            "SELECT event_type FROM execution_events WHERE execution_id = %s ORDER BY id",
            (item["execution_id"],),
        ).fetchall()
    assert row == {"status": "cancelled", "cancel_requested": True}
    kinds = [e["event_type"] for e in events]
    assert "retry_scheduled" not in kinds and kinds[-1] == "cancelled"
    assert "cancel_requested" in kinds
    shown = json.loads(spine("backfills", "show", backfill["id"], "--format", "json").output)
    assert shown["counts"] == {"cancelled": 1} and shown["cancelled_at"] is not None
