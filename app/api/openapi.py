"""What the OpenAPI document says about request bodies that Litestar cannot infer.

Litestar does not carry msgspec's `forbid_unknown_fields` into the schema, and
`params` is a free-form object to it. The API refuses unknown fields in both
(400 / 422), so the document says so: `additionalProperties: false` on
ExecutionCreate, and `params` is any of the registered pipelines' params
schemas (msgspec's own, which are closed objects too). Clients and fuzzers
then know that an extra field is an error, not something ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPI, Reference, Schema

from app.engine.registry import Registry

__all__ = ["refuse_unknown_fields"]

_ALIASES = Schema().field_aliases()
_LISTS = {"all_of", "any_of", "one_of", "prefix_items"}


def refuse_unknown_fields(openapi: OpenAPI, registry: Registry) -> None:
    """Close ExecutionCreate and describe `params` as one of the pipelines' params schemas."""
    assert openapi.components is not None
    assert isinstance(openapi.components.schemas, dict)
    schemas = openapi.components.schemas
    create = schemas["ExecutionCreate"]
    create.additional_properties = False
    types = list(dict.fromkeys(p.params for p in registry))
    refs, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    for name, component in components.items():
        schema = _schema(component)
        assert isinstance(schema, Schema)  # msgspec's components are objects, never a $ref
        schemas[name] = schema
    assert create.properties is not None
    params = create.properties["params"]
    assert isinstance(params, Schema)
    params.type = None
    params.additional_properties = None
    params.any_of = [Reference(ref=ref["$ref"]) for ref in refs]


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
