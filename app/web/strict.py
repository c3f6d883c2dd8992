"""Strict JSON bodies: every value of the declared type, every key once.

Litestar converts request data in msgspec's lax mode (it must, for query
strings), which reads `"3"` as 3 and a number as epoch seconds for a datetime.
A JSON body carries types of its own, so a body is first converted in strict
mode against the handler's declared type, and a pipeline's params against the
pipeline's params type: a string where a number belongs is refused, naming the
field. JSON objects with a key twice are refused too (parsers disagree on which
one wins, so a proxy and this server could read two different requests).
JSON itself has one number type: `3.0` is the integer 3 (as JSON Schema says), so
integral numbers are integers for the strict pass.
A date-time in a query string must be written as one, not as epoch seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.handlers import BaseRouteHandler

from app.web.submissions import check_params, json_numbers, split_error

__all__ = [
    "check_body",
    "check_params",
    "check_query_times",
    "json_numbers",
]

# A key's closing quote and its colon. Each key of the text matches once, so do
# a quote and a colon inside a string: as many matches as keys decoded means no
# key was given twice (a duplicate collapses in the dict; more matches, the full check).
_KEY_END = re.compile(rb'"\s*:')
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _refuse(field: str, message: str) -> ValidationException:
    return ValidationException(
        detail="Validation failed: strict JSON body",
        extra=[{"key": field, "message": message, "source": "body"}],  # "": the message names it
    )


def check_body(raw: bytes, value: Any, declared: Any) -> None:
    """Refuse a body (already decoded to `value`) with a duplicate key or a lax-only value.

    `declared` is the handler's data type (None: no typed body to check).
    """
    if b"{" in raw and len(_KEY_END.findall(raw)) != _count_keys(value):
        try:
            json.loads(raw, object_pairs_hook=_unique)
        except _DuplicateKey as dup:
            raise _refuse(dup.key, f"key `{dup.key}` appears more than once") from None
    if declared is None:
        return
    try:
        msgspec.convert(json_numbers(value), declared, strict=True)
    except msgspec.ValidationError as exc:
        field, message = split_error(str(exc))
        raise _refuse(field, message) from None


def _count_keys(value: Any) -> int:
    """The keys of every object in a decoded JSON value (at most 32 levels deep)."""
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


@functools.lru_cache(maxsize=1024)
def _time_params(handler: BaseRouteHandler) -> frozenset[str]:
    """The query names of a handler's date-time parameters (computed once per handler)."""
    names = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        if field.is_subclass_of(dt.datetime) or field.has_inner_subclass_of(dt.datetime):
            names.add(getattr(field.kwarg_definition, "query", None) or name)
    return frozenset(names)


def check_query_times(request: Request[Any, Any, Any]) -> None:
    """`?since=1700000000` is refused: lax conversion would read it as epoch seconds."""
    names = _time_params(request.route_handler)
    if not names:
        return
    for key, value in request.query_params.multi_items():
        if key in names and isinstance(value, str) and _NUMBER.fullmatch(value):
            message = "expected an RFC 3339 date-time (like 2026-01-06T21:30:00Z), got a number"
            raise ValidationException(
                detail=f"query parameter `{key}`: {message}",
                extra=[{"key": key, "message": message, "source": "query"}],
            )
