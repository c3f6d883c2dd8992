"""Peer worker processes: started per round, proven ready by a probe each, stopped by event.

A peer's child runs the library's own worker in its own process (spawned, so it
opens its connections after the start) with three task names: `noop` (appends
its argument to a list the child reports when stopped: the exactly-once check),
`wake` (puts the wall-clock time it started on a queue: the wake-up latency) and
`probe_<index>` (only that child runs it, so all K probes done = every worker
has entered its loop and listens).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Target = Callable[[str, int, str, Any, Any], None]


@dataclass
class Handles:
    """What a child reports: probes, wake-up start times, and at the end its noop list."""

    events: Any  # multiprocessing Queue of tuples
    stop: Any  # multiprocessing Event
    procs: list[Any] = field(default_factory=list)  # multiprocessing processes (spawned)
    handled: list[int] = field(default_factory=list)

    def expect(self, kind: str, timeout: float) -> tuple[Any, ...]:
        """The next message of `kind` from any child; fails fast when a child died."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message: tuple[Any, ...] = self.events.get(timeout=0.2)
                break
            except queue_module.Empty:
                dead = [p.exitcode for p in self.procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a peer's worker exited with {dead}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"no {kind!r} from the peer's workers within {timeout:.0f}s"
                    ) from None
        if message[0] != kind:
            raise RuntimeError(f"expected {kind!r} from a peer's worker, got {message[0]!r}")
        return message


@contextlib.contextmanager
def started(
    target: Target, url: str, processes: int, mode: str, enqueue_probes: Callable[[int], None]
) -> Iterator[Handles]:
    """K children running `target`; yields once each has run its probe; collects on exit."""
    mp = multiprocessing.get_context("spawn")
    handles = Handles(events=mp.Queue(), stop=mp.Event())
    for index in range(processes):
        proc = mp.Process(
            target=target,
            args=(url, index, mode, handles.events, handles.stop),
            name=f"bench-peer-{index}",
        )
        proc.start()
        handles.procs.append(proc)
    try:
        enqueue_probes(processes)
        for _ in range(processes):
            handles.expect("probe", timeout=120)
        yield handles
        handles.stop.set()
        for _ in range(processes):
            _, items = handles.expect("handled", timeout=60)
            handles.handled.extend(items)
    finally:
        handles.stop.set()
        for proc in handles.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    failed = [p.exitcode for p in handles.procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"a peer worker exited with {failed}")


def check_exactly_once(handled: list[int], n: int, who: str) -> None:
    """Every noop 0..n-1 ran exactly once across the processes, or say how it did not."""
    if sorted(handled) == list(range(n)):
        return
    seen: dict[int, int] = {}
    for item in handled:
        seen[item] = seen.get(item, 0) + 1
    twice = sum(1 for c in seen.values() if c > 1)
    missing = n - len(seen)
    raise RuntimeError(f"{who}: not exactly once: {twice} ran more than once, {missing} never ran")
