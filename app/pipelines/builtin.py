"""`noop` and `sleep`: pipelines for health checks, benchmarks and tests of the engine."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.pipelines.base import PipelineContext
from app.registry import NoParams, Summary, pipeline


@pipeline("noop", "Does nothing; for health checks and benchmarks.", NoParams)
async def noop(ctx: PipelineContext, params: NoParams) -> Summary:
    return None


class SleepParams(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400, description="How long to sleep.")] = 1.0


@pipeline(
    "sleep", "Sleeps for `seconds`, reporting progress; stops early when cancelled.", SleepParams
)
async def sleep(ctx: PipelineContext, params: SleepParams) -> Summary:
    step = 1.0
    slept = 0.0
    while slept < params.seconds:
        chunk = min(step, params.seconds - slept)
        await ctx.sleep(chunk)
        slept += chunk
        await ctx.progress(int(slept * 1000), int(params.seconds * 1000), f"slept {slept:.1f}s")
    return {"slept_seconds": params.seconds}
