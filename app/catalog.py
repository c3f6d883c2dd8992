"""The built-in pipelines: the one list of what a registry holds by default.

The engine knows no data domain; this module, above both, puts the engine's
own pipelines and each domain's together.
"""

from __future__ import annotations

from app.engine import builtin
from app.engine.registry import Registry
from app.finra import pipelines as finra
from app.otc import pipelines as otc

__all__ = ["default_registry"]


def default_registry() -> Registry:
    """Every built-in pipeline, by name."""
    return Registry([*builtin.PIPELINES, *otc.PIPELINES, *finra.PIPELINES])
