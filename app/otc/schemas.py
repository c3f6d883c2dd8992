"""Response types of OTC's API and CLI: daily metrics, trades, loads and rejects.

Money (prices, notional, VWAP) is an exact Decimal sent as a JSON number with
every digit (see `app.web.fields`); the CLI's `--format json` prints these
same objects.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, cast

import msgspec

from app.otc.load_reads import LoadRow, Reject
from app.otc.reads import DailyMetric, Trade
from app.web.fields import MONEY_NOTE, Money, exact_number, money, with_example

__all__ = ["DailyMetricResponse", "LoadResponse", "RejectResponse", "TradeResponse"]


class DailyMetricResponse(msgspec.Struct, kw_only=True):
    """One symbol's metrics for one trade date (computed exactly in NUMERIC)."""

    symbol: Annotated[str, with_example("ACME")]
    date: Annotated[dt.date, with_example("2026-01-06")]
    trade_count: Annotated[int, with_example(292)]
    total_volume: Annotated[int, with_example(355400, "Shares: the sum of trade sizes.")]
    total_notional: Annotated[Decimal, exact_number(MONEY_NOTE, "4446282.71")]
    vwap: Annotated[
        Decimal, exact_number("total_notional / total_volume. " + MONEY_NOTE, "12.510644654")
    ]
    high_price: Annotated[Decimal, exact_number(MONEY_NOTE, "12.62")]
    low_price: Annotated[Decimal, exact_number(MONEY_NOTE, "12.39")]

    @classmethod
    def from_row(cls, row: DailyMetric) -> DailyMetricResponse:
        return cls(
            symbol=row.symbol,
            date=row.date,
            trade_count=row.trade_count,
            total_volume=row.total_volume,
            total_notional=money(row.total_notional),
            vwap=money(row.vwap),
            high_price=money(row.high_price),
            low_price=money(row.low_price),
        )


class TradeResponse(msgspec.Struct, kw_only=True):
    """One normalized OTC trade (its latest values, corrections applied)."""

    trade_id: Annotated[str, with_example("T20260106-0000001")]
    symbol: Annotated[str, with_example("ACME")]
    trade_date: Annotated[
        dt.date, with_example("2026-01-06", "executed_at's calendar date in the market time zone.")
    ]
    executed_at: Annotated[dt.datetime, with_example("2026-01-06T14:30:01.250000Z")]
    price: Money
    size: Annotated[int, with_example(100, "Shares.")]
    side: Annotated[Literal["B", "S"], with_example("B", "B(uy) or S(ell).")]
    venue: Annotated[str, with_example("OTCN", "The reporting venue (4 letters).")]

    @classmethod
    def from_row(cls, row: Trade) -> TradeResponse:
        return cls(
            trade_id=row.trade_id,
            symbol=row.symbol,
            trade_date=row.trade_date,
            executed_at=row.executed_at,
            price=money(row.price),
            size=row.size,
            side=cast(Literal["B", "S"], row.side),  # the table's CHECK constraint
            venue=row.venue,
        )


class LoadResponse(msgspec.Struct, kw_only=True):
    """One file loaded by one otc_ingest execution; the counts once it finished.

    rows_read = inserted + duplicates + corrections + rejected.
    """

    id: Annotated[int, msgspec.Meta(examples=[1])]
    execution_id: Annotated[str, with_example("0f9c2a4e-8d1b-4c55-9a3e-2b7d1f0c6e11")]
    source_file: Annotated[str, with_example("otc_sample.csv", "Relative to SPINE_DATA_DIR.")]
    file_bytes: Annotated[int, with_example(259301)]
    file_sha256: str | None
    started_at: Annotated[dt.datetime, with_example("2026-01-06T14:30:00.5Z")]
    finished_at: Annotated[
        dt.datetime | None, msgspec.Meta(description="Null while the load runs.")
    ]
    rows_read: Annotated[int | None, with_example(4016)]
    inserted: Annotated[int | None, with_example(4001)]
    duplicates: Annotated[int | None, with_example(1)]
    corrections: Annotated[int | None, with_example(2)]
    rejected: Annotated[
        int | None, with_example(12, "Lines kept with their reason: GET .../loads/{id}/rejects.")
    ]

    @classmethod
    def from_row(cls, row: LoadRow) -> LoadResponse:
        return cls(**msgspec.structs.asdict(row))


class RejectResponse(msgspec.Struct, kw_only=True):
    """A line of a loaded file that was not a valid trade, and why."""

    line_no: Annotated[int, with_example(4006, "Line number in the file (the header is line 1).")]
    reason: Annotated[
        str,
        msgspec.Meta(
            description="The first rule the line breaks, e.g. bad_price, wrong_column_count.",
            examples=["bad_price"],
        ),
    ]
    line: Annotated[
        str | None,
        with_example(
            "X-BAD-01,ACME,2026-01-05T15:00:00Z,abc,100,B,OTCN",
            "The line as read, cut to 300 characters (then `…`).",
        ),
    ]

    @classmethod
    def from_row(cls, row: Reject) -> RejectResponse:
        return cls(line_no=row.line_no, reason=row.reason, line=row.line)
