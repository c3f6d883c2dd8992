"""Keyset pagination: opaque cursors and the `Link: <...>; rel="next"` header.

A cursor is the sort key of the last row of a page, JSON-encoded with a tag
naming the listing it belongs to, in URL-safe base64. Clients treat it as
opaque; a cursor that does not decode, or belongs to another listing, is a 400
naming the `cursor` parameter (never a 500).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import MediaType, Request, Response
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from app.web.responses import ExactJSONResponse

__all__ = [
    "LINK_HEADER",
    "Cursor",
    "Limit",
    "decode_cursor",
    "encode_cursor",
    "next_link",
    "paged",
    "paged_json",
]

T = TypeVar("T")
MAX_CURSOR_LENGTH = 512

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size (at most 500).")]
Cursor = Annotated[
    str | None,
    QueryParameter(
        max_length=MAX_CURSOR_LENGTH,
        description='Opaque: from the previous page\'s `Link: <...>; rel="next"` header.',
    ),
]
LINK_HEADER = ResponseHeader(
    name="Link",
    description='`<url>; rel="next"` when another page follows.',
    value='</api/v1/executions?limit=50&cursor=...>; rel="next"',  # documents the type: string
    documentation_only=True,
)


def encode_cursor(kind: str, *key: Any) -> str:
    raw = msgspec.json.encode([kind, *key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, kind: str, key_type: type[T]) -> T:
    """The key inside `cursor`, converted to `key_type` (a tuple type); 400 if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=list[Any])
        if not decoded or decoded[0] != kind:
            raise ValueError("another listing's cursor")
        return msgspec.convert(decoded[1:], key_type)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise ValidationException(
            detail="`cursor` is not a cursor from this listing; use the Link header's URL",
            extra=[{"key": "cursor", "message": "invalid cursor", "source": "query"}],
        ) from None


def next_link(request: Request[Any, Any, Any], cursor: str) -> str:
    """The Link header value for the next page: this request's URL with `cursor` replaced."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    query.append(("cursor", cursor))
    return f'<{request.url.path}?{urlencode(query)}>; rel="next"'


R = TypeVar("R")


def paged(
    request: Request[Any, Any, Any],
    rows: Sequence[T],
    limit: int,
    *,
    kind: str,
    key: Callable[[T], tuple[Any, ...]],
    to_response: Callable[[T], R],
) -> Response[list[R]]:
    """One page from `limit + 1` rows: the first `limit`, and a Link header when more follow.

    The handler asked its query for one row more than the page; that row's
    presence is the only sign of a next page (nothing is ever counted).
    """
    page = rows[:limit]
    headers = {}
    if len(rows) > limit:
        headers["Link"] = next_link(request, encode_cursor(kind, *key(page[-1])))
    return ExactJSONResponse([to_response(r) for r in page], headers=headers)


def paged_json(
    request: Request[Any, Any, Any], rows: Sequence[tuple[Any, ...]], limit: int, *, kind: str
) -> Response[Any]:
    """`paged` for rows the database wrote as JSON: (key..., JSON object) tuples.

    The body is the page's objects joined into an array, without decoding them.
    """
    page = rows[:limit]
    headers = {}
    if len(rows) > limit:
        headers["Link"] = next_link(request, encode_cursor(kind, *page[-1][:-1]))
    body = b"[" + ",".join(row[-1] for row in page).encode() + b"]"
    return Response(body, media_type=MediaType.JSON, headers=headers)
