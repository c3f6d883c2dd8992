"""The backend a command's state changes go through (submit, cancel, retry, run now).

Built once per command from the settings (SPINE_BACKEND), unless whoever
invoked the CLI put one in the click context: `CliRunner().invoke(main, args,
obj=backend)`, the way a test hands in a recording backend.
"""

from __future__ import annotations

import click

from app.config import get_settings
from app.engine.backends import OrchestratorBackend, make_backend

__all__ = ["cli_backend"]


def cli_backend() -> OrchestratorBackend:
    """The invoker's backend if it gave one, else the one SPINE_BACKEND names."""
    ctx = click.get_current_context(silent=True)
    given = ctx.obj if ctx is not None else None
    return given if isinstance(given, OrchestratorBackend) else make_backend(get_settings())
