"""FINRA's commands, added to the CLI's `query` group: `spine query finra ...`.

Weeks, venue market share and symbol concentration. The JSON output is
FINRA's response objects (`app.finra.schemas`), the API's own, field for field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar, get_args

import click

from app.cli.common import with_conn
from app.cli.render import FORMAT_OPTION, emit
from app.db import AsyncConn
from app.errors import NotFound
from app.finra import keys, reads
from app.finra.reads import SymbolSort
from app.finra.schemas import (
    FinraSymbolHistoryResponse,
    FinraSymbolResponse,
    FinraVenueHistoryResponse,
    FinraVenueResponse,
    FinraWeekResponse,
)

__all__ = ["COMMANDS", "finra_group"]

_EVERYTHING = 100_000  # a CLI listing is one page
T = TypeVar("T")


def _checked(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """A click callback applying one of app.finra.keys' rules (the API's) to a value."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


_WEEK_OPTION = click.option(
    "--week",
    default=None,
    callback=_checked(keys.monday),
    help="The week's Monday (YYYY-MM-DD); default: the latest loaded.",
)


@click.group("finra")
def finra_group() -> None:
    """Read FINRA OTC Transparency weeks (load them with finra_weekly_ingest)."""


async def _week(conn: AsyncConn, week: date | None) -> date:
    """The week asked for (it must be loaded), else the latest loaded week."""
    if week is None:
        week = await reads.latest_week(conn)
        if week is None:
            raise NotFound("no FINRA week is loaded (run finra_weekly_ingest)")
    elif not await reads.week_loaded(conn, week):
        raise NotFound(f"no FINRA data loaded for the week of {week}")
    return week


def _only(rows: list[T], week: date | None, week_of: Callable[[T], date], what: str) -> list[T]:
    """A history's rows (of `week` alone when given); nothing at all is NotFound, as in the API."""
    if not rows:
        raise NotFound(f"no FINRA data for {what}")
    if week is None:
        return rows
    rows = [r for r in rows if week_of(r) == week]
    if not rows:
        raise NotFound(f"no FINRA data for {what} in the week of {week}")
    return rows


@finra_group.command("weeks")
@FORMAT_OPTION
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
@FORMAT_OPTION
def finra_venues(week: date | None, limit: int, fmt: str) -> None:
    """A week's venues by shares, with their market share and rank."""

    async def go(conn: AsyncConn) -> list[reads.VenueWeek]:
        return await reads.venues(conn, await _week(conn, week), limit=limit)

    rows = with_conn(go)
    emit([FinraVenueResponse.from_row(r) for r in rows], fmt, "no venues", kind=FinraVenueResponse)


@finra_group.command("symbols")
@_WEEK_OPTION
@click.option("--sort", type=click.Choice(get_args(SymbolSort)), default="shares")
@click.option(
    "--mpid", default=None, callback=_checked(keys.mpid_key), help="Only symbols this venue traded."
)
@click.option("--min-shares", type=click.IntRange(0), default=None)
@click.option("--limit", type=click.IntRange(1, _EVERYTHING), default=100, show_default=True)
@FORMAT_OPTION
def finra_symbols(
    *,
    week: date | None,
    sort: SymbolSort,
    mpid: str | None,
    min_shares: int | None,
    limit: int,
    fmt: str,
) -> None:
    """A week's symbols by shares (or trades, or HHI): top venue and concentration."""

    async def go(conn: AsyncConn) -> list[reads.SymbolWeek]:
        return await reads.symbols(
            conn,
            await _week(conn, week),
            mpid=mpid,
            min_shares=min_shares,
            sort=sort,
            limit=limit,
        )

    rows = with_conn(go)
    emit(
        [FinraSymbolResponse.from_row(r) for r in rows], fmt, "no symbols", kind=FinraSymbolResponse
    )


@finra_group.command("symbol")
@click.argument("symbol", callback=_checked(keys.symbol_key))
@_WEEK_OPTION
@FORMAT_OPTION
def finra_symbol(symbol: str, week: date | None, fmt: str) -> None:
    """One symbol in every loaded week (or --week), with the change from the previous
    loaded week."""
    rows = with_conn(lambda c: reads.symbol_history(c, symbol, limit=_EVERYTHING))
    rows = _only(rows, week, lambda r: r.week, f"symbol {symbol!r}")
    emit(
        [FinraSymbolHistoryResponse.from_row(r) for r in rows],
        fmt,
        "",
        kind=FinraSymbolHistoryResponse,
    )


@finra_group.command("venue")
@click.argument("mpid", callback=_checked(keys.mpid_key))
@_WEEK_OPTION
@FORMAT_OPTION
def finra_venue(mpid: str, week: date | None, fmt: str) -> None:
    """One venue (MPID) in every loaded week (or --week): share, rank and the change from the
    previous loaded week."""
    rows = with_conn(lambda c: reads.venue_history(c, mpid, limit=_EVERYTHING))
    rows = _only(rows, week, lambda r: r.week, f"venue {mpid!r}")
    emit(
        [FinraVenueHistoryResponse.from_row(r) for r in rows],
        fmt,
        "",
        kind=FinraVenueHistoryResponse,
    )


COMMANDS = {"query": [finra_group]}
