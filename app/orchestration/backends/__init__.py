"""Backends by name; BACKEND_TYPE chooses one (only `local` exists today)."""

from __future__ import annotations

from app.config import get_settings
from app.orchestration.backends.local import LocalBackend
from app.orchestration.backends.protocol import OrchestratorBackend

__all__ = ["LocalBackend", "OrchestratorBackend", "get_backend"]

_BACKENDS: dict[str, type[LocalBackend]] = {"local": LocalBackend}


def get_backend(name: str | None = None) -> LocalBackend:
    """The configured backend. Settings already refuse unknown names at start-up."""
    name = name or get_settings().backend_type
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown BACKEND_TYPE {name!r}; known: {', '.join(_BACKENDS)}") from None
