"""The benchmark harness runs end to end at tiny sizes (a smoke run; no figure is judged).

`python -m bench --quick` as a subprocess against the test server: every
scenario must produce its rows (the product's figures and the baseline's),
write its JSON, and leave no scratch database and no process behind.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("drain", "wakeup", "ingest", "metrics", "http", "datasets", "scale")


@pytest.mark.slow
def test_quick_bench_runs_every_scenario(server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    argv = [sys.executable, "-m", "bench", "--quick", "--repeat", "1", "--http-seconds", "1"]
    argv += ["--database-url", server_url, "--json", str(out)]
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    assert "| Scenario" in output

    results = json.loads(out.read_text())
    assert results["errors"] == {}
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for row in results["rows"]:
        by_scenario.setdefault(row["scenario"], []).append(row)
    assert set(by_scenario) == set(SCENARIOS)
    for rows in by_scenario.values():
        for row in rows:
            assert row["spine"]["values"], row
            assert row["baseline"]["values"], row
            # Every row has a target but the plain batched baseline's, shown for scale.
            assert row["target"] or re.search(r"bare batched claims of \d+$", row["label"]), row
            assert isinstance(row["ratio"], float), row

    # Its scratch databases are dropped and its processes (pools, servers) are gone.
    bench_pid = str(proc.pid)
    with psycopg.connect(server_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"bench_{bench_pid}_%",)
        ).fetchall()
    assert left == []
    strays = [
        p.info["pid"] for p in psutil.process_iter(["pid", "ppid"]) if p.info["ppid"] == proc.pid
    ]
    assert strays == []
