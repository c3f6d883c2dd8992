"""Executions: submit, list, inspect, follow events, cancel, retry.

Thin handlers: `submit` validates and records, `app.engine.executions` reads;
these only translate between HTTP and those calls.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any

from litestar import Controller, Litestar, Request, Response, get, post
from litestar.datastructures import ResponseHeader, State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from app.api.routes import MUTATING, READS, DbConn
from app.db import AsyncConn
from app.engine import history, retries
from app.engine.models import Execution, Lane, Status
from app.engine.submit import submit, submit_batch
from app.errors import Conflict, InvalidField, InvalidRequest, NotFound
from app.time_bounds import RANGE_NOTE, check_time
from app.web.connection import CONNECT_TIMEOUT
from app.web.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged
from app.web.problems import PROBLEM_MEDIA_TYPE, TYPE_PREFIX, problem_responses
from app.web.schemas import (
    BatchItemResponse,
    EventResponse,
    ExecutionBatchCreate,
    ExecutionBatchProblem,
    ExecutionBatchResponse,
    ExecutionCreate,
    ExecutionResponse,
)
from app.web.submissions import check_params, submission

__all__ = ["ExecutionsController"]

CURSOR_KIND = "executions"
ExecutionId = Annotated[str, PathParameter(description="The execution's id.", max_length=100)]
LOCATION_HEADER = ResponseHeader(
    name="Location",
    description="The execution's URL.",
    value="/api/v1/executions/{id}",
    documentation_only=True,
)


@functools.lru_cache(maxsize=4)  # an app or two per process: never keep every app a test made
def _execution_path(app: Litestar) -> str:
    """GET /executions/{id}'s path up to the id, from the app's routes, once per app
    (`route_reverse` walks them: ~8 us of a POST's ~600)."""
    marker = "MARKER"
    path = app.route_reverse("get_execution", execution_id=marker)
    return path[: -len(marker)]


class ExecutionsController(Controller):
    path = "/executions"
    tags = ["executions"]

    @post(
        "/",
        status_code=202,
        operation_id="createExecution",
        summary="Submit an execution",
        security=MUTATING,
        response_headers=[LOCATION_HEADER],
        responses={
            200: ResponseSpec(
                data_container=ExecutionResponse,
                description="`logical_key` is held by an active execution: that one, unchanged.",
            ),
            **problem_responses(400, 401, 413, 422, 503),
        },
    )
    async def create_execution(
        self,
        data: JSONBody[ExecutionCreate],
        request: Request[Any, Any, Any],
        state: State,
    ) -> Response[ExecutionResponse]:
        """Record a pending execution for a worker to run (202); the API never runs it."""
        # The pooled connection is taken here, not through the `conn` dependency: a
        # yield dependency's resolution and clean-up cost ~10% of a POST's CPU, and
        # this is the API's hot write (docs/benchmarks.md, issue 32). Same pool,
        # same wait, same 503 when it times out (app.web.problems).
        check_params(state.registry, data.pipeline, data.params)
        async with state.pool.connection(timeout=CONNECT_TIMEOUT) as conn:
            execution, created = await submit(
                conn,
                state.registry,
                state.settings,
                data.pipeline,
                data.params,
                lane=data.lane,
                logical_key=data.logical_key,
                trigger_source="api",
                backend=state.backend,
                max_attempts=data.max_attempts,
                retry_backoff_seconds=data.retry_backoff_seconds,
                timeout_seconds=data.timeout_seconds,
                run_at=data.run_at,
                waker=state.waker,
            )
        location = _execution_path(request.app) + execution.id
        return Response(
            ExecutionResponse.from_row(execution),
            status_code=202 if created else 200,
            headers={"Location": location},
        )

    @post(
        "/batch",
        status_code=200,
        operation_id="createExecutions",
        summary="Submit executions in bulk",
        security=MUTATING,
        responses={
            422: ResponseSpec(
                data_container=ExecutionBatchProblem,
                description="At least one item is invalid: a problem document whose "
                "`results` say which and why; the valid items were submitted all the same.",
                media_type=PROBLEM_MEDIA_TYPE,
                generate_examples=False,
            ),
            **problem_responses(400, 401, 413, 503),
        },
    )
    async def create_executions(
        self,
        data: JSONBody[ExecutionBatchCreate],
        conn: DbConn,
        state: State,
        request: Request[Any, Any, Any],
    ) -> Response[ExecutionBatchResponse]:
        """Up to 1,000 submissions in one insert, each answered in order.

        Each item is checked as POST /executions checks its body. An invalid item
        is answered `invalid` with the reason, and stores nothing; a logical_key
        held by an active execution, or by an earlier item, is answered
        `deduplicated` with that execution. 200 when no item is invalid, else 422
        (the valid items are submitted either way).
        """
        items = [submission(state.registry, raw) for raw in data.executions]
        outcomes = await submit_batch(
            conn,
            state.registry,
            state.settings,
            items,
            trigger_source="api",
            backend=state.backend,
            waker=state.waker,
        )
        results = [
            BatchItemResponse(
                outcome=o.outcome,
                execution=None if o.execution is None else ExecutionResponse.from_row(o.execution),
                error=o.error,
            )
            for o in outcomes
        ]
        invalid = sum(o.outcome == "invalid" for o in outcomes)
        if not invalid:
            return Response(ExecutionBatchResponse(results=results), status_code=200)
        problem = ExecutionBatchProblem(
            type=f"{TYPE_PREFIX}invalid-items",
            title="Unprocessable Entity",
            status=422,
            detail=f"{invalid} of {len(outcomes)} item(s) invalid; the valid ones were submitted",
            instance=request.url.path,
            results=results,
        )
        # The annotation is the 200's (the OpenAPI document's); the 422 is documented above.
        return Response(problem, status_code=422, media_type=PROBLEM_MEDIA_TYPE)  # type: ignore[arg-type]

    @get(
        "/",
        operation_id="listExecutions",
        summary="List executions",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 422, 503),
    )
    async def list_executions(
        self,
        *,
        conn: DbConn,
        request: Request[Any, Any, Any],
        status: Annotated[
            Status | None,
            QueryParameter(
                description="Only executions in this status (pending, queued, running, "
                "completed, failed, cancelled)."
            ),
        ] = None,
        pipeline: Annotated[
            str | None,
            QueryParameter(
                max_length=100,
                description="Only executions of this pipeline (GET /api/v1/pipelines lists them).",
            ),
        ] = None,
        lane: Annotated[
            Lane | None,
            QueryParameter(description="Only this lane: `normal` or `backfill`."),
        ] = None,
        since: Annotated[
            dt.datetime | None,
            QueryParameter(description=f"Created at or after this time (RFC 3339), {RANGE_NOTE}."),
        ] = None,
        until: Annotated[
            dt.datetime | None,
            QueryParameter(description=f"Created before this time (RFC 3339), {RANGE_NOTE}."),
        ] = None,
        attempt_gte: Annotated[
            int | None,
            QueryParameter(
                ge=0,
                le=2**31 - 1,
                description="At least this many attempts.",
                schema_extra={"minimum": 0},  # Litestar leaves out a bound of 0
            ),
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[list[ExecutionResponse]]:
        """Newest first, filtered by status, pipeline, lane, creation time and attempts.

        Keyset-paginated. Dead work: `status=failed&since=...&attempt_gte=2`.
        """
        before = decode_cursor(cursor, CURSOR_KIND, tuple[dt.datetime, str]) if cursor else None
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise InvalidRequest(f"{name} needs a time zone (RFC 3339, like ...T16:00:00Z)")
        since, until = check_time("since", since), check_time("until", until)
        if since is not None and until is not None and since > until:  # as a date range's
            message = f"invalid time range: since {since.isoformat()} is after until"
            raise InvalidField("since", f"{message} {until.isoformat()}", source="query")
        rows = await history.list_page(
            conn,
            limit=limit + 1,
            status=status,
            pipeline=pipeline,
            lane=lane,
            since=since,
            until=until,
            attempt_gte=attempt_gte,
            before=before,
        )
        return paged(
            request,
            rows,
            limit,
            kind=CURSOR_KIND,
            key=lambda e: (e.created_at, e.id),
            to_response=ExecutionResponse.from_row,
        )

    @get(
        "/{execution_id:str}",
        name="get_execution",
        operation_id="getExecution",
        summary="Get an execution",
        security=READS,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def get_execution(self, conn: DbConn, execution_id: ExecutionId) -> ExecutionResponse:
        """One execution, or 404."""
        return ExecutionResponse.from_row(await _existing(conn, execution_id))

    @get(
        "/{execution_id:str}/events",
        operation_id="listExecutionEvents",
        summary="List an execution's events",
        security=READS,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def list_events(
        self,
        conn: DbConn,
        execution_id: ExecutionId,
        after: Annotated[
            int,
            QueryParameter(
                ge=0,
                le=2**63 - 1,
                description="Only events with a larger id: poll for news without re-reading.",
            ),
        ] = 0,
    ) -> list[EventResponse]:
        """Everything that happened to the execution, in order."""
        execution = await _existing(conn, execution_id)  # 404 when there is no such one
        events = await history.list_events(conn, execution_id, after, execution=execution)
        return [EventResponse.from_row(e) for e in events]

    @post(
        "/{execution_id:str}/cancel",
        status_code=202,
        operation_id="cancelExecution",
        summary="Cancel an execution",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 409, 503),
    )
    async def cancel_execution(
        self, conn: DbConn, execution_id: ExecutionId, state: State
    ) -> ExecutionResponse:
        """Cancel: a pending execution ends at once; a running one is asked to stop (202).

        409 when it has already finished.
        """
        execution, outcome = await state.backend.cancel(conn, execution_id)
        if execution is None:
            raise NotFound(f"no execution with id {execution_id!r}")
        if outcome == "finished":
            raise Conflict(f"execution {execution_id} already finished ({execution.status})")
        return ExecutionResponse.from_row(execution)

    @post(
        "/{execution_id:str}/retry",
        status_code=202,
        operation_id="retryExecution",
        summary="Retry a failed or cancelled execution",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 409, 503),
    )
    async def retry_execution(
        self, conn: DbConn, execution_id: ExecutionId, state: State
    ) -> ExecutionResponse:
        """Back to pending with a fresh attempt budget, and a `retried` event (202).

        The budget is resolved again: the pipeline's retry policy and
        SPINE_MAX_ATTEMPTS as they are now, under what its submission set.

        409 when it is still active, completed, or its logical_key is held by
        another active execution.
        """
        execution, outcome = await retries.retry_one(
            conn, state.registry, state.settings, execution_id, source="api", backend=state.backend
        )
        if execution is None:
            raise NotFound(f"no execution with id {execution_id!r}")
        if outcome != "retried":
            raise Conflict(f"execution {execution_id} cannot be retried: {_WHY_NOT[outcome]}")
        return ExecutionResponse.from_row(execution)


_WHY_NOT = {
    "completed": "it completed",
    "not_ended": "it is still active",
    "key_active": "another active execution holds its logical_key",
    "missing": "it does not exist",
    "retried": "",
}


async def _existing(conn: AsyncConn, execution_id: str) -> Execution:
    execution = await history.get(conn, execution_id)
    if execution is None:
        raise NotFound(f"no execution with id {execution_id!r}")
    return execution
