"""`noop`, `sleep` and `fail`: pipelines for health checks, benchmarks and tests of the engine."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from app.engine.context import PipelineContext
from app.engine.registry import NoParams, Pipeline, Summary

__all__ = ["PIPELINES", "FailParams", "PurposefulFailure", "SleepParams"]


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
        "Fails at once with `message` (and a traceback); to try alerts, metrics and logs.",
        FailParams,
        _fail,
    ),
)
