"""Backends by name; SPINE_BACKEND chooses one.

The Celery backend is imported only when chosen: Celery is an optional extra.
"""

from __future__ import annotations

from app.config import Settings
from app.engine.backends.local import LocalBackend
from app.engine.backends.protocol import OrchestratorBackend

__all__ = ["LocalBackend", "OrchestratorBackend", "make_backend"]


def make_backend(settings: Settings) -> OrchestratorBackend:
    """The backend SPINE_BACKEND names (settings already refuse unknown names at start-up)."""
    if settings.backend == "local":
        return LocalBackend(settings)
    if settings.backend == "celery":
        from app.engine.backends.celery import CeleryBackend  # the `celery` extra

        return CeleryBackend(settings)
    raise ValueError(f"unknown SPINE_BACKEND {settings.backend!r}; known: local, celery")
