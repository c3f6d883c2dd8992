"""Response types of FINRA's API and CLI (msgspec Structs).

Kept apart from `app.finra.reads`' rows, like `app.otc.schemas`: the
field names here are the published contract, shared by the API and
`spine query finra --format json`. Percentages and the HHI are exact Decimals
computed by PostgreSQL (round(numeric, 4), the HHI to 2 decimals), never floats.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import msgspec

from app.finra.reads import SymbolWeek, VenueWeek, WeekSummary
from app.web.fields import exact_number

__all__ = [
    "FinraSymbolHistoryResponse",
    "FinraSymbolResponse",
    "FinraVenueHistoryResponse",
    "FinraVenueResponse",
    "FinraWeekResponse",
]

Pct = Annotated[
    Decimal | None,
    exact_number(
        "A percentage, exact NUMERIC rounded to 4 decimals; null if 0/0.", "82.1884", nullable=True
    ),
]
ChangePct = Annotated[
    Decimal | None,
    exact_number(
        "100 x (shares - shares in the previous loaded week) / those shares, rounded to 4 "
        "decimals; null in the first loaded week, when this symbol or venue has no row in "
        "the previous loaded week, or when it had 0 shares there.",
        "-15.4758",
        nullable=True,
    ),
]


class FinraWeekResponse(msgspec.Struct, kw_only=True):
    """One loaded (week, tier), ATS and non-ATS venues together: its size and the
    lastUpdateDate of its latest publication."""

    week: Annotated[dt.date, msgspec.Meta(description="The week's Monday.")]
    tier: Annotated[str, msgspec.Meta(description="FINRA's tierDescription, e.g. OTC.")]
    rows: int
    symbols: int
    venues: int
    shares: int
    trades: int
    last_update_date: dt.date
    venue_kinds: Annotated[
        list[str],
        msgspec.Meta(
            description="The venue kinds loaded for the week and tier: `ats` (FINRA's ATS "
            "file), `non_ats` (its non-ATS file), or both.",
            examples=[["ats", "non_ats"]],
        ),
    ]

    @classmethod
    def from_row(cls, row: WeekSummary) -> FinraWeekResponse:
        return cls(**msgspec.structs.asdict(row))


class FinraVenueResponse(msgspec.Struct, kw_only=True):
    """One venue (MPID) in one week, every tier of it: volume and market share."""

    week: dt.date
    mpid: str
    participant_name: str
    shares: int
    trades: int
    symbols: Annotated[int, msgspec.Meta(description="Symbols the venue traded that week.")]
    share_of_shares_pct: Pct
    share_of_trades_pct: Pct
    rank: Annotated[
        int, msgspec.Meta(description="1 = most shares that week; ties: MPID ascending.")
    ]

    @classmethod
    def from_row(cls, row: VenueWeek) -> FinraVenueResponse:
        values = msgspec.structs.asdict(row)
        del values["shares_change_pct"]
        return cls(**values)


class FinraVenueHistoryResponse(FinraVenueResponse, kw_only=True):
    """A venue's week, with the change of its shares from the previous loaded week."""

    shares_change_pct: ChangePct

    @classmethod
    def from_row(cls, row: VenueWeek) -> FinraVenueHistoryResponse:
        return cls(**msgspec.structs.asdict(row))


class FinraSymbolResponse(msgspec.Struct, kw_only=True):
    """One symbol in one week: volume, its top venue, how concentrated its venues are, and
    how much of it traded on ATS venues."""

    week: dt.date
    symbol: str
    issue_name: str
    shares: int
    trades: int
    venues: int
    top_mpid: Annotated[
        str, msgspec.Meta(description="The venue with the most shares; ties: MPID ascending.")
    ]
    top_mpid_share_pct: Pct
    hhi: Annotated[
        Decimal | None,
        exact_number(
            "Herfindahl-Hirschman index of the venues' shares of shares: sum of "
            "(100 x venue / symbol)^2, 0 to 10,000, rounded to 2 decimals; null if 0 shares.",
            "3891.17",
            nullable=True,
        ),
    ]
    ats_share_pct: Annotated[
        Decimal | None,
        exact_number(
            "100 x the symbol's shares on ATS venues / its shares on all venues (ATS and "
            "non-ATS), rounded to 4 decimals; null if 0 shares, or unless both FINRA's ATS "
            "and non-ATS files are loaded for every tier of the symbol that week.",
            "12.5031",
            nullable=True,
        ),
    ]

    @classmethod
    def from_row(cls, row: SymbolWeek) -> FinraSymbolResponse:
        values = msgspec.structs.asdict(row)
        del values["shares_change_pct"]
        return cls(**values)


class FinraSymbolHistoryResponse(FinraSymbolResponse, kw_only=True):
    """A symbol's week, with the change of its shares from the previous loaded week."""

    shares_change_pct: ChangePct

    @classmethod
    def from_row(cls, row: SymbolWeek) -> FinraSymbolHistoryResponse:
        return cls(**msgspec.structs.asdict(row))
