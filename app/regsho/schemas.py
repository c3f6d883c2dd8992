"""Response types of Reg SHO's API and CLI (msgspec Structs): the published contract.

The field names are shared by the API and `spine query regsho --format json`.
Volumes and percentages are exact Decimals computed by PostgreSQL (NUMERIC;
percentages round(numeric, 4)), never floats. A short ratio counts
FINRA-reported volume only (off-exchange: TRFs, the ADF, the ORF), not
exchange volume, and it is not short interest.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import msgspec

from app.regsho.reads import DaySummary, MarketShare, Mismatch, SymbolDay
from app.web.fields import exact_number

__all__ = [
    "RATIO_NOTE",
    "RegshoDayResponse",
    "RegshoMarketResponse",
    "RegshoMarketsResponse",
    "RegshoMismatchResponse",
    "RegshoReconciliation",
    "RegshoSymbolHistoryResponse",
    "RegshoSymbolResponse",
]

RATIO_NOTE = (
    "The short ratio counts FINRA-reported volume only (trades reported to FINRA's "
    "facilities, not exchange volume), and it is not short interest."
)

Volume = Annotated[Decimal, exact_number("Shares (exact NUMERIC).", "8849044")]
VolumeOrNull = Annotated[
    Decimal | None, exact_number("Shares; null when the day is not computed.", "1", nullable=True)
]
Pct = Annotated[
    Decimal | None,
    exact_number(
        "A percentage, exact NUMERIC rounded to 4 decimals; null if 0/0.", "56.3115", nullable=True
    ),
]
RatioPct = Annotated[
    Decimal | None,
    exact_number(
        "100 x short volume / total volume, round(numeric, 4); null when total is 0. " + RATIO_NOTE,
        "56.3115",
        nullable=True,
    ),
]


class RegshoDayResponse(msgspec.Struct, kw_only=True):
    """One day: the files loaded, and short_volume_daily's totals and reconciliation."""

    date: dt.date
    markets: Annotated[list[str], msgspec.Meta(description="The files loaded that day.")]
    files: int
    symbols: Annotated[int | None, msgspec.Meta(description="null: the day is not computed.")]
    nms_symbols: int | None
    otc_symbols: int | None
    short_volume: VolumeOrNull
    total_volume: VolumeOrNull
    short_ratio_pct: RatioPct
    nms_short_volume: VolumeOrNull
    nms_total_volume: VolumeOrNull
    otc_short_volume: VolumeOrNull
    otc_total_volume: VolumeOrNull
    reconciliation: Annotated[
        str,
        msgspec.Meta(
            description="CNMS against FNQC + FNSQ + FNYX + FNRA per symbol: clean, mismatched, "
            "incomplete (a file missing) or not_computed."
        ),
    ]
    mismatched_symbols: int | None
    stale: Annotated[bool, msgspec.Meta(description="A file changed after the day was computed.")]

    @classmethod
    def from_row(cls, row: DaySummary) -> RegshoDayResponse:
        values = msgspec.structs.asdict(row)
        del values["computed_at"]
        return cls(files=len(row.markets), **values)


class RegshoSymbolResponse(msgspec.Struct, kw_only=True):
    """One symbol on one day, in one market or (`all`) the five facility files summed."""

    date: dt.date
    symbol: Annotated[str, msgspec.Meta(description="As published: case-sensitive.")]
    short_volume: Annotated[
        Decimal, exact_number("Short volume, short-exempt volume included.", "8849044")
    ]
    short_exempt_volume: Volume
    total_volume: Volume
    short_ratio_pct: RatioPct
    markets: Annotated[
        list[str],
        msgspec.Meta(description="The facility files that reported it (one market: its code)."),
    ]

    @classmethod
    def from_row(cls, row: SymbolDay) -> RegshoSymbolResponse:
        values = msgspec.structs.asdict(row)
        del values["short_ratio_avg_5d_pct"], values["ratio_change_pp"]
        return cls(**values)


class RegshoSymbolHistoryResponse(RegshoSymbolResponse, kw_only=True):
    """A symbol's day with its 5-day volume-weighted ratio and its change."""

    short_ratio_avg_5d_pct: Annotated[
        Decimal | None,
        exact_number(
            "100 x sum(short) / sum(total) over the 5 most recent loaded days up to this one "
            "(fewer when fewer are loaded; a loaded day without the symbol adds 0 to both), "
            "round(numeric, 4): volume-weighted, not a mean of ratios.",
            "52.1844",
            nullable=True,
        ),
    ]
    ratio_change_pp: Annotated[
        Decimal | None,
        exact_number(
            "This day's ratio minus the previous loaded day's, in percentage points, "
            "round(numeric, 4); null when the symbol has no row on the previous loaded day.",
            "-8.2698",
            nullable=True,
        ),
    ]

    @classmethod
    def from_row(cls, row: SymbolDay) -> RegshoSymbolHistoryResponse:
        return cls(**msgspec.structs.asdict(row))


class RegshoMarketResponse(msgspec.Struct, kw_only=True):
    """One file of a day: its volume and its share of the five facility files'."""

    market: str
    name: str
    symbols: int
    short_volume: Volume
    short_exempt_volume: Volume
    total_volume: Volume
    short_ratio_pct: RatioPct
    share_of_total_volume_pct: Pct
    share_of_short_volume_pct: Pct

    @classmethod
    def from_row(cls, row: MarketShare, name: str) -> RegshoMarketResponse:
        return cls(name=name, **msgspec.structs.asdict(row))


class RegshoMismatchResponse(msgspec.Struct, kw_only=True):
    """A symbol whose CNMS row differs from the NMS facilities' sum (CNMS minus sum)."""

    symbol: str
    cnms_short_volume: Volume
    cnms_short_exempt_volume: Volume
    cnms_total_volume: Volume
    facilities_short_volume: Volume
    facilities_short_exempt_volume: Volume
    facilities_total_volume: Volume
    short_volume_diff: Volume
    total_volume_diff: Volume

    @classmethod
    def from_row(cls, row: Mismatch) -> RegshoMismatchResponse:
        return cls(**msgspec.structs.asdict(row))


class RegshoReconciliation(msgspec.Struct, kw_only=True):
    """CNMS against FNQC + FNSQ + FNYX + FNRA, per symbol, as last computed."""

    status: str
    mismatched_symbols: int | None
    stale: bool
    mismatches: Annotated[
        list[RegshoMismatchResponse],
        msgspec.Meta(
            description="The differing symbols, largest total difference first (100 at most)."
        ),
    ]


class RegshoMarketsResponse(msgspec.Struct, kw_only=True):
    """A day's files with their shares, and its reconciliation."""

    date: dt.date
    markets: list[RegshoMarketResponse]
    reconciliation: RegshoReconciliation
