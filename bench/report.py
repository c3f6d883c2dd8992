"""The printed table (Markdown, so it pastes into docs/benchmarks.md) and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.harness import ROOT, Row, median

RESULTS_DIR = ROOT / "bench" / "results"


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell(values: list[float], unit: str) -> str:
    if not values:
        return "-"
    mid = median(values)
    if len(values) == 1:
        return f"{_fmt(mid)} {unit}"
    return f"{_fmt(mid)} {unit} ({_fmt(min(values))}-{_fmt(max(values))})"


def table(rows: list[Row]) -> str:
    header = ["Scenario", "Market Spine", "Raw baseline (same run)", "Ratio", "Target", "Met"]
    lines = [header]
    for row in rows:
        ratio = row.ratio
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append(
            [
                f"{row.scenario}: {row.label}",
                cell(row.spine, row.unit),
                cell(row.baseline, row.unit),
                f"{ratio:.2f}x" if ratio is not None else "-",
                row.target.describe(row.unit) if row.target else "-",
                met,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def notes(rows: list[Row]) -> str:
    """The secondary figures (p99, RSS, load generator CPU...) under the table."""
    out = []
    for row in rows:
        shown = {k: v for k, v in row.notes.items() if not k.startswith("_")}
        if shown:
            out.append(
                f"- {row.scenario}: {row.label}: "
                + ", ".join(f"{k}={_show(v)}" for k, v in shown.items())
            )
    return "\n".join(out)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return _fmt(value)
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def machine(server_url: str) -> dict[str, Any]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (
                    [
                        "shared_buffers",
                        "synchronous_commit",
                        "fsync",
                        "work_mem",
                        "max_parallel_workers_per_gather",
                        "jit",
                    ],
                ),
            ).fetchall()
        )
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "postgresql": version[0] if version else None,
        "postgresql_settings": settings,
        "git_commit": commit,
    }


def write_json(payload: dict[str, Any], path: Path | None = None) -> Path:
    if path is None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path
