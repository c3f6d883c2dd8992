"""Pipelines by name: what can be submitted, with its params type and description.

A pipeline is a value: an async function `run(ctx, params) -> summary`, a
msgspec Struct describing its params, optionally a `check` of those params
against the settings (say, that an input file exists), and its `RetryPolicy`. A `Registry` is built
from a list of them (`app.catalog` lists the built-in ones); nothing registers
itself by being imported.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from app.config import Settings
from app.engine.context import PipelineSettings
from app.engine.retry import RetryPolicy
from app.errors import InvalidParams, UnknownPipeline

if TYPE_CHECKING:
    from app.engine.context import PipelineContext

__all__ = ["NoParams", "ParamDoc", "Pipeline", "Registry", "Summary"]

P = TypeVar("P", bound=msgspec.Struct)
Summary = dict[str, Any] | None
"""What a pipeline returns: a small JSON-able summary, stored in its `completed` event."""


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """Params of a pipeline that takes none."""


class ParamDoc(msgspec.Struct, frozen=True):
    """One parameter as `spine list` and GET /pipelines show it."""

    name: str
    type: str
    default: str
    description: str | None = None


@dataclass(frozen=True)
class Pipeline(Generic[P]):
    name: str
    description: str
    params: type[P]
    run: Callable[[PipelineContext, P], Awaitable[Summary]]
    check: Callable[[P, PipelineSettings], None] | None = None
    """Checks of the params that need the settings (those a pipeline may read); raise
    ValueError with a message."""
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    """How failed attempts are retried (a submission may override the numbers)."""
    rows: Callable[[Any], Mapping[str, int]] | None = None
    """Rows by outcome in a completed run's summary (say, inserted/rejected): the
    worker pool adds them to `spine_pipeline_rows_total`. Outcomes are a few fixed words."""

    def validate(self, raw: dict[str, Any], settings: Settings) -> P:
        """Raw JSON-like params -> the typed Struct; errors name the field."""
        try:
            typed = msgspec.convert(raw, self.params, strict=False)
            if self.check is not None:
                self.check(typed, PipelineSettings.of(settings))
        except msgspec.ValidationError as exc:
            message = str(exc).replace("`$.", "`params.").replace("`$`", "`params`")
            raise InvalidParams(f"invalid params for {self.name}: {message}") from None
        except ValueError as exc:
            raise InvalidParams(f"invalid params for {self.name}: {exc}") from None
        return typed

    def param_docs(self) -> list[ParamDoc]:
        """Each param with a readable type, its default and its description."""
        hints = typing.get_type_hints(self.params, include_extras=True)
        rows = []
        for field in msgspec.structs.fields(self.params):
            kind, description = _describe_type(hints[field.name])
            if field.default is not msgspec.NODEFAULT:
                default = _show_default(field.default)
            elif field.default_factory is not msgspec.NODEFAULT:
                default = _show_default(field.default_factory())
            else:
                default = "(required)"
            rows.append(ParamDoc(field.encode_name, kind, default, description))
        return rows


def _describe_type(hint: Any) -> tuple[str, str | None]:
    """(`int`, `date or none`, ...) and the description from `msgspec.Meta`, if any."""
    description = None
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, msgspec.Meta) and extra.description:
                description = extra.description
        hint = base
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        parts = [_describe_type(arg) for arg in typing.get_args(hint) if arg is not type(None)]
        names = " or ".join(name for name, _ in parts)
        description = description or next((d for _, d in parts if d), None)
        return f"{names} or none", description
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", ""), description


def _show_default(value: Any) -> str:
    return "none" if value is None else str(value)


class Registry:
    """Pipelines by name, built from a list of them."""

    def __init__(self, pipelines: Iterable[Pipeline[Any]] = ()) -> None:
        self._pipelines: dict[str, Pipeline[Any]] = {}
        for item in pipelines:
            if item.name in self._pipelines:
                raise ValueError(f"two pipelines are named {item.name!r}")
            self._pipelines[item.name] = item

    def get(self, name: str) -> Pipeline[Any]:
        try:
            return self._pipelines[name]
        except KeyError:
            raise UnknownPipeline(name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._pipelines)

    def __iter__(self) -> Iterator[Pipeline[Any]]:
        return iter(sorted(self._pipelines.values(), key=lambda p: p.name))

    def retry_policy(self, name: str) -> RetryPolicy:
        """`name`'s retry policy; the default one for a pipeline not registered here (an
        execution or a schedule may outlive its pipeline's registration)."""
        found = self._pipelines.get(name)
        return found.retry if found is not None else RetryPolicy()

    def __contains__(self, name: object) -> bool:
        return name in self._pipelines
