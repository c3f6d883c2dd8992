"""The dashboard's core pages: overview, executions (list and detail).

Each handler reads through the same modules as the API (`app.engine.*`)
and hands plain values to a template; charts get their numbers as a JSON data
block that the vendored uPlot draws (no inline script).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app.engine import activity, history, schedules_sql
from app.engine.models import ACTIVE, LANES, STATUSES, TERMINAL, Event
from app.engine.retries import RETRYABLE
from app.engine.workers import live_workers
from app.time_bounds import out_of_range
from app.ui.charts import chart_json
from app.web.connection import DbConn
from app.web.pagination import decode_cursor, encode_cursor

__all__ = ["PAGES", "execution_detail", "executions_list", "overview"]

PAGE_SIZE: Final = 50
CURSOR_KIND: Final = "ui-executions"
SCHEDULES_SHOWN: Final = 20


@get("/", name="ui_overview")
async def overview(conn: DbConn, state: State) -> Template:
    """Queue state by status and lane, throughput over the last hour, backlog age, workers,
    and the schedules with their next fire time."""
    after = await activity.latest_event_id(conn)  # before the reads: nothing is missed
    counts = await activity.status_counts(conn)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    since = now - dt.timedelta(minutes=59)
    per_minute = await activity.throughput(conn, since)
    minutes = [since + dt.timedelta(minutes=i) for i in range(60)]
    series = {kind: dict.fromkeys(minutes, 0) for kind in ("completed", "failed")}
    for row in per_minute:
        series[row["event_type"]][row["minute"]] = row["n"]
    chart = {
        "x": [int(m.timestamp()) for m in minutes],
        "completed": list(series["completed"].values()),
        "failed": list(series["failed"].values()),
    }
    # The live workers alone: a backend's health also probes its broker (Celery), which a
    # page view need not wait for.
    workers = await live_workers(conn, state.settings.lease_timeout)
    schedules = await schedules_sql.list_page(conn, limit=SCHEDULES_SHOWN + 1)
    return Template(
        "overview.html",
        context={
            "active": ACTIVE,
            "terminal": TERMINAL,
            "lanes": LANES,
            "counts": counts,
            "window_hours": activity.FINISHED_WINDOW_HOURS,
            "chart": chart_json(chart),
            "totals": {k: sum(v.values()) for k, v in series.items()},
            "oldest": await activity.oldest_pending(conn),
            "workers": workers,
            "schedules": schedules[:SCHEDULES_SHOWN],
            "more_schedules": len(schedules) > SCHEDULES_SHOWN,
            "after": after,
        },
    )


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise ValidationException(detail=f"`{name}` must be one of {', '.join(allowed)}")
    return value


def _moment(name: str, value: str | None) -> dt.datetime | None:
    """A `datetime-local` input (or any ISO 8601 time); without an offset it is UTC."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationException(detail=f"`{name}` is not a date and time: {value!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    why = out_of_range(moment)
    if why is not None:
        raise ValidationException(detail=f"`{name}` {why}")
    return moment.astimezone(dt.UTC)  # PostgreSQL takes offsets up to ±15:59 only


@get("/executions", name="ui_executions")
async def executions_list(
    *,
    conn: DbConn,
    request: Request[Any, Any, Any],
    status: FromQuery[str | None] = None,
    pipeline: FromQuery[str | None] = None,
    lane: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Template:
    """Newest first, filtered, one keyset page at a time; nothing is counted."""
    status_ = _choice("status", status, STATUSES)
    lane_ = _choice("lane", lane, LANES)
    pipeline_ = (pipeline or "").strip()[:100] or None
    since_, until_ = _moment("since", since), _moment("until", until)
    if cursor:
        before: tuple[dt.datetime, str] | None = decode_cursor(
            cursor[:512], CURSOR_KIND, tuple[dt.datetime, str]
        )
    else:
        before = (until_, "") if until_ else None  # created before `until`, any id
    # Where the live feed starts, read before the rows: what changes in between
    # is sent again rather than missed.
    after = await activity.latest_event_id(conn)
    searched_to = None
    if pipeline_ or lane_ or (status_ and status_ not in ACTIVE):
        # Nothing indexes these: each page looks through a bounded number of rows.
        found = await activity.browse(
            conn,
            limit=PAGE_SIZE,
            status=status_,
            pipeline=pipeline_,
            lane=lane_,
            before=before,
            since=since_,
        )
        page, next_key, searched_to = found.rows, found.next_key, found.searched_to
    else:  # newest first, or an active status: both are index ranges
        rows = await history.list_page(
            conn, limit=PAGE_SIZE + 1, status=status_, before=before, since=since_
        )
        page = rows[:PAGE_SIZE]
        next_key = (page[-1].created_at, page[-1].id) if len(rows) > PAGE_SIZE else None
    filters = {"status": status_, "pipeline": pipeline_, "lane": lane_}
    query = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    next_cursor = encode_cursor(CURSOR_KIND, *next_key) if next_key else None
    return Template(
        "executions.html",
        context={
            "rows": page,
            "statuses": STATUSES,
            "lanes": LANES,
            "pipelines": sorted(request.app.state.registry.names()),
            "filters": filters,
            "since": since or "",
            "until": until or "",
            "query": query,
            "next_cursor": next_cursor,
            "searched_to": searched_to,
            "first_page": cursor is None,
            # New rows are added live only where they belong: the first page, no time bounds.
            "live_insert": cursor is None and not until_,
            "after": after,
        },
    )


def _progress(events: list[Event]) -> dict[str, Any] | None:
    latest = next((e for e in reversed(events) if e.event_type == "progress"), None)
    return latest.payload if latest else None


def _failure(events: list[Event]) -> dict[str, Any] | None:
    return next((e.payload for e in reversed(events) if e.event_type == "failed"), None)


@get("/executions/{execution_id:str}", name="ui_execution")
async def execution_detail(
    conn: DbConn,
    execution_id: FromPath[str],
    notice: FromQuery[str | None] = None,
    problem: FromQuery[str | None] = None,
) -> Template:
    """Params, timeline, progress, error and traceback, and the Cancel and Retry buttons."""
    # Events first: the row, read after them, is as new or newer, and the live
    # feed brings any event in between. (The other order can show a timeline
    # that ends `cancelled` beside a row still `running`, and nothing corrects it.)
    events = await history.list_events(conn, execution_id[:100])
    execution = await history.get(conn, execution_id[:100])
    if execution is None:
        raise NotFoundException(detail=f"no execution with id {execution_id!r}")
    return Template(
        "execution.html",
        context={
            "e": execution,
            "events": events,
            "params": msgspec.json.format(msgspec.json.encode(execution.params)).decode(),
            "progress": _progress(events),
            "failure": _failure(events),
            "can_cancel": execution.status in ACTIVE and not execution.cancel_requested,
            "can_retry": execution.status in RETRYABLE,
            # A pending row not yet claimable: a retry's backoff or a delayed run.
            "waiting": execution.status == "pending"
            and execution.available_at > dt.datetime.now(dt.UTC),
            "notice": (notice or "")[:300],
            "problem": (problem or "")[:300],
            "after": events[-1].id if events else 0,
        },
    )


PAGES = [overview, executions_list, execution_detail]
