"""The HTTP baseline: a bare Litestar app on a psycopg async pool, one statement per request.

Served by uvicorn exactly like the product's API (`spine api`), one process:

    BENCH_BASELINE_DATABASE_URL=... python -m uvicorn bench.baseline_app:create_app --factory

- GET  /metrics?symbol=S&start_date=D&end_date=D  one indexed SELECT on otc_metrics_daily
  (its primary key), the rows returned as JSON as they come from the driver;
- POST /executions  the same INSERT as the API's, into the same tables: an
  `executions` row and its `created` event, one statement (`_SUBMIT`).

No validation, error mapping, auth guard or middleware, no retry budget, no
logical_key handling, no NOTIFY: the floor the API is compared to, so the
ratio is the API's request path. (Until issue 32 the POST wrote one row into a
table of its own with one index; docs/benchmarks.md has both.)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, get, post
from litestar.datastructures import State
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

URL_VARIABLE = "BENCH_BASELINE_DATABASE_URL"

_SUBMIT = """
WITH new AS (
    INSERT INTO executions (pipeline, params, trigger_source)
    VALUES (%s, %s, 'api')
    RETURNING id, lane, trigger_source, created_at
), created AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'created', jsonb_build_object('trigger_source', trigger_source, 'lane', lane)
    FROM new
)
SELECT id, created_at FROM new
"""

_SELECT = """
SELECT symbol, trade_date, trade_count, total_volume, total_notional, vwap, high_price, low_price
FROM otc_metrics_daily
WHERE symbol = %s AND trade_date BETWEEN %s AND %s
ORDER BY symbol, trade_date
"""


@get("/metrics")
async def metrics(
    state: State, symbol: str, start_date: dt.date, end_date: dt.date
) -> list[dict[str, Any]]:
    async with state.pool.connection() as conn:
        cur = await conn.execute(_SELECT, (symbol, start_date, end_date))
        return list(await cur.fetchall())


@post("/executions")
async def create_execution(state: State, data: dict[str, Any]) -> dict[str, Any]:
    async with state.pool.connection() as conn:
        cur = await conn.execute(_SUBMIT, (data["pipeline"], Jsonb(data.get("params", {}))))
        row = await cur.fetchone()
        assert row is not None
        return dict(row)


def create_app() -> Litestar:
    url = os.environ[URL_VARIABLE]
    pool_min = int(os.environ.get("SPINE_DB_POOL_MIN", "1"))
    pool_max = max(int(os.environ.get("SPINE_DB_POOL_MAX", "10")), pool_min)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=pool_min,
            max_size=pool_max,
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=False,
        )
        await pool.open(wait=True)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    return Litestar(route_handlers=[metrics, create_execution], lifespan=[lifespan])
