"""What every scenario uses: scratch databases, real processes stopped by pid, progress, rows.

Nothing here imports the tests: the bench is a tool of its own.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import psutil
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from app import db
from app.migrations import apply_pending

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "bench_"
T = TypeVar("T")

_STARTED = time.monotonic()


def progress(message: str) -> None:
    """One line of progress on stderr, with the time since the run began."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def wait_until(
    condition: Callable[[], T | Literal[False] | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(interval)


# --------------------------------------------------------------------------- databases


def connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit connection whose rows are dicts (the bench reads them loosely)."""
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "postgres")


class Scratch:
    """Scratch databases on one server: a template migrated once, a clone per scenario.

    Names carry this process's pid (`bench_<pid>_<hex>_...`), so a later run can
    drop what a crashed run left behind without touching a concurrent run's.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.run_id = f"{PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        self.template = f"{self.run_id}_tpl"
        self._made: list[str] = []

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server_url, autocommit=True)

    def url(self, name: str) -> str:
        return make_conninfo(self.server_url, dbname=name)

    def drop_leftovers(self) -> list[str]:
        """Drop bench databases whose run (by pid on this host) is no longer alive."""
        dropped = []
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{PREFIX}%",)
            ).fetchall()
            for (name,) in rows:
                pid_text = name.removeprefix(PREFIX).split("_", 1)[0]
                if pid_text.isdigit() and psutil.pid_exists(int(pid_text)):
                    continue
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                dropped.append(name)
        return dropped

    def create_template(self) -> list[str]:
        """Create and migrate the template; returns the migrations applied."""
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        self._made.append(self.template)
        with db.connect(self.url(self.template)) as conn:
            return apply_pending(conn)

    def create(self, label: str) -> str:
        """A fresh migrated database for one scenario; returns its URL."""
        name = f"{self.run_id}_{label}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self._made.append(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = database_name(url)
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._made:
            self._made.remove(name)

    def drop_all(self) -> None:
        with self.admin() as conn:
            for name in reversed(self._made):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()


# --------------------------------------------------------------------------- processes


def spine_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment for a `spine` subprocess: the product's defaults, our database."""
    env = {**os.environ, "DATABASE_URL": database_url}
    env.update(overrides)
    return env


def start_process(
    argv: list[str], *, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start a process in its own session (a Ctrl-C at the terminal is ours to forward)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_tree(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM a process and its descendants, SIGKILL what is left; leave nothing running."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    family = [*parent.children(recursive=True), parent]
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


@contextlib.contextmanager
def running(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Stop `proc` and its children by pid when the block ends, however it ends."""
    try:
        yield proc
    finally:
        stop_tree(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (those already gone count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def peak_rss_bytes(pid: int) -> int:
    """The process's resident-set high-water mark (VmHWM), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    with contextlib.suppress(psutil.NoSuchProcess):
        return int(psutil.Process(pid).memory_info().rss)
    return 0


class WorkerPool:
    """`spine worker start --max-concurrent N` as a real subprocess, ready when it listens."""

    def __init__(self, url: str, processes: int, log_path: Path, **settings: str) -> None:
        self.url = url
        self.processes = processes
        self.log_path = log_path
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> WorkerPool:
        argv = [sys.executable, "-m", "app.cli", "worker", "start"]
        argv += ["--max-concurrent", str(self.processes)]
        self.proc = start_process(
            argv, env=spine_env(self.url, **self.settings), log_path=self.log_path
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            stop_tree(self.proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            self.proc = None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Every worker process has its listener attached (its last statement is LISTEN)."""
        with connect(self.url) as conn:

            def listening() -> bool:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"worker pool exited with {self.proc.returncode}; see {self.log_path}"
                    )
                row = conn.execute(
                    "SELECT count(*) AS n FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN %%spine_cancel%%'"
                ).fetchone()
                return row is not None and int(row["n"]) >= self.processes

            wait_until(listening, timeout=timeout, what="worker pool ready")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=False)]
        except psutil.NoSuchProcess:
            return []


# --------------------------------------------------------------------------- results


Kind = Literal["ratio_min", "ratio_max", "abs_max"]


@dataclass(frozen=True)
class Target:
    """What a row must meet: spine/baseline ratio bounds, or an absolute bound on spine."""

    kind: Kind
    value: float

    def describe(self, unit: str) -> str:
        if self.kind == "ratio_min":
            return f">= {self.value:g}x"
        if self.kind == "ratio_max":
            return f"<= {self.value:g}x"
        return f"<= {self.value:g} {unit}"

    def met(self, spine: float, ratio: float | None) -> bool:
        if self.kind == "abs_max":
            return spine <= self.value
        if ratio is None:
            return False
        return ratio >= self.value if self.kind == "ratio_min" else ratio <= self.value


@dataclass
class Row:
    """One line of the table: the product's figures beside its baseline's, from one run."""

    scenario: str
    label: str
    unit: str
    spine: list[float]
    baseline: list[float]
    target: Target | None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.spine or not self.baseline or median(self.baseline) == 0:
            return None
        return median(self.spine) / median(self.baseline)

    @property
    def met(self) -> bool | None:
        if self.target is None or not self.spine:
            return None
        return self.target.met(median(self.spine), self.ratio)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "label": self.label,
            "unit": self.unit,
            "spine": {"values": self.spine, **_summary(self.spine)},
            "baseline": {"values": self.baseline, **_summary(self.baseline)},
            "ratio": self.ratio,
            "target": self.target.describe(self.unit) if self.target else None,
            "met": self.met,
            "notes": self.notes,
        }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": median(values), "min": min(values), "max": max(values)}
