"""`noop`, `sleep`, `flaky` and `fail`: pipelines for health checks, demos, benchmarks and tests."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec

from app.engine.context import PipelineContext
from app.engine.registry import NoParams, Pipeline, Summary
from app.engine.retry import RetryPolicy
from app.errors import SpineError

__all__ = [
    "PIPELINES",
    "FailParams",
    "FlakyFailure",
    "FlakyParams",
    "PurposefulFailure",
    "SleepParams",
]


async def _noop(ctx: PipelineContext, params: NoParams) -> Summary:
    return None


class SleepParams(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400, description="How long to sleep.")] = 1.0


async def _sleep(ctx: PipelineContext, params: SleepParams) -> Summary:
    step = 1.0
    slept = 0.0
    while slept < params.seconds:
        chunk = min(step, params.seconds - slept)
        await ctx.sleep(chunk)
        slept += chunk
        await ctx.progress(int(slept * 1000), int(params.seconds * 1000), f"slept {slept:.1f}s")
    return {"slept_seconds": params.seconds}


class FailParams(msgspec.Struct, forbid_unknown_fields=True):
    message: Annotated[
        str, msgspec.Meta(max_length=500, description="The error the run ends with.")
    ] = "failed on purpose"


class PurposefulFailure(RuntimeError):
    """What `fail` raises: an unexpected error as far as the engine knows (it keeps the trace)."""


async def _fail(ctx: PipelineContext, params: FailParams) -> Summary:
    raise PurposefulFailure(params.message)


class FlakyFailure(SpineError):
    """The failure `flaky` raises on purpose (retryable)."""


class FlakyParams(msgspec.Struct, forbid_unknown_fields=True):
    fail_times: Annotated[
        int, msgspec.Meta(ge=0, le=100, description="Attempts that fail before one completes.")
    ] = 1
    message: Annotated[
        str, msgspec.Meta(min_length=1, max_length=500, description="The error they fail with.")
    ] = "flaky failure"
    seconds: Annotated[
        float, msgspec.Meta(ge=0, le=3600, description="How long each attempt sleeps first.")
    ] = 0.0
    cooperative: Annotated[
        bool,
        msgspec.Meta(
            description=(
                "false: that sleep is one blocking call, deaf to cancel and timeout "
                "(a stuck pipeline, to see a timeout's grace period at work)."
            )
        ),
    ] = True


async def _flaky(ctx: PipelineContext, params: FlakyParams) -> Summary:
    """The attempt number is the execution's own, so any worker fails the same attempts."""
    if not params.cooperative:
        time.sleep(params.seconds)  # noqa: ASYNC251 - blocks the event loop on purpose
    elif params.seconds:
        await ctx.sleep(params.seconds)
    if ctx.attempt <= params.fail_times:
        raise FlakyFailure(params.message)
    return {"attempt": ctx.attempt}


PIPELINES: tuple[Pipeline[Any], ...] = (
    Pipeline("noop", "Does nothing; for health checks and benchmarks.", NoParams, _noop),
    Pipeline(
        "sleep",
        "Sleeps for `seconds`, reporting progress; stops early when cancelled.",
        SleepParams,
        _sleep,
    ),
    Pipeline(
        "fail",
        "Fails at once with `message` (and a traceback), never retried; "
        "to try alerts, metrics and logs.",
        FailParams,
        _fail,
        retry=RetryPolicy(permanent=(PurposefulFailure,)),
    ),
    Pipeline(
        "flaky",
        "Fails its first `fail_times` attempts with `message`, then completes; "
        "to see retries and timeouts at work.",
        FlakyParams,
        _flaky,
    ),
)
