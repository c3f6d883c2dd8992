"""Pipelines by name: what can be submitted, with its params type and description.

A pipeline is an async function `run(ctx, params) -> summary` plus a msgspec
Struct describing its params; the dispatcher validates submissions against
that Struct before anything is stored.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from app.errors import InvalidParams, UnknownPipeline

if TYPE_CHECKING:
    from app.pipelines.base import PipelineContext

__all__ = ["NoParams", "Pipeline", "Registry", "Summary", "get_registry", "pipeline"]

P = TypeVar("P", bound=msgspec.Struct)
Summary = dict[str, Any] | None
"""What a pipeline returns: a small JSON-able summary, stored in its `completed` event."""


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """Params of a pipeline that takes none."""


@dataclass(frozen=True)
class Pipeline(Generic[P]):
    name: str
    description: str
    params: type[P]
    run: Callable[[PipelineContext, P], Awaitable[Summary]]

    def validate(self, raw: dict[str, Any]) -> P:
        """Raw JSON-like params -> the typed Struct; errors name the field."""
        try:
            return msgspec.convert(raw, self.params, strict=False)
        except msgspec.ValidationError as exc:
            message = str(exc).replace("`$.", "`params.").replace("`$`", "`params`")
            raise InvalidParams(f"invalid params for {self.name}: {message}") from None

    def param_docs(self) -> list[tuple[str, str, str]]:
        """(name, type, default) for each param, for `spine list` and the API."""
        hints = typing.get_type_hints(self.params)
        rows = []
        for field in msgspec.structs.fields(self.params):
            hint = hints[field.name]
            kind = getattr(hint, "__name__", None) or str(hint)
            if field.default is not msgspec.NODEFAULT:
                default = repr(field.default)
            elif field.default_factory is not msgspec.NODEFAULT:
                default = repr(field.default_factory())
            else:
                default = "(required)"
            rows.append((field.encode_name, kind.replace("typing.", ""), default))
        return rows


class Registry:
    def __init__(self) -> None:
        self._pipelines: dict[str, Pipeline[Any]] = {}

    def register(self, item: Pipeline[Any]) -> None:
        if item.name in self._pipelines:
            raise ValueError(f"a pipeline named {item.name!r} is already registered")
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

    def __contains__(self, name: object) -> bool:
        return name in self._pipelines


_default = Registry()


def pipeline(
    name: str, description: str, params: type[P]
) -> Callable[
    [Callable[[PipelineContext, P], Awaitable[Summary]]],
    Callable[[PipelineContext, P], Awaitable[Summary]],
]:
    """Decorator registering `run` in the default registry."""

    def decorate(
        run: Callable[[PipelineContext, P], Awaitable[Summary]],
    ) -> Callable[[PipelineContext, P], Awaitable[Summary]]:
        _default.register(Pipeline(name, description, params, run))
        return run

    return decorate


def get_registry() -> Registry:
    """The default registry with every built-in pipeline loaded."""
    import app.pipelines  # noqa: F401 - registers the built-in pipelines

    return _default
