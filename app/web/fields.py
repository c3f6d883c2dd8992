"""Field helpers shared by the API's schemas: exact numbers, examples, the JSON encoder.

Money and analytics are NUMERIC in the database; they stay Decimals here and
leave as JSON numbers written with every digit (`to_json`, msgspec's
`decimal_format="number"`), never through a double. The API and the CLI's
`--format json` both encode with `to_json`.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Annotated

import msgspec

__all__ = ["MONEY_NOTE", "Money", "exact_number", "money", "to_json", "with_example"]

MONEY_NOTE = (
    "Exact: NUMERIC in the database, a JSON number with every digit here (never rounded "
    "through a double); parse it as a decimal (e.g. Python `json.loads(..., "
    "parse_float=Decimal)`) to keep it exact."
)


def exact_number(
    description: str, example: str = "12.5", *, nullable: bool = False
) -> msgspec.Meta:
    """A Decimal sent as a JSON number: the OpenAPI type (Litestar reads `extra`; without it a
    Decimal is documented as a string), and no Litestar import here (the CLI uses these types).

    `nullable` for `Decimal | None`: the union's branches are documented as a number or null.
    """
    number = {"type": "number", "format": "decimal"}
    extra = {"oneOf": [number, {"type": "null"}]} if nullable else number
    return msgspec.Meta(
        description=description,
        extra_json_schema={
            "description": description,
            "examples": [float(example)],  # a document example, encoded by Litestar
            "extra": extra,
        },
    )


def with_example(example: object, description: str | None = None) -> msgspec.Meta:
    """A field's example (Swagger UI and ReDoc build response examples from them)."""
    return msgspec.Meta(examples=[example], description=description)


Money = Annotated[Decimal, exact_number(MONEY_NOTE)]
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_EXACT = decimal.Context(prec=decimal.MAX_PREC)


def money(value: Decimal | int) -> Decimal:
    """NUMERIC -> Decimal without trailing zeros or an exponent (`12.500000` -> `12.5`).

    Every digit is kept: under the default context (28 digits) `normalize`
    would round a long VWAP.
    """
    exact = Decimal(value).normalize(_EXACT)
    # Only a whole number can come out with a positive exponent (1E+2); comparing
    # is ~4x cheaper than as_tuple(), and a GET of 20 metrics calls this 80 times.
    if exact == exact.to_integral_value() and exact.as_tuple().exponent > 0:  # type: ignore[operator]
        return exact.quantize(Decimal(1), context=_EXACT)
    return exact


def to_json(value: object) -> bytes:
    """JSON with Decimals as exact numbers: what the API sends and `--format json` prints."""
    return _ENCODER.encode(value)
