"""The HTTP baseline: a bare Litestar app on a psycopg async pool, one statement per request.

Served by uvicorn exactly like the product's API (`spine api`), one process:

    BENCH_BASELINE_DATABASE_URL=... python -m uvicorn bench.baseline_app:create_app --factory

- GET  /metrics?symbol=S&start_date=D&end_date=D  one indexed SELECT on otc_metrics_daily
  (its primary key), the rows returned as JSON as they come from the driver;
- POST /executions  one INSERT ... RETURNING into a bare table (bench_http_jobs).

No validation, error mapping, auth guard or middleware: the floor the API is compared to.
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

BARE_JOBS = """
CREATE TABLE IF NOT EXISTS bench_http_jobs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
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
        cur = await conn.execute(
            "INSERT INTO bench_http_jobs (body) VALUES (%s) RETURNING id, created_at",
            (Jsonb(data),),
        )
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
        async with pool.connection() as conn:
            await conn.execute(BARE_JOBS)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    return Litestar(route_handlers=[metrics, create_execution], lifespan=[lifespan])
