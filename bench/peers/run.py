"""The peers' run: each system on its own scratch database, round-robin, one table.

For every K in the drain sizes and every repetition, the four systems drain in
turn (Market Spine, procrastinate, pgqueuer one at a time, pgqueuer batch 10),
so all of them see the same machine minute by minute; then the wake-up runs
the same way, then the single submits (no worker runs: Market Spine's `submit`,
procrastinate's `defer_async`, pgqueuer's `Queries.enqueue` of one job, each
awaited before the next, the systems taking turns of 100). Every drain checks
exactly once: the product on its events, the peers on what their handlers
report (each noop's number, collected from every process when it stops);
every submit run checks that each job was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any

from bench.context import Context
from bench.harness import connect, median, percentile, progress, wait_until
from bench.peers import children, pgqueuer_peer, procrastinate_peer, spine_peer
from bench.peers.table import SPINE, PeerRow
from bench.peers.table import table as peer_table

PAUSE = (0.02, 0.05)  # seconds idle between wake-up submits, drawn at random
SUBMIT_TURN = 100  # submits one system makes before the next one's turn


@dataclass(frozen=True)
class System:
    name: str
    key: str  # scratch database label
    peer: ModuleType | None  # None = Market Spine
    mode: str = ""
    slow: bool = False  # drains at most SLOW_DRAIN_CAP jobs


SYSTEMS = (
    System(SPINE, "spine", None),
    System("procrastinate 3.10", "procrastinate", procrastinate_peer, slow=True),
    System("pgqueuer 1.6, one at a time", "pgq1", pgqueuer_peer, "1", slow=True),
    System("pgqueuer 1.6, batch 10", "pgq10", pgqueuer_peer, "10"),
)
SLOW_DRAIN_CAP = 2_000
"""Jobs the one-at-a-time systems drain at most (at about 100/s here, 20,000 would take
minutes a run); their rates stay comparable, and the row says so."""


def run(ctx: Context) -> list[PeerRow]:
    urls = {s.key: ctx.scratch.create(f"peer_{s.key}") for s in SYSTEMS}
    try:
        for system in SYSTEMS:
            if system.peer is not None:
                asyncio.run(system.peer.install(urls[system.key]))
        rows: list[PeerRow] = []
        if "drain" in ctx.peer_scenarios:
            rows += _drains(ctx, urls)
        if "wakeup" in ctx.peer_scenarios:
            rows += _wakeups(ctx, urls)
        if "submit" in ctx.peer_scenarios:
            rows.append(_submits(ctx, urls))
        return rows
    finally:
        for url in urls.values():
            ctx.scratch.drop(url)


def _drains(ctx: Context, urls: dict[str, str]) -> list[PeerRow]:
    n = ctx.sizes.peers_drain_executions
    capped = min(n, SLOW_DRAIN_CAP)
    size = f"{n:,} noop" if capped == n else f"{n:,} noop ({capped:,} for the one-at-a-time peers)"
    rows = []
    for processes in ctx.sizes.drain_processes:
        row = PeerRow(f"drain: {size}, {processes} process(es)", "exec/s", True)
        for attempt in range(ctx.repeat + 1):  # the first is the warm-up
            tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
            figures = []
            for system in SYSTEMS:
                url = urls[system.key]
                jobs = capped if system.slow else n
                if system.peer is None:
                    log = ctx.log_path(f"peers-spine-{processes}-{attempt}")
                    seconds = spine_peer.run_drain(url, jobs, processes, log)
                else:
                    seconds = _peer_drain(system, url, jobs, processes)
                figures.append(f"{system.name} {jobs / seconds:,.0f}/s")
                if attempt:
                    row.values.setdefault(system.name, []).append(jobs / seconds)
            progress(f"peers drain x{processes} {tag}: " + "; ".join(figures))
        rows.append(row)
    return rows


def _peer_drain(system: System, url: str, n: int, processes: int) -> float:
    peer = system.peer
    assert peer is not None
    with connect(url) as conn:
        conn.execute(peer.TRUNCATE)
        probes: Callable[[int], None] = lambda k: asyncio.run(peer.enqueue_probes(url, k))  # noqa: E731
        with children.started(peer.child, url, processes, system.mode, probes) as handles:
            asyncio.run(peer.enqueue_noops(url, n))
            begun = _now(conn)

            def drained() -> dict[str, Any] | None:
                row: dict[str, Any] | None = conn.execute(peer.DONE).fetchone()
                assert row is not None
                return row if int(row["n"]) >= n else None

            done = wait_until(drained, timeout=max(300.0, n / 5), what=f"{system.name} drain")
        children.check_exactly_once(handles.handled, n, system.name)
        if int(done["n"]) != n:
            raise RuntimeError(f"{system.name}: {done['n']} ends recorded for {n} jobs")
        return max(float((done["last"] - begun).total_seconds()), 1e-6)


def _wakeups(ctx: Context, urls: dict[str, str]) -> list[PeerRow]:
    count, processes = ctx.sizes.wakeup_executions, ctx.sizes.wakeup_processes
    label = f"wake-up: submit -> start, {count} one at a time, {processes} idle processes"
    p50 = PeerRow(f"{label}, p50", "ms", False)
    p99 = PeerRow(f"{label}, p99", "ms", False)
    for attempt in range(ctx.repeat + 1):
        size = count if attempt else max(10, count // 10)
        tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
        figures = []
        for system in SYSTEMS:
            url = urls[system.key]
            if system.peer is None:
                log = ctx.log_path(f"peers-spine-wakeup-{attempt}")
                ms = spine_peer.run_wakeup(url, size, processes, PAUSE, log)
            else:
                ms = _peer_wakeup(system, url, size, processes)
            figures.append(f"{system.name} {median(ms):.2f}/{percentile(ms, 99):.2f}")
            if attempt:
                p50.values.setdefault(system.name, []).append(median(ms))
                p99.values.setdefault(system.name, []).append(percentile(ms, 99))
        progress(f"peers wake-up {tag} (p50/p99 ms): " + "; ".join(figures))
    return [p50, p99]


def _peer_wakeup(system: System, url: str, count: int, processes: int) -> list[float]:
    peer = system.peer
    assert peer is not None
    with connect(url) as conn:
        conn.execute(peer.TRUNCATE)
    probes: Callable[[int], None] = lambda k: asyncio.run(peer.enqueue_probes(url, k))  # noqa: E731
    with children.started(peer.child, url, processes, system.mode, probes) as handles:
        return asyncio.run(_peer_latencies(peer, url, count, handles))


async def _peer_latencies(
    peer: ModuleType, url: str, count: int, handles: children.Handles
) -> list[float]:
    out: list[float] = []
    async with peer.waker(url) as wake:
        for _ in range(count):
            before = time.time()
            await wake()
            _, started = handles.expect("start", timeout=30)
            out.append((started - before) * 1000)
            await asyncio.sleep(random.uniform(*PAUSE))  # jitter, not crypto
    return out


def _submits(ctx: Context, urls: dict[str, str]) -> PeerRow:
    n = ctx.sizes.peers_submits
    row = PeerRow(f"submit: {n:,} single submits, one at a time", "submits/s", True)
    # pgqueuer's two modes differ only in how they dequeue: its enqueue runs once.
    systems = [s for s in SYSTEMS if s.key != "pgq10"]
    for attempt in range(ctx.repeat + 1):
        size = n if attempt else max(50, n // 10)
        tag = f"run {attempt}/{ctx.repeat}" if attempt else "warm-up"
        for system in systems:
            with connect(urls[system.key]) as conn:
                conn.execute((system.peer or spine_peer).TRUNCATE)
        seconds = asyncio.run(_interleaved_submits(systems, urls, size))
        for system in systems:
            _check_stored(system, urls[system.key], size)
            if attempt:
                row.values.setdefault(system.name, []).append(size / seconds[system.name])
        figures = [f"{s.name} {size / seconds[s.name]:,.0f}/s" for s in systems]
        progress(f"peers submit {tag}: " + "; ".join(figures))
    return row


async def _interleaved_submits(
    systems: list[System], urls: dict[str, str], n: int
) -> dict[str, float]:
    """Seconds each system spent on n submits, taken in turns of SUBMIT_TURN.

    Turns this short put every system through the same minutes of a shared
    machine; within a turn each submit is awaited before the next is sent.
    """
    seconds = {s.name: 0.0 for s in systems}
    async with contextlib.AsyncExitStack() as stack:
        ones = [
            (s.name, await stack.enter_async_context((s.peer or spine_peer).submitter(urls[s.key])))
            for s in systems
        ]
        for turn, start in enumerate(range(0, n, SUBMIT_TURN)):
            shift = turn % len(ones)  # who goes first changes every turn
            for name, one in ones[shift:] + ones[:shift]:
                began = time.perf_counter()
                for i in range(start, min(n, start + SUBMIT_TURN)):
                    await one(i)
                seconds[name] += time.perf_counter() - began
    return seconds


def _check_stored(system: System, url: str, n: int) -> None:
    if system.peer is None:
        spine_peer.check_submits(url, n)
        return
    with connect(url) as conn:
        row = conn.execute(system.peer.QUEUED).fetchone()
    if row is None or int(row["n"]) != n:
        raise RuntimeError(f"{system.name}: {row} stored for {n} enqueues")


def _now(conn: Any) -> datetime:
    row = conn.execute("SELECT clock_timestamp() AS now").fetchone()
    value: datetime = row["now"]
    return value


def table(rows: list[PeerRow]) -> str:
    return peer_table(rows, [s.name for s in SYSTEMS])
