"""A worker killed mid-statement: its server backend stops within seconds and frees its locks.

Without `client_connection_check_interval` the backend would run the
statement to its end (here a minute) while holding the lock that the
execution's next attempt needs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

from tests.support import ROOT, spine_env, wait_until

Conn = psycopg.Connection[dict[str, object]]

LOCK = 20_0004
# A worker's pool, as worker.loop opens it: a transaction that holds a lock and
# runs a long statement.
HOLDER = f"""
import asyncio, os
from app.config import get_settings
from worker.loop import open_pool

async def main():
    pool = await open_pool(os.environ["DATABASE_URL"], get_settings())
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET application_name = 'dead-client-test'")
        await conn.execute("SELECT pg_advisory_xact_lock({LOCK})")
        await conn.execute("SELECT pg_sleep(60)")

asyncio.run(main())
"""


def test_killed_worker_backend_releases_its_locks_within_seconds(
    conn: Conn, database_url: str
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=spine_env(database_url), cwd=ROOT)
    try:
        wait_until(
            lambda: conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'dead-client-test' "
                "AND query LIKE 'SELECT pg_sleep%%' AND datname = current_database()"
            ).fetchone(),
            timeout=30,
        )
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        killed = time.monotonic()
        conn.execute("SET lock_timeout = '20s'")
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        waited = time.monotonic() - killed
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert waited < 5.0, f"the next attempt waited {waited:.1f}s for the lock"
