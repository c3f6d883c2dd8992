"""A pipeline sees the settings it needs (data dir, market time zone), never the API token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from app.config import Settings
from app.engine.attempts import attempt
from app.engine.context import PipelineContext, PipelineSettings
from app.engine.registry import NoParams, Pipeline, Registry, Summary
from tests.unit.worker.fakes import execution


def test_pipeline_settings_are_the_data_dir_and_the_market_time_zone_only() -> None:
    assert PipelineSettings.__struct_fields__ == ("data_dir", "market_tz")


async def test_a_running_pipeline_gets_them_and_not_the_whole_settings() -> None:
    settings = msgspec.structs.replace(
        Settings(), api_token="secret-token", data_dir=Path("/in"), market_tz="Europe/Paris"
    )
    seen: list[Any] = []

    async def look(ctx: PipelineContext, _params: NoParams) -> Summary:
        seen.append(ctx.settings)
        return {}

    registry = Registry([Pipeline("noop", "Looks at its settings.", NoParams, look)])
    pool: Any = None  # this pipeline writes nothing
    attempted = await attempt(pool, execution("e"), "w", settings=settings, registry=registry)
    assert attempted.end is not None
    assert seen == [PipelineSettings(data_dir=Path("/in"), market_tz="Europe/Paris")]
    assert "secret-token" not in repr(seen)
