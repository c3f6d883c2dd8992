"""The request checks every app applies: the bearer token, hostile JSON bodies, NUL in URLs.

Kept out of the app factory so that `create_app` only assembles, and so the
API and the dashboard apply one rule (`app.ui.security` reads the same token).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, ValidationException

from app.config import Settings
from app.web.problems import MalformedBody

__all__ = [
    "MAX_JSON_DEPTH",
    "MUTATING",
    "READS",
    "SpineRequest",
    "check_api_request",
    "reject_nul_in_url",
    "require_token",
]

MAX_JSON_DEPTH = 32
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# OpenAPI security requirements: writes name the bearer token; reads may carry it
# (needed only with SPINE_API_TOKEN_READS=1).
MUTATING: list[dict[str, list[str]]] = [{"bearerAuth": []}]
READS: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]


class SpineRequest(Request[Any, Any, State]):
    """A request whose JSON body is refused with a 400, not a 500, when it is hostile.

    Litestar's decoder raises UnicodeDecodeError for bad UTF-8 and RecursionError
    for very deep nesting; PostgreSQL refuses NUL in text and jsonb. All three
    are the client's mistake, so they are reported as such before any handler runs.
    """

    async def json(self) -> Any:
        try:
            value = await super().json()
        except UnicodeDecodeError:
            raise MalformedBody("request body is not valid UTF-8") from None
        except RecursionError:
            raise MalformedBody(_too_deep()) from None
        _check_json(value)
        return value


def _too_deep() -> str:
    return f"request body JSON is nested more than {MAX_JSON_DEPTH} levels deep"


def _check_json(value: Any) -> None:
    """Iteratively (no recursion to exhaust): depth <= MAX_JSON_DEPTH, no NUL in any string."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise MalformedBody("request body JSON contains a NUL character (\\u0000)")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise MalformedBody(_too_deep())
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


async def reject_nul_in_url(request: Request[Any, Any, Any]) -> None:
    """NUL in a path or query value can never match anything and PostgreSQL refuses it: 400.

    The app's `before_request` hook. Async on purpose: Litestar runs sync hooks
    in a thread pool, two thread hops per request that cost more than the checks.
    """
    if "\x00" in request.scope["path"]:
        raise ValidationException(
            detail="the URL path contains a NUL character",
            extra=[{"key": "path", "message": "NUL character", "source": "path"}],
        )
    for key, value in request.query_params.multi_items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise ValidationException(
                detail=f"query parameter `{key.replace(chr(0), '')}` contains a NUL character",
                extra=[{"key": key, "message": "NUL character", "source": "query"}],
            )


async def check_api_request(request: Request[Any, Any, Any]) -> None:
    """The API's and /metrics' `before_request` hook: the token rules, then the URL checks.

    A hook rather than a Litestar guard: a guard is handed a copy of its route
    handler on every request (`copy.copy`, ~13 µs, 2% of a GET).
    """
    require_token(request)
    await reject_nul_in_url(request)


def require_token(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """SPINE_API_TOKEN: required on mutating calls (and on reads with SPINE_API_TOKEN_READS=1).

    Handlers with `opt={"public": True}` (the health probes) never need it.
    Compared in constant time; a refusal never echoes what was presented.
    """
    settings: Settings = connection.app.state.settings
    token = settings.api_token
    if not token or connection.route_handler.opt.get("public"):
        return
    if connection.scope.get("method") not in MUTATING_METHODS and not settings.api_token_reads:
        return
    scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
    # Digests of equal length: the comparison's time reveals neither content nor length.
    valid = hmac.compare_digest(_digest(presented.strip()), _digest(token))
    if scheme.lower() != "bearer" or not valid:
        raise NotAuthorizedException(
            detail="this call needs `Authorization: Bearer <token>` with the configured token",
            headers={"WWW-Authenticate": 'Bearer realm="market-spine"'},
        )


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
