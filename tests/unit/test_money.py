"""money(): NUMERIC values leave the API with every digit and no trailing zeros."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.web.fields import money, to_json


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        ("12.500000", b"12.5"),
        ("100.000000", b"100"),
        ("1E+3", b"1000"),
        ("0.000000", b"0"),
        ("0E-10", b"0"),
        ("0.000001", b"0.000001"),
        ("123456789012345.678900", b"123456789012345.6789"),
        # More than the default context's 28 digits: none may be rounded away.
        (
            "13.71742100137174211248285322359396433470507544581618655692729766803840877914951989",
            b"13.71742100137174211248285322359396433470507544581618655692729766803840877914951989",
        ),
        ("99999999999999999999999999999999.000001", b"99999999999999999999999999999999.000001"),
    ],
)
def test_money_keeps_every_digit_and_drops_trailing_zeros(stored: str, sent: bytes) -> None:
    value = money(Decimal(stored))
    assert value == Decimal(stored)
    assert to_json(value) == sent
