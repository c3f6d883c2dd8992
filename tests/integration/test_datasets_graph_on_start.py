"""A pool stores the datasets' dependency graph when it starts, not only `spine db init` (issue 26).

A release that declares a new dataset or edge is deployed by restarting the
pools; the propagation pass reads the stored graph, so it must be there
without a separate step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from app.catalog import DOMAINS
from tests.support import wait_until, worker_pool

Conn = psycopg.Connection[dict[str, Any]]

GRAPH = "SELECT dataset, upstream FROM dataset_upstreams ORDER BY dataset, upstream"
SCANS = "SELECT name, enabled FROM schedules WHERE name LIKE 'dataset-scan:%' ORDER BY name"


def test_a_starting_pool_stores_the_declared_graph(
    database_url: str, conn: Conn, tmp_path: Path
) -> None:
    declared = [
        {"dataset": dataset, "upstream": upstream}
        for dataset, upstream in sorted(
            (d.name, u.dataset) for d in DOMAINS.datasets() for u in d.upstreams
        )
    ]
    assert declared, "no dataset declares an upstream: this test would prove nothing"
    assert conn.execute(GRAPH).fetchall() == []
    conn.execute(
        "INSERT INTO dataset_upstreams (dataset, upstream, mapping, propagate)"
        " VALUES ('gone', 'removed', 'same_key', true)"
    )
    with worker_pool(database_url, processes=1, log_path=tmp_path / "pool.log"):
        wait_until(lambda: conn.execute(GRAPH).fetchall() == declared, timeout=60)
    # Scan schedules are `spine db init`'s (an operator's choice to pause or remove them
    # must survive a restart): a pool adds none.
    assert conn.execute(SCANS).fetchall() == []
