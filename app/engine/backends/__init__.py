"""Backends by name; BACKEND_TYPE chooses one (only `local` exists today)."""

from __future__ import annotations

from app.config import Settings
from app.engine.backends.local import LocalBackend
from app.engine.backends.protocol import OrchestratorBackend

__all__ = ["LocalBackend", "OrchestratorBackend", "make_backend"]


def make_backend(settings: Settings) -> OrchestratorBackend:
    """The backend BACKEND_TYPE names (settings already refuse unknown names at start-up)."""
    if settings.backend_type == "local":
        return LocalBackend(settings)
    raise ValueError(f"unknown BACKEND_TYPE {settings.backend_type!r}; known: local")
