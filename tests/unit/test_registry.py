"""Pipelines as values: the registry, params validation and how params are shown."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
import pytest

from app.catalog import default_registry
from app.config import Settings, get_settings
from app.engine.context import PipelineContext, PipelineSettings
from app.engine.registry import NoParams, ParamDoc, Pipeline, Registry, Summary
from app.engine.retry import Backoff, RetryPolicy
from app.errors import InvalidParams, UnknownPipeline


def test_registry_refuses_duplicate_names() -> None:
    async def run(ctx: PipelineContext, params: NoParams) -> Summary:
        return None

    with pytest.raises(ValueError, match="two pipelines are named 'x'"):
        Registry([Pipeline("x", "first", NoParams, run), Pipeline("x", "second", NoParams, run)])


def test_unknown_pipeline_lists_known_ones() -> None:
    with pytest.raises(UnknownPipeline) as info:
        default_registry().get("nope")
    assert "noop" in str(info.value)
    assert "sleep" in str(info.value)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"seconds": "soon"}, "params.seconds"), ({"seconds": -1}, "params.seconds")],
)
def test_params_errors_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=field.replace(".", r"\.")):
        default_registry().get("sleep").validate(params, get_settings())


def test_unknown_param_is_an_error_not_ignored() -> None:
    with pytest.raises(InvalidParams, match="seconds_typo"):
        default_registry().get("sleep").validate({"seconds_typo": 1}, get_settings())


class _Shown(msgspec.Struct, forbid_unknown_fields=True):
    day: Annotated[date | None, msgspec.Meta(description="A day.")] = None
    count: int = 3
    name: str | None = None


async def _run(ctx: PipelineContext, params: Any) -> Summary:
    return None


def test_param_docs_read_like_types_not_python_reprs() -> None:
    docs = Pipeline("shown", "", _Shown, _run).param_docs()
    assert docs == [
        ParamDoc("day", "date or none", "none", "A day."),
        ParamDoc("count", "int", "3", None),
        ParamDoc("name", "str or none", "none", None),
    ]


def test_a_check_needing_settings_is_an_invalid_params_error() -> None:
    def refuse(params: NoParams, settings: PipelineSettings) -> None:
        raise ValueError(f"not in {settings.market_tz}")

    pipeline = Pipeline("checked", "", NoParams, _run, check=refuse)
    with pytest.raises(InvalidParams, match="invalid params for checked: not in America/New_York"):
        pipeline.validate({}, Settings())


def test_a_check_sees_the_pipeline_settings_not_the_api_token() -> None:
    seen: list[object] = []
    pipeline = Pipeline("checked", "", NoParams, _run, check=lambda _p, s: seen.append(s))
    pipeline.validate({}, Settings(api_token="secret-token"))
    assert seen == [PipelineSettings.of(Settings())]


def test_the_catalog_lists_every_built_in_pipeline() -> None:
    assert default_registry().names() == [
        "dataset_fetch",
        "dataset_propagate",
        "dataset_scan",
        "fail",
        "finra_weekly_ingest",
        "flaky",
        "noop",
        "otc_compute_metrics",
        "otc_ingest",
        "regsho_compute",
        "regsho_ingest",
        "sec_ftd_ingest",
        "sleep",
    ]


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1
    with pytest.raises(ValueError, match="0 < first <= cap"):
        Backoff(1.0, 0.5)


def test_retry_policy_bad_input_is_always_permanent() -> None:
    from app.otc.connector import InvalidInputFile

    class VendorDown(Exception):
        pass

    policy = RetryPolicy(permanent=(KeyError,))
    assert policy.is_permanent(InvalidParams("bad"))
    assert policy.is_permanent(InvalidInputFile("wrong header"))
    assert policy.is_permanent(KeyError("x"))
    assert not policy.is_permanent(VendorDown("try later"))
    assert not RetryPolicy().is_permanent(KeyError("x"))


def test_retry_policy_checks_its_numbers_and_caps_by_the_setting() -> None:
    for bad in ({"max_attempts": 0}, {"max_attempts": 101}, {"backoff_seconds": -1.0}):
        with pytest.raises(ValueError, match="must be"):
            RetryPolicy(**bad)
    assert RetryPolicy().max_backoff(3600) == 3600
    assert RetryPolicy(max_backoff_seconds=60).max_backoff(3600) == 60
    assert RetryPolicy(max_backoff_seconds=7200).max_backoff(3600) == 3600


def test_pipelines_retry_by_default_with_the_settings_attempts() -> None:
    flaky = default_registry().get("flaky")
    assert flaky.retry == RetryPolicy()
    assert flaky.retry.max_attempts is None  # SPINE_MAX_ATTEMPTS at submit
