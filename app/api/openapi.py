"""What the OpenAPI document says that Litestar cannot infer, so it agrees with the server.

- Request bodies: Litestar drops msgspec's `forbid_unknown_fields` and any bound
  of 0 (`ge=0`, `gt=0`), so their schemas are msgspec's own (closed objects,
  every bound). `pipeline` is one of the registered pipelines, `params` one of
  their params schemas (closed too), a bulk submit's items are each such a
  body (the server reads them one by one, answering an invalid one), and a
  schedule has exactly one of `cron` and `interval_seconds` (a PATCH at most one).
- Security: `Authorization` is required where the running configuration needs
  the token (`SPINE_API_TOKEN`, `SPINE_API_TOKEN_READS`), and nowhere without one.

Clients and fuzzers then know what the server refuses before they send it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPI, OpenAPIType, Operation, Reference, Schema

from app.api.routes.datasets import BackfillCreate
from app.config import Settings
from app.engine.registry import Registry
from app.web.schemas import ExecutionBatchCreate, ExecutionCreate
from app.web.schemas_schedules import ScheduleCreate, SchedulePatch

__all__ = ["describe_the_server"]

_ALIASES = Schema().field_aliases()
_LISTS = {"all_of", "any_of", "one_of", "prefix_items"}
_BODIES = (ExecutionCreate, ScheduleCreate, SchedulePatch)
_OTHER_BODIES = (BackfillCreate, ExecutionBatchCreate)
"""Request bodies with nothing to add but msgspec's own closed schema."""
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_BEARER = "bearerAuth"
_NULL = Schema(type=OpenAPIType.NULL)


def describe_the_server(openapi: OpenAPI, registry: Registry, settings: Settings) -> None:
    """Bring the generated document in line with what this server accepts."""
    _request_bodies(openapi, registry)
    _security(openapi, settings)


def _request_bodies(openapi: OpenAPI, registry: Registry) -> None:
    assert openapi.components is not None
    assert isinstance(openapi.components.schemas, dict)
    schemas = openapi.components.schemas
    template = "#/components/schemas/{name}"
    _, bodies = msgspec.json.schema_components((*_BODIES, *_OTHER_BODIES), ref_template=template)
    params_types = list(dict.fromkeys(p.params for p in registry))
    params_refs, params = msgspec.json.schema_components(params_types, ref_template=template)
    for name, document in {**bodies, **params}.items():
        schema = _schema(document)
        assert isinstance(schema, Schema)  # msgspec's components are objects, never a $ref
        schemas[name] = schema
    names = registry.names()
    for body in _BODIES:
        schema = schemas[body.__name__]
        assert isinstance(schema, Schema)
        assert schema.properties is not None
        pipeline = schema.properties["pipeline"]
        assert isinstance(pipeline, Schema)
        pipeline.enum = list(names)
        schema.properties["params"] = Schema(
            description="The pipeline's parameters: its own params schema (GET /api/v1/pipelines).",
            any_of=[Reference(ref=ref["$ref"]) for ref in params_refs],
        )
    batch = schemas[ExecutionBatchCreate.__name__]
    assert isinstance(batch, Schema)
    assert batch.properties is not None
    items = batch.properties["executions"]
    assert isinstance(items, Schema)
    # Read as list[dict] so that an invalid item is answered, not the whole batch refused;
    # each item's shape is a single submit's.
    items.items = Reference(ref=template.format(name=ExecutionCreate.__name__))
    create = schemas[ScheduleCreate.__name__]
    patch = schemas[SchedulePatch.__name__]
    assert isinstance(create, Schema)
    assert isinstance(patch, Schema)
    create.one_of = [_only("cron", "interval_seconds"), _only("interval_seconds", "cron")]
    patch.schema_not = Schema(required=["cron", "interval_seconds"])


def _only(given: str, absent: str) -> Schema:
    """`given` is present and not null; `absent` is missing or null."""
    return Schema(
        required=[given],
        properties={given: Schema(schema_not=_NULL), absent: _NULL},
    )


def _security(openapi: OpenAPI, settings: Settings) -> None:
    """Each operation's requirement as the running configuration enforces it (app.web.security's
    rule), so Swagger UI's padlocks are on exactly the routes that need the token.

    No SPINE_API_TOKEN: no requirement and no bearer scheme (so no Authorize button). A token:
    the mutating routes; with SPINE_API_TOKEN_READS=1 the reads too. Public routes stay open.
    """
    needs_token: list[dict[str, list[str]]] = [{_BEARER: []}]
    if not settings.api_token and openapi.components is not None:
        schemes = openapi.components.security_schemes
        if isinstance(schemes, dict):
            schemes.pop(_BEARER, None)
    for path_item in (openapi.paths or {}).values():
        for method in _METHODS:
            operation: Operation | None = getattr(path_item, method, None)
            if operation is None or not operation.security:
                continue  # public: the health probes, the docs
            needed = settings.api_token and (
                method in {"post", "put", "patch", "delete"} or settings.api_token_reads
            )
            operation.security = needs_token if needed else None


def _schema(document: dict[str, Any]) -> Schema | Reference:
    """A JSON Schema dict (msgspec's) as Litestar's spec objects."""
    if "$ref" in document:
        return Reference(ref=document["$ref"])
    fields: dict[str, Any] = {}
    for key, value in document.items():
        name = _ALIASES.get(key, key)
        if name in _LISTS:
            fields[name] = [_schema(item) for item in value]
        elif name == "properties":
            fields[name] = {prop: _schema(item) for prop, item in value.items()}
        elif name == "items" and isinstance(value, dict):
            fields[name] = _schema(value)
        else:
            fields[name] = value
    return Schema(**fields)
