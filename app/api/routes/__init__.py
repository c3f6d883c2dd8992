"""The core API's route handlers, grouped by resource; `app.api.router` registers them.

A data domain's controller lives in its own package (`app/<domain>/api.py`).
The names below are `app.web`'s, re-exported for the core routes' imports.
"""

from __future__ import annotations

from app.web.connection import DbConn
from app.web.security import MUTATING, READS

__all__ = ["MUTATING", "READS", "DbConn"]
