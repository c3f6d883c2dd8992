"""Every error the API and the dashboard answer, mapped to RFC 9457 problem details in one function.

    NotFound                             404  not-found
    Conflict                             409  conflict
    UnknownPipeline                      422  unknown-pipeline (lists the known ones)
    InvalidParams / InvalidRequest       422  invalid-params / invalid-request
    InvalidField                         422  invalid-request, the field in `errors`
    malformed JSON, bad UTF-8, too deep  400  malformed-body
    Litestar validation (body, query)    400  validation-error (names the field)
    body over SPINE_MAX_BODY_BYTES       413  body-too-large
    missing or wrong bearer token        401  unauthorized
    psycopg.DataError (a refused value)  400  invalid-value
    psycopg.OperationalError (DB down)   503  database-unavailable (Retry-After)
    client gone before its body arrived  400  client-disconnected: one INFO line, no
                                              traceback (nobody is there to read it)
    other HTTP errors (404 route, 405)   their status
    anything else                        500  internal-error: traceback logged with a
                                              reference; the body says only the reference

A response never carries a stack trace, a header value, a token or a URL with
credentials: details come from our own messages or from validation of the
client's own input.
"""

from __future__ import annotations

import logging
import re
import uuid
from http import HTTPStatus
from typing import Annotated, Any

import msgspec
import psycopg
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    InternalServerException,
    NotAuthorizedException,
    SerializationException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec

from app.errors import (
    Conflict,
    InvalidField,
    InvalidParams,
    InvalidRequest,
    NotFound,
    UnknownPipeline,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "FieldError",
    "MalformedBody",
    "Problem",
    "exception_to_response",
    "problem_for",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:market-spine:problem:"
RETRY_AFTER_SECONDS = 5

log = logging.getLogger("app.api")


class FieldError(msgspec.Struct, kw_only=True):
    field: Annotated[str, msgspec.Meta(description="The offending field, e.g. `pipeline`.")]
    message: str
    source: Annotated[str, msgspec.Meta(description="body, query, path or header.")]


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: Annotated[str, msgspec.Meta(description="A URI naming the kind of problem.")] = (
        "about:blank"
    )
    title: str
    status: int
    detail: str | None = None
    instance: Annotated[str | None, msgspec.Meta(description="The request path.")] = None
    errors: list[FieldError] | None = None
    known_pipelines: list[str] | None = None


class MalformedBody(ClientException):
    """The request body is not JSON we accept (bad UTF-8, too deeply nested, NUL in a string)."""


def _about_blank() -> str:
    """A new "about:blank" string, so the body always names its type: msgspec's
    `omit_defaults` leaves out a value that *is* the field's default object."""
    return "".join(("about:", "blank"))


def _problem(
    status: int, kind: str, detail: str | None, request: Request[Any, Any, Any], **extra: Any
) -> Problem:
    return Problem(
        type=f"{TYPE_PREFIX}{kind}" if kind else _about_blank(),
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extra,
    )


_MISSING = re.compile(r"Missing required (\w+) parameter '([^']+)'")


def _field_errors(exc: ValidationException, request: Request[Any, Any, Any]) -> list[FieldError]:
    """Litestar's validation details as (field, message, source), naming the field."""
    missing = _MISSING.match(str(exc.detail))
    if missing and not exc.extra:
        source, name = missing.groups()
        return [FieldError(field=name, message="required", source=source)]
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        source = getattr(item.get("source"), "value", item.get("source")) or "body"
        key = str(item.get("key") or "")
        message = str(item.get("message") or "invalid value")
        if key in {"", "data"}:  # the whole body: msgspec's message names the field in backticks
            named = re.search(r"field `([^`]+)`", message)
            key = named.group(1) if named else "body"
        errors.append(FieldError(field=_public(request, key), message=message, source=str(source)))
    return errors


def _public(request: Request[Any, Any, Any], key: str) -> str:
    """The name the client sent for handler argument `key`: Litestar reports a query
    parameter by its argument's name (`partition_state`), not by the name it has in the
    URL (`state`, a name Litestar keeps for the app's state)."""
    try:
        parameters = request.route_handler.parsed_fn_signature.parameters
    except (AttributeError, LookupError):  # no handler resolved (e.g. an unknown route)
        return key
    found = parameters.get(key)
    kwarg = getattr(found, "kwarg_definition", None)
    for alias in ("query", "header", "name"):  # `name`: what `Parameter(name=...)` sets
        if named := getattr(kwarg, alias, None):
            return str(named)
    return key


_DOMAIN: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, 404, "not-found"),
    (Conflict, 409, "conflict"),
    (UnknownPipeline, 422, "unknown-pipeline"),
    (InvalidParams, 422, "invalid-params"),
    (InvalidRequest, 422, "invalid-request"),
)


# What Litestar raises when the client hangs up while its body is being read
# (litestar.connection.Request.stream): a client's doing, not a server error.
_CLIENT_DISCONNECTED = "client disconnected prematurely"


def _client_disconnected(exc: Exception) -> bool:
    return isinstance(exc, InternalServerException) and exc.detail == _CLIENT_DISCONNECTED


def problem_for(request: Request[Any, Any, Any], exc: Exception) -> tuple[Problem, dict[str, str]]:
    """The problem document and extra headers for `exc`: the one mapping of errors to HTTP."""
    for kind, status, slug in _DOMAIN:
        if isinstance(exc, kind):
            known = exc.known if isinstance(exc, UnknownPipeline) else None
            errors = None
            if isinstance(exc, InvalidField):
                errors = [FieldError(field=exc.field, message=str(exc), source=exc.source)]
            elif isinstance(exc, UnknownPipeline):
                errors = [FieldError(field="pipeline", message=str(exc), source="body")]
            problem = _problem(
                status, slug, str(exc), request, known_pipelines=known, errors=errors
            )
            return problem, {}
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return _http_problem(request, exc)
    if _client_disconnected(exc):
        log.info(
            "client disconnected before sending its body: %s %s", request.method, request.url.path
        )
        detail = "the client disconnected before sending its whole body"
        return _problem(400, "client-disconnected", detail, request), {}
    if isinstance(exc, psycopg.DataError):
        # The database refused a value the client sent (e.g. out of range); say which kind.
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
        detail = f"a value in the request was refused by the database ({type(exc).__name__})"
        return _problem(400, "invalid-value", detail, request), {}
    if isinstance(exc, psycopg.OperationalError):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        detail = "the database is unavailable; try again shortly"
        problem = _problem(503, "database-unavailable", detail, request)
        return problem, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    reference = uuid.uuid4().hex[:12]
    log.error(
        "unhandled error (reference %s) on %s %s",
        reference,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    detail = f"internal error; the server log has the details under reference {reference}"
    return _problem(500, "internal-error", detail, request), {}


def _http_problem(
    request: Request[Any, Any, Any], exc: HTTPException
) -> tuple[Problem, dict[str, str]]:
    """Litestar's client errors: validation, malformed bodies, 401, 413, unknown routes."""
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc, request)
        where = "; ".join(f"`{e.field}`: {e.message}" for e in errors)
        detail = str(exc.detail)
        if where and detail.startswith("Validation failed"):  # Litestar's: name the fields
            detail = f"invalid request: {where}"
        return _problem(400, "validation-error", detail, request, errors=errors or None), {}
    if isinstance(exc, MalformedBody):
        return _problem(400, "malformed-body", exc.detail, request), {}
    if isinstance(exc.__cause__, SerializationException):
        detail = f"request body is not valid JSON: {exc.detail}"
        return _problem(400, "malformed-body", detail, request), {}
    if isinstance(exc, NotAuthorizedException):
        return _problem(401, "unauthorized", exc.detail, request), headers
    if exc.status_code == 413:
        limit = getattr(request.app.state, "max_body_bytes", None)
        detail = f"request body is larger than {limit} bytes" if limit else "request body too large"
        return _problem(413, "body-too-large", detail, request), {}
    return _problem(exc.status_code, "", exc.detail, request), headers


def exception_to_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar exception handler for every exception (registered for `Exception`)."""
    problem, headers = problem_for(request, exc)
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


_DESCRIPTIONS = {
    400: "Malformed JSON, or a field that fails validation (named in `errors`).",
    401: "Missing or wrong `Authorization: Bearer` token (only when SPINE_API_TOKEN is set).",
    404: "No such object.",
    409: "The request contradicts the object's state.",
    413: "Request body larger than SPINE_MAX_BODY_BYTES.",
    422: "Well-formed but not acceptable: unknown pipeline (the known ones are listed) "
    "or invalid params.",
    503: "The database is unavailable; retry after `Retry-After` seconds.",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses a route can give (replacing Litestar's own)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }
