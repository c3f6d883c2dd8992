"""FTD's commands, added to the CLI's `query` group: `spine query ftd ...`.

Periods, a date's fails, a symbol's runs, a period's persistent fails, a
CUSIP's symbols. The JSON output is the API's objects (`app.ftd.schemas`),
field for field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import TypeVar, get_args

import click

from app.cli.common import with_conn
from app.cli.render import FORMAT_OPTION, emit, limit_option
from app.db import AsyncConn
from app.errors import NotFound
from app.ftd import keys, reads
from app.ftd.reads import FailSort
from app.ftd.schemas import (
    FtdCusipRunResponse,
    FtdFailResponse,
    FtdPeriodResponse,
    FtdPersistentResponse,
    FtdSymbolDayResponse,
)

__all__ = ["COMMANDS", "ftd_group"]

_EVERYTHING = 100_000  # a CLI listing is one page
T = TypeVar("T")


def _checked(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """A click callback applying one of app.ftd.keys' rules (the API's) to a value."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


def _amount(text: str) -> Decimal:
    """A non-negative decimal amount, exact (the API's `min_value`)."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} is not an amount of 0 or more")
    return value


_DATE_OPTION = click.option(
    "--date",
    "day",
    default=None,
    callback=_checked(date.fromisoformat),
    help="A settlement date (YYYY-MM-DD); default: the latest loaded.",
)
_PERIOD_OPTION = click.option(
    "--period",
    default=None,
    callback=_checked(keys.period_key),
    help="A half-month (2022-12a: the 1st-14th, 2022-12b: the 15th-end); default: the latest.",
)


@click.group("ftd")
def ftd_group() -> None:
    """Read SEC fails-to-deliver half-months (load them with sec_ftd_ingest)."""


@ftd_group.command("periods")
@FORMAT_OPTION
def ftd_periods(fmt: str) -> None:
    """Each loaded half-month: rows, securities, total quantity, and its trailers."""
    rows = with_conn(lambda c: reads.periods(c, limit=_EVERYTHING + 1))
    emit(
        [FtdPeriodResponse.from_row(r) for r in rows],
        fmt,
        "no fails-to-deliver period is loaded",
        kind=FtdPeriodResponse,
        limit=_EVERYTHING,
    )


@ftd_group.command("fails")
@_DATE_OPTION
@click.option("--sort", type=click.Choice(get_args(FailSort)), default="value")
@click.option(
    "--min-value",
    default=None,
    callback=_checked(_amount),
    help="Only fails worth at least this (quantity x price, exact).",
)
@limit_option(20, _EVERYTHING)
@FORMAT_OPTION
def ftd_fails(
    *, day: date | None, sort: FailSort, min_value: Decimal | None, limit: int, fmt: str
) -> None:
    """A settlement date's fails by value (quantity x price) or quantity."""

    async def go(conn: AsyncConn) -> list[reads.Fail]:
        chosen = day or await reads.latest_date(conn)
        if chosen is None:
            raise NotFound("no fails-to-deliver period is loaded (run sec_ftd_ingest)")
        if not await reads.date_loaded(conn, chosen):
            raise NotFound(f"no SEC fails-to-deliver loaded for the settlement date {chosen}")
        return await reads.fails(conn, chosen, sort=sort, min_value=min_value, limit=limit + 1)

    rows = with_conn(go)
    emit(
        [FtdFailResponse.from_row(r) for r in rows],
        fmt,
        "no fails",
        kind=FtdFailResponse,
        limit=limit,
    )


@ftd_group.command("symbol")
@click.argument("symbol", callback=_checked(keys.SYMBOLS.key))
@_DATE_OPTION
@_PERIOD_OPTION
@FORMAT_OPTION
def ftd_symbol(symbol: str, day: date | None, period: str | None, fmt: str) -> None:
    """A symbol (as published) on each settlement date it failed (or --date, or --period),
    with its run of consecutive settlement dates."""
    start, end = (day, day) if day else keys.period_dates(period) if period else (None, None)

    async def go(conn: AsyncConn) -> list[reads.SymbolDay]:
        rows = await reads.symbol_history(conn, symbol, start=start, end=end, limit=_EVERYTHING + 1)
        if not rows:
            where = f" on {day}" if day else f" in {period}" if period else ""
            raise NotFound(f"no SEC fails-to-deliver for symbol {symbol!r}{where}")
        return rows

    rows = with_conn(go)
    emit(
        [FtdSymbolDayResponse.from_row(r) for r in rows],
        fmt,
        "",
        kind=FtdSymbolDayResponse,
        limit=_EVERYTHING,
    )


@ftd_group.command("persistent")
@_PERIOD_OPTION
@click.option("--min-days", type=click.IntRange(1, 31), default=5, show_default=True)
@limit_option(50, _EVERYTHING)
@FORMAT_OPTION
def ftd_persistent(period: str | None, min_days: int, limit: int, fmt: str) -> None:
    """A half-month's securities that failed on at least --min-days of its settlement dates."""

    async def go(conn: AsyncConn) -> list[reads.PersistentFail]:
        chosen = period or await reads.latest_period(conn)
        if chosen is None:
            raise NotFound("no fails-to-deliver period is loaded (run sec_ftd_ingest)")
        if not await reads.period_loaded(conn, chosen):
            raise NotFound(f"no SEC fails-to-deliver loaded for the period {chosen}")
        first, last = keys.period_dates(chosen)
        return await reads.persistent(conn, chosen, first, last, min_days=min_days, limit=limit + 1)

    rows = with_conn(go)
    emit(
        [FtdPersistentResponse.from_row(r) for r in rows],
        fmt,
        "no security failed that often",
        kind=FtdPersistentResponse,
        limit=limit,
    )


@ftd_group.command("cusip")
@click.argument("cusip", callback=_checked(keys.cusip_key))
@FORMAT_OPTION
def ftd_cusip(cusip: str, fmt: str) -> None:
    """Every symbol and description a CUSIP has had, with its date range."""

    async def go(conn: AsyncConn) -> list[reads.CusipRun]:
        rows = await reads.cusip_history(conn, cusip)
        if not rows:
            raise NotFound(f"no SEC fails-to-deliver for CUSIP {cusip!r}")
        return rows

    rows = with_conn(go)
    emit(
        [FtdCusipRunResponse.from_row(r) for r in rows],
        fmt,
        "",
        kind=FtdCusipRunResponse,
        limit=_EVERYTHING,
    )


COMMANDS = {"query": [ftd_group]}
