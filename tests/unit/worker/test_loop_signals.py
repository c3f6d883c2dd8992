"""A worker process's stop signals, whenever they come."""

from __future__ import annotations

import asyncio
import signal

from app.catalog import default_registry
from app.config import get_settings
from worker.loop import Worker


def test_a_stop_signal_after_the_claim_loop_ended_is_harmless() -> None:
    """The test's (or an operator's) SIGTERM and the supervisor's broadcast of it can reach
    a worker process after its claim loop ended and its event loop closed, while it stops
    its scheduler and history keeper. The handler must not raise there: the process
    would exit with a traceback instead of its code, its threads not stopped."""
    worker = Worker(get_settings(), "postgresql://127.0.0.1:1/nowhere", default_registry())
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    async def started() -> None:  # what Worker.run does before its claim loop
        worker._loop = asyncio.get_running_loop()
        worker.install_signal_handlers()

    try:
        asyncio.run(started())  # the loop is closed when this returns, as run()'s is
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        worker.request_stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
