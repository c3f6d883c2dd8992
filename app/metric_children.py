"""A labelled metric's child, looked up once.

prometheus-client's `labels()` validates the values and takes a lock on every
call: on a hot path (a noop's start and end, every API request) that is a
noticeable share of the work. Our labels are bounded (pipelines, lanes,
outcome words, route templates and status codes), so each child is kept.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["child"]


@functools.cache
def child(metric: Any, *labels: object) -> Any:
    """`metric.labels(*labels)`, made once per metric and label values."""
    return metric.labels(*labels)
