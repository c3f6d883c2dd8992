"""`spine query`: read results. The data domains add their commands (`app.catalog`)."""

from __future__ import annotations

import click

__all__ = ["query_group"]

HELP = "Read results: each data domain's rows, metrics and loads."


def query_group() -> click.Group:
    """A new, empty `query` group (each CLI built from a catalog gets its own)."""
    return click.Group("query", help=HELP)
