"""The API's response class: JSON with Decimals as exact numbers.

Litestar's own encoder writes a Decimal as a JSON string; money here is a
number with every digit (see `schemas.to_json`). The app uses this class for
handlers that return data, and `paged()` for the listings it builds.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Response
from litestar.serialization import default_serializer
from litestar.types import Serializer

__all__ = ["ExactJSONResponse"]

T = TypeVar("T")
_DEFAULT = msgspec.json.Encoder(enc_hook=default_serializer, decimal_format="number")


class ExactJSONResponse(Response[T]):
    """A Response whose JSON bodies carry Decimals as exact JSON numbers."""

    def render(
        self, content: Any, media_type: str, enc_hook: Serializer = default_serializer
    ) -> bytes:
        if isinstance(content, bytes | str) or "json" not in media_type:
            return super().render(content, media_type, enc_hook)
        encoder = (
            _DEFAULT
            if enc_hook is default_serializer
            else msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")
        )
        return encoder.encode(content)
