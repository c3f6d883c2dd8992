"""Datasets and backfills: partitions by state, a partition's lineage, backfills to follow.

Thin handlers over app.engine (dataset_reads, partitions, backfills, scans);
the datasets are the app's (`state.datasets`, from the catalog). A partition
key is taken whole as a path (`2025-12-15/OTC`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter, QueryParameter

from app.api.routes import MUTATING, READS, DbConn
from app.engine import backfills, dataset_reads, partitions, scans
from app.engine.backfills import Backfill, BackfillItem, Only
from app.engine.dataset_reads import DatasetSummary, Lineage
from app.engine.datasets import MAX_RANGE_PARTITIONS, Dataset, DatasetCatalog, PartitionState
from app.engine.partitions import PartitionRow
from app.engine.schedules_sql import db_now
from app.errors import InvalidRequest, NotFound
from app.web.pagination import LINK_HEADER, Cursor, Limit, decode_cursor, paged
from app.web.problems import problem_responses

__all__ = ["BackfillsController", "DatasetsController"]

CURSOR_KIND = "partitions"
DatasetName = Annotated[str, PathParameter(description="The dataset's name.", max_length=200)]
BackfillId = Annotated[str, PathParameter(description="The backfill's id.", max_length=100)]
PartitionKey = Annotated[
    str, PathParameter(description="The partition's key: 2025-12-15/OTC, 2022-12a, ...")
]


class PartitionResponse(msgspec.Struct, frozen=True):
    key: str
    state: PartitionState
    due_at: datetime
    late_at: datetime
    materialized_at: datetime | None
    materialization_id: int | None
    execution_id: str | None

    @classmethod
    def of(cls, row: PartitionRow) -> PartitionResponse:
        return cls(
            row.key,
            row.state,
            row.due_at,
            row.late_at,
            row.materialized_at,
            row.materialization_id,
            row.execution_id,
        )


class BackfillCreate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    from_key: Annotated[str, msgspec.Meta(max_length=40)] = msgspec.field(name="from")
    to_key: Annotated[str, msgspec.Meta(max_length=40)] = msgspec.field(name="to")
    only: Only = "missing"
    key2: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class BackfillResponse(msgspec.Struct, frozen=True):
    id: str
    dataset: str
    from_key: str
    to_key: str
    only: str
    key2: str | None
    created_at: datetime
    cancelled_at: datetime | None
    counts: dict[str, int]
    items: list[BackfillItem]
    joined: bool

    @classmethod
    def of(cls, b: Backfill) -> BackfillResponse:
        return cls(
            b.id,
            b.dataset,
            b.from_key,
            b.to_key,
            b.only,
            b.key2,
            b.created_at,
            b.cancelled_at,
            b.counts,
            b.items,
            b.joined,
        )


def _dataset(state: State, name: str) -> Dataset:
    catalog: DatasetCatalog = state.datasets
    try:
        return catalog.get(name)
    except LookupError as exc:
        raise NotFound(str(exc)) from None


def _period(dataset: Dataset, text: str | None, what: str) -> date | None:
    if text is None:
        return None
    try:
        return dataset.period(text)
    except ValueError as exc:
        raise InvalidRequest(f"{what}: {exc}") from None


class DatasetsController(Controller):
    path = "/datasets"
    tags = ["datasets"]

    @get(
        "/",
        operation_id="listDatasets",
        summary="List datasets",
        security=READS,
        responses=problem_responses(400, 401, 503),
    )
    async def list_datasets(self, conn: DbConn, state: State) -> list[DatasetSummary]:
        """Every dataset: partitions by state, the newest loaded, the freshness lag."""
        tz = state.settings.market_tz
        return await dataset_reads.summaries(conn, state.datasets, market_tz=tz)

    @get(
        "/{name:str}",
        operation_id="getDataset",
        summary="A dataset",
        security=READS,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def get_dataset(self, conn: DbConn, state: State, name: DatasetName) -> DatasetSummary:
        """One dataset: its declaration and its partitions by state."""
        dataset = _dataset(state, name)
        tz = state.settings.market_tz
        return await dataset_reads.summary(conn, dataset, state.datasets, market_tz=tz)

    @get(
        "/{name:str}/partitions",
        operation_id="listPartitions",
        summary="A dataset's partitions",
        security=READS,
        response_headers=[LINK_HEADER],
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def list_partitions(  # noqa: PLR0917 (Litestar passes each by name)
        self,
        conn: DbConn,
        state: State,
        request: Request[Any, Any, Any],
        name: DatasetName,
        partition_state: Annotated[
            PartitionState | None, QueryParameter(name="state", description="Only this state.")
        ] = None,
        first: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
        last: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response[list[PartitionResponse]]:
        """Partitions in key order with their states; keyset-paged."""
        dataset = _dataset(state, name)
        at = await db_now(conn)
        tz = state.settings.market_tz
        lo = _period(dataset, first, "from") or dataset.start
        hi = _period(dataset, last, "to") or at.date()
        after = decode_cursor(cursor, CURSOR_KIND, tuple[str])[0] if cursor else ""
        listed = dataset.partitions(lo, hi, at_most=MAX_RANGE_PARTITIONS)
        wanted = [p for p in listed if p.key > after]
        if partition_state is None:  # no filter: only this page's partitions need a state
            wanted = wanted[: limit + 1]
        rows = await partitions.states(conn, dataset, wanted, now=at, tz=ZoneInfo(tz))
        rows = [r for r in rows if partition_state is None or r.state == partition_state]
        return paged(
            request,
            rows[: limit + 1],
            limit,
            kind=CURSOR_KIND,
            key=lambda r: (r.key,),
            to_response=PartitionResponse.of,
        )

    @get(
        "/{name:str}/partitions/{key:path}",
        operation_id="getPartition",
        summary="A partition's lineage",
        security=READS,
        responses=problem_responses(400, 401, 404, 422, 503),
    )
    async def get_partition(
        self, conn: DbConn, state: State, name: DatasetName, key: PartitionKey
    ) -> Lineage:
        """Its state, its materializations newest first with their sources, executions
        and loads, and its upstream and downstream partitions."""
        dataset = _dataset(state, name)
        try:
            part = dataset.partition(key.lstrip("/"))
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return await dataset_reads.lineage(conn, state.datasets, dataset, part)

    @post(
        "/{name:str}/backfills",
        status_code=201,
        operation_id="createBackfill",
        summary="Backfill a range of partitions",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 413, 422, 503),
    )
    async def create_backfill(
        self, conn: DbConn, state: State, name: DatasetName, data: JSONBody[BackfillCreate]
    ) -> BackfillResponse:
        """One execution per partition of the range that needs one, in the backfill lane."""
        dataset = _dataset(state, name)
        sources = scans.landed(state.settings.data_dir, dataset) if dataset.landing else None
        try:
            made = await backfills.create(
                conn,
                state.registry,
                state.settings,
                state.backend,
                dataset,
                from_key=data.from_key,
                to_key=data.to_key,
                only=data.only,
                key2=data.key2,
                sources=sources,
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return BackfillResponse.of(made)


class BackfillsController(Controller):
    path = "/backfills"
    tags = ["datasets"]

    @get(
        "/",
        operation_id="listBackfills",
        summary="List backfills",
        security=READS,
        responses=problem_responses(400, 401, 503),
    )
    async def list_backfills(
        self,
        conn: DbConn,
        dataset: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Limit = 50,
    ) -> list[BackfillResponse]:
        """The newest backfills first, with their counts by state (items: GET /backfills/{id})."""
        found = await backfills.list_recent(conn, dataset=dataset, limit=limit)
        return [BackfillResponse.of(b) for b in found]

    @get(
        "/{backfill_id:str}",
        operation_id="getBackfill",
        summary="A backfill",
        security=READS,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def get_backfill(self, conn: DbConn, backfill_id: BackfillId) -> BackfillResponse:
        """A backfill: its partitions, their executions, and counts by state."""
        found = await backfills.get(conn, backfill_id)
        if found is None:
            raise NotFound(f"no backfill {backfill_id}")
        return BackfillResponse.of(found)

    @post(
        "/{backfill_id:str}/cancel",
        status_code=200,
        operation_id="cancelBackfill",
        summary="Cancel a backfill",
        security=MUTATING,
        responses=problem_responses(400, 401, 404, 503),
    )
    async def cancel_backfill(
        self, conn: DbConn, state: State, backfill_id: BackfillId
    ) -> BackfillResponse:
        """What has not started ends cancelled; what runs, at its next check."""
        found = await backfills.cancel(conn, state.backend, backfill_id)
        if found is None:
            raise NotFound(f"no backfill {backfill_id}")
        return BackfillResponse.of(found)
