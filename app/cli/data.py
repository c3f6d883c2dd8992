"""`spine data`: input files and their raw lines. The data domains add the commands."""

from __future__ import annotations

import click

__all__ = ["data_group"]


def data_group() -> click.Group:
    """A new, empty `data` group (each CLI built from a catalog gets its own)."""
    return click.Group("data", help="Input files, and the retention of their raw lines.")
