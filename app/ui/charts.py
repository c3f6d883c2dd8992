"""Chart data for the pages: numbers as a JSON data block that the vendored uPlot draws.

Shared by the core pages and the data domains' pages (no inline script: the
Content-Security-Policy allows none, so the numbers travel as JSON).
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["chart_json"]

_json = msgspec.json.Encoder(decimal_format="number")


def chart_json(value: Any) -> str:
    """JSON for a `<script type="application/json">` block: `<` escaped so it cannot close it."""
    return _json.encode(value).decode().replace("<", "\\u003c")
