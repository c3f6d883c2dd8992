"""Bulk submit: POST /api/v1/executions/batch and `spine run --from-file`.

Each item is checked as one submit; the valid ones go in one insert statement with one
NOTIFY; a logical_key held by an active execution, or by an earlier item, answers that
execution; concurrent bulk submits sharing keys create each execution once.
Notifications are counted up to a sentinel NOTIFY (PostgreSQL delivers them in commit
order, so what came before the sentinel is all there is).
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner

from app import db
from app.catalog import default_registry
from app.cli import main
from app.config import get_settings
from app.engine.backends import LocalBackend
from app.engine.models import EXECUTIONS_CHANNEL
from app.engine.submit import Submission, submit_batch
from tests.api_support import api_client, problem

Conn = psycopg.Connection[dict[str, object]]
SENTINEL = "sentinel"
BATCH = "/api/v1/executions/batch"


async def _payloads_until_sentinel(listener: db.AsyncConn, database_url: str) -> list[str]:
    async with await db.aconnect(database_url) as other:
        await other.execute("SELECT pg_notify(%s, %s)", (EXECUTIONS_CHANNEL, SENTINEL))
    payloads: list[str] = []
    async for note in listener.notifies(timeout=30):
        if note.payload == SENTINEL:
            return payloads
        payloads.append(note.payload)
    raise AssertionError(f"no sentinel within 30 s; got {payloads}")


async def test_each_item_is_checked_as_one_submit(database_url: str, conn: Conn) -> None:
    items: list[dict[str, Any]] = [
        {"pipeline": "noop"},
        {"pipeline": "nope"},
        {"pipeline": "noop", "colour": "red"},
        {"pipeline": "sleep", "params": {"seconds": "2"}},
        {"pipeline": "sleep", "params": {"seconds": -3}},
        {"pipeline": "noop", "logical_key": " "},
        {"pipeline": "noop", "lane": "fast"},
        {"pipeline": "noop", "run_at": "2026-01-06T16:00:00"},
        {"pipeline": "sleep", "params": {"seconds": 2}, "max_attempts": 4},
    ]
    async with api_client() as client:
        response = await client.post(BATCH, json={"executions": items})
    assert response.status_code == 422, response.text  # the valid ones are submitted
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["created"] + ["invalid"] * 7 + ["created"]
    errors = [r["error"] for r in results[1:8]]
    assert "unknown pipeline 'nope'" in errors[0]
    assert "colour" in errors[1]
    assert "params.seconds" in errors[2] and "params.seconds" in errors[3]
    assert "blank" in errors[4]
    assert "lane" in errors[5]
    assert "time zone" in errors[6] or "run_at" in errors[6]
    assert all(r["execution"] is None for r in results[1:8])
    last = results[8]["execution"]
    assert (last["params"], last["max_attempts"]) == ({"seconds": 2.0}, 4)
    stored = conn.execute("SELECT id FROM executions ORDER BY seq").fetchall()
    assert [str(r["id"]) for r in stored] == [results[0]["execution"]["id"], last["id"]]


async def test_a_batch_is_checked_as_a_whole_too(database_url: str) -> None:
    async with api_client() as client:
        too_many = {"executions": [{"pipeline": "noop"}] * 1001}
        problem(await client.post(BATCH, json=too_many), 400)
        problem(await client.post(BATCH, json={"executions": []}), 400)
        problem(await client.post(BATCH, json={"executions": [], "extra": 1}), 400)


async def test_a_held_key_answers_its_holder_also_within_one_batch(
    database_url: str, conn: Conn
) -> None:
    async with api_client() as client:
        held = await client.post(
            "/api/v1/executions", json={"pipeline": "noop", "logical_key": "k"}
        )
        holder = held.json()["id"]
        items = [
            {"pipeline": "noop", "logical_key": "k"},
            {"pipeline": "noop", "logical_key": "k2"},
            {"pipeline": "sleep", "logical_key": "k2"},
            {"pipeline": "noop"},
            {"pipeline": "noop"},
        ]
        response = await client.post(BATCH, json={"executions": items})
    results = response.json()["results"]
    outcomes = [r["outcome"] for r in results]
    assert outcomes == ["deduplicated", "created", "deduplicated", "created", "created"]
    ids = [r["execution"]["id"] for r in results]
    assert ids[0] == holder
    assert ids[2] == ids[1] and results[2]["execution"]["pipeline"] == "noop"
    assert len(set(ids)) == 4
    row = conn.execute("SELECT count(*) AS n FROM executions").fetchone()
    assert row is not None and row["n"] == 4


async def test_one_notify_for_a_batch(database_url: str) -> None:
    listener = await db.aconnect(database_url)
    await listener.execute(f"LISTEN {EXECUTIONS_CHANNEL}")
    async with listener:
        async with api_client() as client:
            items = [{"pipeline": "noop"} for _ in range(200)]
            response = await client.post(BATCH, json={"executions": items})
            assert response.status_code == 200
        # The app has shut down: its waker sent what was due before the pool closed.
        assert await _payloads_until_sentinel(listener, database_url) == ["normal"]

        # Without a waker (the CLI), the NOTIFY is in the insert's own statement.
        items2 = [
            Submission(pipeline="noop", lane=("normal", "backfill")[i % 2]) for i in range(50)
        ]
        async with await db.aconnect(database_url) as conn:
            outcomes = await submit_batch(
                conn,
                default_registry(),
                get_settings(),
                items2,
                trigger_source="cli",
                backend=LocalBackend(get_settings()),
            )
        assert {o.outcome for o in outcomes} == {"created"}
        notes = await _payloads_until_sentinel(listener, database_url)
        assert sorted(notes) == ["backfill", "normal"]


async def test_concurrent_batches_sharing_keys_create_each_once(
    database_url: str, conn: Conn
) -> None:
    keys = [f"key-{i}" for i in range(300)]
    batches: list[list[str]] = []
    for seed in range(4):
        mine = random.Random(seed).sample(keys, 250)  # overlapping, in different orders
        batches.append(mine)
    async with api_client() as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    BATCH,
                    json={"executions": [{"pipeline": "noop", "logical_key": k} for k in mine]},
                )
                for mine in batches
            )
        )
    rows = conn.execute("SELECT logical_key, id FROM executions").fetchall()
    stored = {str(r["logical_key"]): str(r["id"]) for r in rows}
    assert len(rows) == len(stored)  # one execution per key
    assert set(stored) == {k for mine in batches for k in mine}
    created: dict[str, int] = {}
    for mine, response in zip(batches, responses, strict=True):
        assert response.status_code == 200, response.text
        for key, result in zip(mine, response.json()["results"], strict=True):
            assert result["execution"]["id"] == stored[key]
            created[key] = created.get(key, 0) + (result["outcome"] == "created")
    assert set(created.values()) == {1}


def test_spine_run_from_file(database_url: str, tmp_path: Path, conn: Conn) -> None:
    lines = [json.dumps({"pipeline": "noop", "logical_key": f"f-{i}"}) for i in range(1500)]
    lines[3] = json.dumps({"pipeline": "noop", "logical_key": "f-2"})  # held by line 3
    lines[7] = "{not json"
    lines[9] = json.dumps({"pipeline": "sleep", "params": {"seconds": "x"}})
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    result = CliRunner().invoke(main, ["run", "--from-file", str(path)])
    assert result.exit_code == 1, result.output
    assert "line 8: invalid: not a JSON line" in result.output
    assert "line 10: invalid:" in result.output
    assert "1497 created, 1 deduplicated, 2 invalid" in result.output
    row = conn.execute(
        "SELECT count(*) AS n FROM executions WHERE trigger_source = 'cli'"
    ).fetchone()
    assert row is not None and row["n"] == 1497

    again = CliRunner().invoke(main, ["run", "--from-file", str(path), "--format", "json"])
    answers = [json.loads(line) for line in again.output.splitlines()]
    assert len(answers) == 1500
    assert answers[0]["outcome"] == "deduplicated"
    assert answers[7] == {
        "line": 8,
        "outcome": "invalid",
        "execution_id": None,
        "error": answers[7]["error"],
    }

    mixed = CliRunner().invoke(main, ["run", "noop", "--from-file", str(path)])
    assert mixed.exit_code == 2
    assert CliRunner().invoke(main, ["run"]).exit_code == 2
