"""Schedules: create, replace, change, pause, resume, run now, remove, inspect.

Thin handlers over `app.engine.scheduling`, which validates (422s naming the
field), takes the next slot from the database clock and wakes the pools.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from app.api.routes import MUTATING, READS, DbConn
from app.engine import schedules_sql as sql
from app.engine import scheduling
from app.errors import NotFound
from app.web.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged
from app.web.problems import problem_responses
from app.web.schemas_schedules import (
    ExecutionResponse,
    FireResponse,
    ScheduleCreate,
    ScheduleDetail,
    SchedulePatch,
    ScheduleResponse,
    SkipResponse,
)
from app.web.strict import check_params

__all__ = ["SchedulesController"]

CURSOR_KIND = "schedules"
ScheduleName = Annotated[str, PathParameter(description="The schedule's name.", max_length=100)]


class SchedulesController(Controller):
    path = "/schedules"
    tags = ["schedules"]

    @get(
        "/",
        operation_id="listSchedules",
        summary="List schedules",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 503),
    )
    async def list_schedules(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[list[ScheduleResponse]]:
        """Every schedule by name; keyset-paginated."""
        after = decode_cursor(cursor, CURSOR_KIND, tuple[str])[0] if cursor else None
        rows = await sql.list_page(conn, limit=limit + 1, after=after)
        return paged(
            request,
            rows,
            limit,
            kind=CURSOR_KIND,
            key=lambda s: (s.name,),
            to_response=ScheduleResponse.from_row,
        )

    @post(
        "/",
        status_code=201,
        operation_id="createSchedule",
        summary="Create a schedule",
        security=MUTATING,
        responses=problem_responses(400, 401, 409, 413, 422, 503),
    )
    async def create_schedule(
        self, data: JSONBody[ScheduleCreate], conn: DbConn, state: State
    ) -> ScheduleResponse:
        """A new schedule (201); 409 when the name is taken, 422 for invalid timing or params."""
        check_params(state.registry, data.pipeline, data.params)
        schedule = await scheduling.create(conn, state.registry, state.settings, data.to_input())
        return ScheduleResponse.from_row(schedule)

    @put(
        "/",
        status_code=200,
        operation_id="putSchedule",
        summary="Create or replace a schedule by name",
        security=MUTATING,
        responses={
            201: ResponseSpec(data_container=ScheduleResponse, description="Created."),
            **problem_responses(400, 401, 413, 422, 503),
        },
    )
    async def put_schedule(
        self, data: JSONBody[ScheduleCreate], conn: DbConn, state: State
    ) -> Response[ScheduleResponse]:
        """Declarative: the named schedule becomes exactly this body (201 if new, else 200)."""
        check_params(state.registry, data.pipeline, data.params)
        schedule, created = await scheduling.replace(
            conn, state.registry, state.settings, data.to_input()
        )
        return Response(ScheduleResponse.from_row(schedule), status_code=201 if created else 200)

    @get(
        "/{name:str}",
        operation_id="getSchedule",
        summary="Get a schedule with its latest executions",
        security=READS,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def get_schedule(
        self,
        conn: DbConn,
        name: ScheduleName,
        recent: Annotated[
            int, QueryParameter(ge=0, le=500, description="How many latest fires to show.")
        ] = 10,
    ) -> ScheduleDetail:
        """The schedule, its next slot, its latest fires (with their statuses) and skips."""
        schedule = await sql.get(conn, name)
        if schedule is None:
            raise NotFound(f"no schedule named {name!r}")
        fires = await sql.recent_fires(conn, schedule.id, recent)
        skips = await sql.recent_skips(conn, schedule.id, recent)
        base = ScheduleResponse.from_row(schedule)
        return ScheduleDetail(
            **{f: getattr(base, f) for f in base.__struct_fields__},
            recent_fires=[FireResponse.from_row(f) for f in fires],
            recent_skips=[SkipResponse.from_row(s) for s in skips],
        )

    @patch(
        "/{name:str}",
        operation_id="patchSchedule",
        summary="Change some fields of a schedule",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 413, 422, 503),
    )
    async def patch_schedule(
        self, data: JSONBody[SchedulePatch], conn: DbConn, name: ScheduleName, state: State
    ) -> ScheduleResponse:
        """Only the given fields change; a new timing recomputes the next slot."""
        if not isinstance(data.params, msgspec.UnsetType):
            pipeline = data.pipeline
            if isinstance(pipeline, msgspec.UnsetType):
                current = await sql.get(conn, name)
                pipeline = current.pipeline if current is not None else ""
            check_params(state.registry, pipeline, data.params)
        schedule = await scheduling.patch(
            conn, state.registry, state.settings, name, data.changes()
        )
        return ScheduleResponse.from_row(schedule)

    @delete(
        "/{name:str}",
        status_code=200,
        operation_id="deleteSchedule",
        summary="Remove a schedule",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def delete_schedule(self, conn: DbConn, name: ScheduleName) -> ScheduleResponse:
        """Removes the schedule and its fire history (200 with what was removed).

        Its executions stay.
        """
        return ScheduleResponse.from_row(await scheduling.remove(conn, name))

    @post(
        "/{name:str}/pause",
        status_code=200,
        operation_id="pauseSchedule",
        summary="Pause a schedule",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def pause_schedule(self, conn: DbConn, name: ScheduleName) -> ScheduleResponse:
        """A paused schedule fires nothing (run-now still works)."""
        return ScheduleResponse.from_row(await scheduling.pause(conn, name))

    @post(
        "/{name:str}/resume",
        status_code=200,
        operation_id="resumeSchedule",
        summary="Resume a schedule",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def resume_schedule(self, conn: DbConn, name: ScheduleName) -> ScheduleResponse:
        """Continues from the first slot after now: slots passed while paused never fire."""
        return ScheduleResponse.from_row(await scheduling.resume(conn, name))

    @post(
        "/{name:str}/run",
        status_code=202,
        operation_id="runSchedule",
        summary="Run a schedule now",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 409, 503),
    )
    async def run_schedule(
        self, conn: DbConn, name: ScheduleName, state: State
    ) -> ExecutionResponse:
        """Fire once now as a manual trigger (202 with the execution); the slots are untouched."""
        return ExecutionResponse.from_row(
            await scheduling.run_now(
                conn, state.registry, state.settings, name, backend=state.backend
            )
        )
