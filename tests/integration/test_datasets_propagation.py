"""Propagation, proven generically by a test-only domain: an upstream dataset by day x
venue and two downstream datasets (the same key, and all keys of the date).

A changed upstream partition makes exactly its mapped downstream partitions
`stale`, then `loaded` again by themselves (the load's transaction asks for a
`dataset_propagate` execution, which submits them), and never `loaded` in
between. A partition never materialized is made the first time once all of its
upstream partitions are loaded. An unchanged reload changes nothing; a dataset that does not
propagate stays stale until someone backfills it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

import msgspec
import pytest

from app import db
from app.catalog import default_registry
from app.config import get_settings
from app.engine import builtin, partitions, sensors, workers
from app.engine.backends import make_backend
from app.engine.context import PipelineContext
from app.engine.datasets import Dataset, DatasetCatalog, Partition, Upstream
from app.engine.partitions import NewMaterialization, Source
from app.engine.recording import record_batch
from app.engine.registry import Pipeline, Registry, Summary
from tests.support import run_held, submit

WORKER = "propagation-test-worker"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


class UpParams(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    sha: Annotated[str, msgspec.Meta(min_length=1)]


class DayParams(msgspec.Struct, forbid_unknown_fields=True):
    key: str


async def _load_up(ctx: PipelineContext, params: UpParams) -> Summary:
    async with ctx.pool.connection() as conn, conn.transaction():
        await partitions.record(
            conn,
            [
                NewMaterialization(
                    "quotes", params.key, ctx.execution_id, source=Source(sha256=params.sha)
                )
            ],
        )
    return None


def _compute(dataset: str) -> Callable[[PipelineContext, DayParams], Awaitable[Summary]]:
    async def run(ctx: PipelineContext, params: DayParams) -> Summary:
        async with ctx.pool.connection() as conn, conn.transaction():
            await partitions.record(
                conn, [NewMaterialization(dataset, params.key, ctx.execution_id, unchanged=1)]
            )
        return None

    return run


def _key_params(p: Partition, path: str | None) -> dict[str, Any]:
    return {"key": p.key}


def _day(
    name: str, pipeline: str, *ups: Upstream, key2: tuple[str, ...] = (), propagate: bool = True
) -> Dataset:
    return Dataset(
        name=name, description=name, scheme="day", pipeline=pipeline, params=_key_params,
        start=date(2026, 1, 5), key2=key2, upstreams=ups, propagate=propagate,
    )  # fmt: skip


QUOTES = _day("quotes", "t_load_quotes", key2=("X", "Y"))
SPREADS = _day("spreads", "t_spreads", Upstream("quotes"), key2=("X", "Y"))
DAILY = _day("daily", "t_daily", Upstream("quotes", "all_keys_of_date"))
MANUAL = _day("manual", "t_manual", Upstream("quotes"), key2=("X", "Y"), propagate=False)
DATASETS = DatasetCatalog([QUOTES, SPREADS, DAILY, MANUAL])


@pytest.fixture
def registry() -> Registry:
    built: list[Registry] = []
    own: list[Pipeline[Any]] = [
        Pipeline("t_load_quotes", "test", UpParams, _load_up),
        Pipeline("t_spreads", "test", DayParams, _compute("spreads")),
        Pipeline("t_daily", "test", DayParams, _compute("daily")),
        Pipeline("t_manual", "test", DayParams, _compute("manual")),
    ]
    sensing = sensors.pipelines(DATASETS, lambda: built[0], get_settings, make_backend)
    built.append(Registry([*builtin.PIPELINES, *sensing, *own]))
    return built[0]


@pytest.fixture
def runner(database_url: str) -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


class Harness:
    """Runs the test domain's executions in this process, through the worker's own steps,
    and reads the partitions' states after every single execution."""

    def __init__(self, runner: asyncio.Runner, url: str, registry: Registry) -> None:
        self.runner, self.url, self.registry = runner, url, registry
        self.seen: list[dict[str, str]] = []

    def states(self) -> dict[str, str]:
        async def go() -> dict[str, str]:
            found: dict[str, str] = {}
            async with await db.aconnect(self.url) as conn:
                for d in DATASETS:
                    parts = d.partitions(date(2026, 1, 5), date(2026, 1, 6))
                    for r in await partitions.states(conn, d, parts, now=NOW):
                        found[f"{d.name}:{r.key}"] = r.state
            return found

        return self.runner.run(go())

    def submit(self, pipeline: str, params: dict[str, Any]) -> None:
        async def go() -> None:
            async with await db.aconnect(self.url) as conn:
                await submit(conn, pipeline, params, registry=self.registry)

        self.runner.run(go())

    def drain(self) -> int:
        """Run pending executions one at a time until none is left; how many ran."""

        async def one() -> bool:
            async with await db.aconnect(self.url) as conn:
                await workers.heartbeat(conn, WORKER, "test", os.getpid())
            pool = await db.open_async_pool(self.url, get_settings())
            try:
                _, claimed, _ = await record_batch(pool, WORKER, [], claim=1)
                if not claimed:
                    return False
                await run_held(pool, claimed[0], WORKER, registry=self.registry)
                return True
            finally:
                await pool.close()

        ran = 0
        while self.runner.run(one()):
            ran += 1
            self.seen.append(self.states())
        return ran

    def sync(self) -> None:
        async def go() -> None:
            async with await db.aconnect(self.url) as conn:
                await sensors.sync(conn, self.registry, get_settings(), DATASETS)

        self.runner.run(go())


def test_a_changed_upstream_partition_re_materializes_exactly_its_downstream(
    database_url: str, runner: asyncio.Runner, registry: Registry
) -> None:
    h = Harness(runner, database_url, registry)
    h.sync()
    for key in ("2026-01-05/X", "2026-01-05/Y", "2026-01-06/X", "2026-01-06/Y"):
        h.submit("t_load_quotes", {"key": key, "sha": "v1"})
    h.drain()
    # First loads: a propagating downstream partition never materialized is made the
    # first time once every upstream partition it maps to is loaded: `daily` of a date
    # only after both of its venues (never from one of them), `spreads` with its own.
    first = h.states()
    assert {k: v for k, v in first.items() if not k.startswith("manual:")} == dict.fromkeys(
        [k for k in first if not k.startswith("manual:")], "loaded"
    )
    assert {first[f"manual:{d}/{v}"] for d in ("2026-01-05", "2026-01-06") for v in "XY"} == {
        "late"
    }  # it does not propagate: a backfill makes it
    for seen in h.seen:
        for day in ("2026-01-05", "2026-01-06"):
            if seen[f"daily:{day}"] != "late":  # submitted: both venues were loaded
                assert seen[f"quotes:{day}/X"] == seen[f"quotes:{day}/Y"] == "loaded", seen
    daily_runs = runner.run(_count_runs(database_url, "t_daily"))
    assert daily_runs == 2, "one first computation per date, not one per venue"
    for p in MANUAL.partitions(date(2026, 1, 5), date(2026, 1, 6)):
        h.submit(MANUAL.pipeline, {"key": p.key})
    h.drain()
    assert set(h.states().values()) == {"loaded"}

    # The same content again: nothing turns stale, nothing runs but the load.
    h.submit("t_load_quotes", {"key": "2026-01-05/X", "sha": "v1"})
    assert h.drain() == 1
    assert set(h.states().values()) == {"loaded"}

    h.seen.clear()
    h.submit("t_load_quotes", {"key": "2026-01-05/X", "sha": "v2"})
    ran = h.drain()
    stale_then = h.seen[0]  # right after the changed load committed
    changed = {k for k, s in stale_then.items() if s != "loaded"}
    assert changed == {"spreads:2026-01-05/X", "daily:2026-01-05", "manual:2026-01-05/X"}
    # The load, one propagation pass, and exactly the two propagating partitions.
    assert ran == 4
    for key in ("spreads:2026-01-05/X", "daily:2026-01-05"):
        trail = [s[key] for s in h.seen]
        assert trail[-1] == "loaded" and "loaded" not in trail[: trail.index("loaded")]
        first_loaded = trail.index("loaded")
        assert set(trail[:first_loaded]) <= {"stale", "pending", "running"}, trail
        assert all(s == "loaded" for s in trail[first_loaded:]), trail
    final = h.states()
    assert final.pop("manual:2026-01-05/X") == "stale"  # it does not propagate
    assert set(final.values()) == {"loaded"}


async def _count_runs(url: str, pipeline: str) -> int:
    async with await db.aconnect(url) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n FROM executions WHERE pipeline = %s", (pipeline,)
            )
        ).fetchone()
        assert row is not None
        return cast(int, row["n"])


def test_the_app_registry_has_the_datasets_pipelines() -> None:
    names = default_registry().names()
    assert {"dataset_scan", "dataset_propagate"} <= set(names)
