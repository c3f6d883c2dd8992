"""The whole system as a user runs it: `spine up` (honcho + Procfile) over real HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support import ROOT, free_port, spine_env, stop_tree, wait_until


def get_json(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    response.raise_for_status()
    return response.json()


def ready(client: httpx.Client) -> bool:
    try:
        return client.get("/api/v1/health/ready").status_code == 200
    except httpx.TransportError:
        return False


def test_spine_up_serves_ingests_and_stops_cleanly(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "up.log"
    env = spine_env(
        database_url,
        SPINE_API_PORT=str(port),
        SPINE_DATA_DIR=str(ROOT / "data"),
        SPINE_MAX_CONCURRENT="2",
        SPINE_POLL_INTERVAL="0.2",
    )
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal session: our signal goes to `spine up` only
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until(lambda: ready(client) or up.poll() is not None, timeout=60)
            assert up.poll() is None, log_path.read_text()
            family = [psutil.Process(up.pid), *psutil.Process(up.pid).children(recursive=True)]
            # spine up -> honcho -> (web: uvicorn, worker: supervisor -> 2 children)
            assert len(family) >= 5, [p.cmdline() for p in family]

            created = client.post(
                "/api/v1/executions",
                json={"pipeline": "otc_ingest", "params": {"file": "otc_sample.csv"}},
            )
            assert created.status_code == 202, created.text
            execution_id = created.json()["id"]
            final = wait_until(
                lambda: (
                    (e := get_json(client, f"/api/v1/executions/{execution_id}"))["status"]
                    in {"completed", "failed", "cancelled"}
                    and e
                ),
                timeout=120,
            )
            assert final["status"] == "completed", final
            metrics = get_json(
                client,
                "/api/v1/otc/metrics/daily",
                symbol="ACME",
                start_date="2026-01-06",
                end_date="2026-01-10",
            )
            assert metrics
            assert {m["symbol"] for m in metrics} == {"ACME"}

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0, log_path.read_text()
        _, alive = psutil.wait_procs(family, timeout=30)
        assert not alive, f"left running: {[p.pid for p in alive]}"
    finally:
        stop_tree(up.pid)
    output = log_path.read_text()
    assert f"http://127.0.0.1:{port}/schema" in output
    assert "rc=-15" not in output  # a requested stop is not reported like a crash
