"""Response types of the FTD API and CLI (msgspec Structs): the published contract.

Kept apart from `app.ftd.reads`' rows, like the other domains: the field
names here are the API's and `spine query ftd --format json`'s. Prices and
values are exact Decimals computed by PostgreSQL (quantity x price on NUMERIC),
never floats, and null when the SEC gave no price.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import msgspec

from app.ftd.reads import CusipRun, Fail, PeriodSummary, PersistentFail, SymbolDay
from app.web.fields import exact_number

__all__ = [
    "FtdCusipRunResponse",
    "FtdFailResponse",
    "FtdPeriodResponse",
    "FtdPersistentResponse",
    "FtdSymbolDayResponse",
]

Value = Annotated[
    Decimal | None,
    exact_number(
        "Quantity x price, exact; null when the SEC gave no price (`.`).",
        "89739861.90",
        nullable=True,
    ),
]


class FtdPeriodResponse(msgspec.Struct, kw_only=True):
    """One loaded half-month: what is stored, and what its file's trailers stated."""

    period: Annotated[str, msgspec.Meta(description="2022-12a: the 1st-14th; b: 15th-end.")]
    first_date: dt.date
    last_date: dt.date
    settlement_dates: int
    rows: int
    securities: Annotated[int, msgspec.Meta(description="Distinct CUSIPs.")]
    total_quantity: int
    trailer_record_count: int
    trailer_total_quantity: int
    rejected: Annotated[int, msgspec.Meta(description="Lines of the file rejected.")]
    trailer_matches: Annotated[
        bool,
        msgspec.Meta(
            description="The stored rows and their total quantity equal the trailers' "
            "(false when lines were rejected)."
        ),
    ]
    load_id: int
    loaded_at: dt.datetime

    @classmethod
    def from_row(cls, row: PeriodSummary) -> FtdPeriodResponse:
        return cls(**msgspec.structs.asdict(row))


class FtdFailResponse(msgspec.Struct, kw_only=True):
    """One security's fails on one settlement date, as published."""

    settlement_date: dt.date
    cusip: str
    symbol: Annotated[str, msgspec.Meta(description="As published (case kept).")]
    description: str
    quantity: int
    price: Annotated[
        Decimal | None,
        exact_number(
            "The previous day's closing price as published; null for `.`.", "50.70", nullable=True
        ),
    ]
    fail_value: Value

    @classmethod
    def from_row(cls, row: Fail) -> FtdFailResponse:
        return cls(**msgspec.structs.asdict(row))


class FtdSymbolDayResponse(msgspec.Struct, kw_only=True):
    """A symbol on one settlement date (every CUSIP published under it that day)."""

    settlement_date: dt.date
    symbol: str
    cusips: list[str]
    description: str
    quantity: Annotated[int, msgspec.Meta(description="Summed over its CUSIPs.")]
    fail_value: Annotated[
        Decimal | None,
        exact_number(
            "Sum of quantity x price over its CUSIPs; null when a price is unknown.",
            "3743980.50",
            nullable=True,
        ),
    ]
    consecutive_days: Annotated[
        int,
        msgspec.Meta(
            description="Consecutive settlement dates, counting back from and including this "
            "one, the symbol was on the list; the dates are those present anywhere in the "
            "loaded data (weekends, holidays and gaps between loaded periods do not break "
            "a run)."
        ),
    ]

    @classmethod
    def from_row(cls, row: SymbolDay) -> FtdSymbolDayResponse:
        return cls(**msgspec.structs.asdict(row))


class FtdPersistentResponse(msgspec.Struct, kw_only=True):
    """A security that failed on at least `min_days` of a half-month's settlement dates."""

    period: str
    cusip: str
    symbol: Annotated[str, msgspec.Meta(description="Its latest symbol in the period.")]
    description: str
    days: Annotated[int, msgspec.Meta(description="Settlement dates it failed on.")]
    period_days: Annotated[int, msgspec.Meta(description="The period's settlement dates.")]
    total_quantity: int
    max_quantity: int
    max_value: Annotated[
        Decimal | None,
        exact_number(
            "The largest quantity x price of its days; null when no price is known.",
            "5533231.92",
            nullable=True,
        ),
    ]

    @classmethod
    def from_row(cls, row: PersistentFail) -> FtdPersistentResponse:
        return cls(**msgspec.structs.asdict(row))


class FtdCusipRunResponse(msgspec.Struct, kw_only=True):
    """One run of a (symbol, description) in a CUSIP's settlement dates."""

    cusip: str
    symbol: str
    description: str
    first_date: dt.date
    last_date: dt.date
    settlement_dates: int

    @classmethod
    def from_row(cls, row: CusipRun) -> FtdCusipRunResponse:
        return cls(**msgspec.structs.asdict(row))
