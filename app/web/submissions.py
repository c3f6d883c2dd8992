"""Submissions read strictly, whatever carries them: a JSON body's params, the items of a
bulk submit, the lines of `spine run --from-file` (free of the web framework, so the CLI
can use it too).

JSON has one number type: `3.0` is the integer 3 (as JSON Schema says), so integral
numbers are integers for the strict pass. A string where a number belongs is refused,
naming the field.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from app.engine.registry import Registry
from app.engine.submit import Submission
from app.errors import InvalidParams, InvalidRequest
from app.web.schemas import ExecutionCreate

__all__ = ["check_params", "json_numbers", "split_error", "submission"]

_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def check_params(registry: Registry, pipeline: str, params: dict[str, Any]) -> None:
    """A pipeline's params of their declared types, as JSON carries them (no "1" for 1).

    An unknown pipeline is left to the engine, which names the known ones.
    """
    if pipeline not in registry:
        return
    found = registry.get(pipeline)
    try:
        msgspec.convert(json_numbers(params), found.params, strict=True)
    except msgspec.ValidationError as exc:
        field, message = split_error(str(exc))
        where = f"params.{field}" if field else "params"
        raise InvalidParams(f"invalid params for {pipeline}: {message} - at `{where}`") from None


def json_numbers(value: Any) -> Any:
    """`value` with integral floats as ints (bodies are at most 32 levels deep)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_numbers(v) for v in value]
    return value


def split_error(message: str) -> tuple[str, str]:
    """msgspec's "Expected `int`, got `str` - at `$.max_attempts`" -> (field, message)."""
    at = _AT.search(message)
    if at is None:
        return "", message
    return at.group(1), message[: at.start()]


def submission(registry: Registry, raw: Any) -> Submission | InvalidRequest:
    """One item of a bulk submit read as the body of POST /executions is (strict JSON
    types, no unknown fields, the params of their pipeline's types), or the error that
    makes it invalid (`app.engine.submit.prepare` checks the rest)."""
    try:
        body = msgspec.convert(json_numbers(raw), ExecutionCreate, strict=True)
        check_params(registry, body.pipeline, body.params)
    except msgspec.ValidationError as exc:
        return InvalidRequest(str(exc))
    except InvalidRequest as exc:
        return exc
    return Submission(
        pipeline=body.pipeline,
        params=body.params,
        lane=body.lane,
        logical_key=body.logical_key,
        max_attempts=body.max_attempts,
        retry_backoff_seconds=body.retry_backoff_seconds,
        timeout_seconds=body.timeout_seconds,
        run_at=body.run_at,
    )
