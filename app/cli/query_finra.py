"""`spine query finra`: FINRA weeks, venue market share and symbol concentration.

The JSON output is the API's objects (app.api.schemas_finra), field for field.
"""

from __future__ import annotations

from datetime import date

import click

from app.api.schemas_finra import (
    FinraSymbolHistoryResponse,
    FinraSymbolResponse,
    FinraVenueHistoryResponse,
    FinraVenueResponse,
    FinraWeekResponse,
)
from app.cli.common import parse_date, with_conn
from app.cli.render import emit
from app.db import AsyncConn
from app.errors import NotFound
from app.finra import reads

__all__ = ["finra_group"]

_EVERYTHING = 100_000  # a CLI listing is one page

_WEEK_OPTION = click.option(
    "--week", default=None, help="The week's Monday (YYYY-MM-DD); default: the latest loaded."
)
_FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)


@click.group("finra")
def finra_group() -> None:
    """Read FINRA OTC Transparency weeks (load them with finra_weekly_ingest)."""


async def _week(conn: AsyncConn, text: str | None) -> date:
    """The week asked for (it must be loaded), else the latest loaded week."""
    week = parse_date(text)
    if week is None:
        week = await reads.latest_week(conn)
        if week is None:
            raise NotFound("no FINRA week is loaded (run finra_weekly_ingest)")
    elif not await reads.week_loaded(conn, week):
        raise NotFound(f"no FINRA data loaded for the week of {week}")
    return week


@finra_group.command("weeks")
@_FORMAT_OPTION
def finra_weeks(fmt: str) -> None:
    """Each loaded (week, tier): rows, symbols, venues, shares, trades."""
    rows = with_conn(lambda c: reads.weeks(c, limit=_EVERYTHING))
    emit(
        [FinraWeekResponse.from_row(r) for r in rows],
        fmt,
        "no FINRA week is loaded",
        kind=FinraWeekResponse,
    )


@finra_group.command("venues")
@_WEEK_OPTION
@click.option("--limit", type=click.IntRange(1, _EVERYTHING), default=100, show_default=True)
@_FORMAT_OPTION
def finra_venues(week: str | None, limit: int, fmt: str) -> None:
    """A week's venues by shares, with their market share and rank."""

    async def go(conn: AsyncConn) -> list[reads.VenueWeek]:
        return await reads.venues(conn, await _week(conn, week), limit=limit)

    rows = with_conn(go)
    emit([FinraVenueResponse.from_row(r) for r in rows], fmt, "no venues", kind=FinraVenueResponse)


@finra_group.command("symbols")
@_WEEK_OPTION
@click.option("--sort", type=click.Choice(["shares", "trades", "hhi"]), default="shares")
@click.option("--mpid", default=None, help="Only symbols this venue traded.")
@click.option("--min-shares", type=click.IntRange(0), default=None)
@click.option("--limit", type=click.IntRange(1, _EVERYTHING), default=100, show_default=True)
@_FORMAT_OPTION
def finra_symbols(
    *, week: str | None, sort: str, mpid: str | None, min_shares: int | None, limit: int, fmt: str
) -> None:
    """A week's symbols by shares (or trades, or HHI): top venue and concentration."""

    async def go(conn: AsyncConn) -> list[reads.SymbolWeek]:
        return await reads.symbols(
            conn,
            await _week(conn, week),
            mpid=mpid.upper() if mpid else None,
            min_shares=min_shares,
            sort=sort,  # type: ignore[arg-type]  # click.Choice checked it
            limit=limit,
        )

    rows = with_conn(go)
    emit(
        [FinraSymbolResponse.from_row(r) for r in rows], fmt, "no symbols", kind=FinraSymbolResponse
    )


@finra_group.command("symbol")
@click.argument("symbol")
@_WEEK_OPTION
@_FORMAT_OPTION
def finra_symbol(symbol: str, week: str | None, fmt: str) -> None:
    """One symbol in every loaded week (or --week), with the change from the week before."""
    only = parse_date(week)
    rows = with_conn(lambda c: reads.symbol_history(c, symbol.upper(), limit=_EVERYTHING))
    rows = [r for r in rows if only is None or r.week == only]
    emit(
        [FinraSymbolHistoryResponse.from_row(r) for r in rows],
        fmt,
        f"no rows for {symbol}",
        kind=FinraSymbolHistoryResponse,
    )


@finra_group.command("venue")
@click.argument("mpid")
@_WEEK_OPTION
@_FORMAT_OPTION
def finra_venue(mpid: str, week: str | None, fmt: str) -> None:
    """One venue (MPID) in every loaded week (or --week): share, rank and change."""
    only = parse_date(week)
    rows = with_conn(lambda c: reads.venue_history(c, mpid.upper(), limit=_EVERYTHING))
    rows = [r for r in rows if only is None or r.week == only]
    emit(
        [FinraVenueHistoryResponse.from_row(r) for r in rows],
        fmt,
        f"no rows for {mpid}",
        kind=FinraVenueHistoryResponse,
    )
