"""The API's HTTP metrics: requests, errors, in progress and latency by route template.

The same four series, names and labels as Litestar's Prometheus middleware
(`method`, `path` the route template, `status_code`, `app_name`), kept by a
plain ASGI middleware. Litestar's builds a Request, a label dict and four label
look-ups (each under a lock) on every request; here a route's children are
looked up once and kept (`app.metric_children`), so a request costs two
increments, a decrement and an observation (docs/benchmarks.md, issue 32).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import Counter, Gauge, Histogram

from app.metric_children import child

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["APP_NAME", "PREFIX", "HttpMetrics"]

APP_NAME = "market-spine"
PREFIX = "spine_http"
_LABELS = ("method", "path", "status_code", "app_name")


class _Series:
    """The four metrics, made on first use: under `spine api --workers N` the
    multiprocess directory is set before any request, never at import."""

    def __init__(self) -> None:
        self.total = Counter(f"{PREFIX}_requests_total", "Total requests", _LABELS)
        self.errors = Counter(f"{PREFIX}_requests_error_total", "Total errors in requests", _LABELS)
        self.seconds = Histogram(
            f"{PREFIX}_request_duration_seconds", "Request duration, in seconds", _LABELS
        )
        self.in_progress = Gauge(
            f"{PREFIX}_requests_in_progress",
            "Total requests currently in progress",
            _LABELS,
            multiprocess_mode="livesum",
        )


@functools.cache
def _the_series() -> _Series:
    return _Series()


class HttpMetrics:
    """ASGI middleware (the app's `middleware=[HttpMetrics]`): runs after routing, so
    `path_template` is the route's; a path no route matches is not counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fields = cast("dict[str, Any]", scope)  # an HTTP scope, after routing
        if fields["type"] != "http":
            await self.app(scope, receive, send)
            return
        series = _the_series()  # made on first use (see _Series)
        method: str = fields["method"]
        path: str = fields["path_template"]
        began = time.perf_counter()
        status = 200
        duration = 0.0

        async def timed_send(message: Message) -> None:
            nonlocal status, duration
            kind = message["type"]
            if kind == "http.response.start":
                status = cast("dict[str, Any]", message)["status"]
            elif kind == "http.response.body":
                duration = time.perf_counter() - began
            await send(message)

        running = child(series.in_progress, method, path, 200, APP_NAME)
        running.inc()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            running.dec()
            if status >= 500:
                child(series.errors, method, path, status, APP_NAME).inc()
            child(series.total, method, path, status, APP_NAME).inc()
            child(series.seconds, method, path, status, APP_NAME).observe(duration)
