"""`spine schedules`: add, list, show, pause, resume, remove, run.

The same operations as /api/v1/schedules (`app.engine.scheduling`), so a
schedule added here is validated the same way and wakes the pools the same way.
"""

from __future__ import annotations

import click
import msgspec

from app import db
from app.catalog import default_registry
from app.cli.backend import cli_backend
from app.cli.common import parse_age, parse_params, with_conn
from app.cli.render import FORMAT_OPTION, emit, emit_one, one_format_option
from app.config import get_settings
from app.engine import schedules_sql as sql
from app.engine import scheduling
from app.engine.models import LANES
from app.engine.schedules import DEFAULT_MISFIRE_GRACE, Schedule, ScheduleInput
from app.errors import NotFound
from app.web.schemas import ExecutionResponse
from app.web.schemas_schedules import (
    FireResponse,
    ScheduleDetail,
    ScheduleResponse,
    SkipResponse,
)

__all__ = ["schedules_group"]


@click.group("schedules")
def schedules_group() -> None:
    """Cron and interval schedules, fired by the worker pools."""


def _seconds(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    seconds = parse_age(value)
    if seconds != int(seconds):
        raise click.BadParameter(f"{value!r}: use whole seconds", param_hint=option)
    return int(seconds)


def _when(s: Schedule) -> str:
    return f"cron {s.cron!r} ({s.timezone})" if s.cron else f"every {s.interval_seconds}s"


@schedules_group.command("add")
@click.argument("name")
@click.argument("pipeline")
@click.option("--cron", default=None, help='A 5-field cron expression, like "30 18 * * 1-5".')
@click.option(
    "--every",
    default=None,
    help="An interval, like 30s, 5m, 1h or 1d; slots are multiples of it since the Unix epoch.",
)
@click.option("-p", "--param", "params", multiple=True, help="key=value (JSON values parse).")
@click.option("--tz", default=None, help="IANA time zone of --cron [default: SPINE_MARKET_TZ].")
@click.option("--lane", type=click.Choice(LANES), default="normal", show_default=True)
@click.option(
    "--grace",
    default=None,
    help=f"misfire grace, like 5m [default: {DEFAULT_MISFIRE_GRACE}s]: after downtime "
    "the latest missed slot still fires if at most this late.",
)
@click.option("--paused", is_flag=True, help="Create it paused.")
@one_format_option()
def schedules_add(
    *,
    name: str,
    pipeline: str,
    cron: str | None,
    every: str | None,
    params: tuple[str, ...],
    tz: str | None,
    lane: str,
    grace: str | None,
    paused: bool,
    fmt: str,
) -> None:
    """Add a schedule: exactly one of --cron and --every."""
    if (cron is None) == (every is None):
        raise click.UsageError("give exactly one of --cron and --every")
    grace_seconds = _seconds(grace, "--grace")
    inp = ScheduleInput(
        name=name,
        pipeline=pipeline,
        params=parse_params(params),
        lane=lane,
        cron=cron,
        interval_seconds=_seconds(every, "--every"),
        timezone=tz,
        enabled=not paused,
        misfire_grace_seconds=DEFAULT_MISFIRE_GRACE if grace_seconds is None else grace_seconds,
    )
    registry, settings = default_registry(), get_settings()
    schedule = with_conn(lambda c: scheduling.create(c, registry, settings, inp))
    text = f"{schedule.name}: {_when(schedule)}, next {schedule.next_fire_at.isoformat()}"
    emit_one(ScheduleResponse.from_row(schedule), fmt, text)


class ScheduleLine(msgspec.Struct):
    """A row of `spine schedules list`'s table (json and csv: the API's objects)."""

    name: str
    pipeline: str
    state: str
    next_fire_at: str
    when: str


def _schedule_line(s: ScheduleResponse) -> ScheduleLine:
    when = f"cron {s.cron!r} ({s.timezone})" if s.cron else f"every {s.interval_seconds}s"
    state = "enabled" if s.enabled else "paused"
    return ScheduleLine(s.name, s.pipeline, state, s.next_fire_at.isoformat(), when)


@schedules_group.command("list")
@FORMAT_OPTION
def schedules_list(fmt: str) -> None:
    """Every schedule, by name (json and csv: the API's objects, params as JSON)."""

    async def everything(conn: db.AsyncConn) -> list[Schedule]:
        rows: list[Schedule] = []
        while page := await sql.list_page(conn, limit=500, after=rows[-1].name if rows else None):
            rows += page
        return rows

    emit(
        [ScheduleResponse.from_row(s) for s in with_conn(everything)],
        fmt,
        "no schedules",
        kind=ScheduleResponse,
        table=_schedule_line,
    )


@schedules_group.command("show")
@click.argument("name")
@click.option("--recent", default=10, show_default=True, type=click.IntRange(0, 500))
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
def schedules_show(name: str, recent: int, fmt: str) -> None:
    """One schedule as the API's JSON object, with its latest fires and skips."""

    async def go(conn: db.AsyncConn) -> ScheduleDetail:
        schedule = await sql.get(conn, name)
        if schedule is None:
            raise NotFound(f"no schedule named {name!r}")
        fires = await sql.recent_fires(conn, schedule.id, recent)
        skips = await sql.recent_skips(conn, schedule.id, recent)
        return ScheduleDetail(
            **msgspec.structs.asdict(ScheduleResponse.from_row(schedule)),
            recent_fires=[FireResponse.from_row(f) for f in fires],
            recent_skips=[SkipResponse.from_row(k) for k in skips],
        )

    emit_one(with_conn(go), fmt, "")


@schedules_group.command("pause")
@click.argument("name")
@one_format_option()
def schedules_pause(name: str, fmt: str) -> None:
    """Stop firing until resumed."""
    schedule = with_conn(lambda c: scheduling.pause(c, name))
    emit_one(ScheduleResponse.from_row(schedule), fmt, f"{name}: paused")


@schedules_group.command("resume")
@click.argument("name")
@one_format_option()
def schedules_resume(name: str, fmt: str) -> None:
    """Fire again, from the first slot after now."""
    schedule = with_conn(lambda c: scheduling.resume(c, name))
    text = f"{name}: resumed, next {schedule.next_fire_at.isoformat()}"
    emit_one(ScheduleResponse.from_row(schedule), fmt, text)


@schedules_group.command("remove")
@click.argument("name")
@one_format_option()
def schedules_remove(name: str, fmt: str) -> None:
    """Delete the schedule and its fire history (its executions stay)."""
    schedule = with_conn(lambda c: scheduling.remove(c, name))
    emit_one(ScheduleResponse.from_row(schedule), fmt, f"{name}: removed")


@schedules_group.command("run")
@click.argument("name")
@one_format_option()
def schedules_run(name: str, fmt: str) -> None:
    """Fire once now, as a manual trigger; prints the execution id."""
    registry, settings, backend = default_registry(), get_settings(), cli_backend()
    execution = with_conn(
        lambda c: scheduling.run_now(c, registry, settings, name, backend=backend)
    )
    emit_one(ExecutionResponse.from_row(execution), fmt, execution.id)
