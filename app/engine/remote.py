"""Fetching as a step of the materializing execution: `dataset_fetch` (dataset, key).

One execution materializes one partition of a dataset with a remote source:
it fetches the partition's file into the landing area (`app.engine.fetch`),
then runs the dataset's own ingest pipeline on it in the same execution (its
id, its lineage), so backfills, schedules, retries, timeouts and lineage work
as for a landed file. How each fetch ends:

- `fetched`: a new body landed (atomically) and was ingested; the fetch's URL and
  validators go on the materializations the ingest records, in its transaction
  (`partitions.fetched_from`);
- `not_modified`: a 304, or a body whose sha256 is the last materialization's:
  nothing is ingested, nothing new is materialized ("unchanged at the source");
  a same body under new validators (a new ETag) refreshes the stored ones, so
  the next request can be answered 304;
- `not_published`: before the partition is due, or past its freshness deadline,
  the execution completes and the partition stays `not_due` / becomes `late`;
  inside the window it asks to run again (`TryAgainAt`) every
  SPINE_SOURCE_RECHECK seconds until the deadline;
- `no_data`: a day the NYSE is closed, recorded without asking the publisher.

Politeness: at most SPINE_SOURCE_MAX_PER_HOST requests to one host at once across
every pool (slots are PostgreSQL session advisory locks, held by a connection for
the fetch), the User-Agent from SPINE_HTTP_USER_AGENT, Retry-After honoured.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import msgspec

from app.config import Settings
from app.db import AsyncConn, AsyncPool
from app.engine import partitions
from app.engine.context import PipelineContext
from app.engine.datasets import Dataset, DatasetCatalog, Partition
from app.engine.fetch import (
    TOKENS,
    Fetched,
    Previous,
    SourceRefused,
    SourceUnavailable,
    fetch_file,
    fetch_pages,
    new_client,
    require_contact,
)
from app.engine.market_calendar import closed_reason
from app.engine.partitions import NewMaterialization, RemoteOrigin, Source
from app.engine.queries import load
from app.engine.registry import Pipeline, Registry, Summary
from app.engine.retry import RetryPolicy
from app.engine.schedules_sql import db_now
from app.engine.source_metrics import count_request
from app.engine.sources import RemoteSource
from app.errors import TryAgainAt

__all__ = ["FETCH_PIPELINE", "FETCH_RETRY", "FetchParams", "fetch_pipeline", "host_slot"]

FETCH_PIPELINE = "dataset_fetch"
FETCH_RETRY = RetryPolicy(max_attempts=5, backoff_seconds=30.0, permanent=(SourceRefused,))
"""Transient errors (5xx, timeouts, resets, cut bodies) are retried 4 times, from 30 s
doubling (capped by SPINE_RETRY_MAX_BACKOFF); a refusal (another 4xx) fails at once."""

_SQL = load("sources")
_encode = msgspec.json.Encoder().encode


class FetchParams(msgspec.Struct, forbid_unknown_fields=True):
    dataset: Annotated[
        str, msgspec.Meta(min_length=1, max_length=200, description="A dataset with a source.")
    ]
    key: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=200,
            description="The partition's key.",
            examples=["2025-12-15/OTC"],
        ),
    ]


def fetch_pipeline(
    datasets: DatasetCatalog,
    registry: Callable[[], Registry],
    settings: Callable[[], Settings],
) -> Pipeline[FetchParams]:
    """`dataset_fetch` for these datasets (each with a remote source)."""

    def checked(params: FetchParams, _: object) -> None:
        try:
            dataset = datasets.get(params.dataset)
        except LookupError as exc:
            raise ValueError(str(exc)) from None
        if dataset.remote is None:
            raise ValueError(f"dataset {params.dataset} has no remote source")
        dataset.partition(params.key)

    async def run(ctx: PipelineContext, params: FetchParams) -> Summary:
        dataset = datasets.get(params.dataset)
        partition = dataset.partition(params.key)
        return await materialize(ctx, registry(), settings(), dataset, partition)

    return Pipeline(
        FETCH_PIPELINE,
        "Fetch a partition of a dataset from its publisher into the landing area (conditional, "
        "checksummed, atomic), then ingest it with the dataset's pipeline.",
        FetchParams,
        run,
        check=checked,
        retry=FETCH_RETRY,
    )


async def materialize(
    ctx: PipelineContext,
    registry: Registry,
    settings: Settings,
    dataset: Dataset,
    partition: Partition,
) -> dict[str, Any]:
    """Fetch one partition and ingest it when it changed: the execution's summary."""
    source = dataset.remote
    assert source is not None
    require_contact(source, settings)
    summary: dict[str, Any] = {"dataset": dataset.name, "key": partition.key, "source": source.name}
    if source.calendar and dataset.scheme == "day":
        closed = closed_reason(partition.start)
        if closed is not None:
            await _record_no_data(ctx, dataset, partition, closed)
            return {**summary, "outcome": "no_data", "reason": closed}
    key2_name = dataset.key2_name(partition.key2)
    url = source.request_url(settings, partition, key2_name)
    landing = source.landing_path(partition, key2_name)
    dest = _inside(settings.data_dir, landing)
    async with ctx.pool.connection() as conn:
        previous = await _previous(conn, dataset, partition)
        now = await db_now(conn)
    await ctx.progress(0, None, f"fetching {url}", phase="fetch")
    fetched = await _fetch(ctx.pool, settings, source, partition, url, dest, previous)
    summary["url"] = url
    if fetched.outcome == "not_published":
        count_request(source.name, "not_published")
        tz = ZoneInfo(settings.market_tz)  # a deadline is the market's evening (Reg SHO's 20:00)
        due, late = (
            dataset.freshness.due_at(partition, tz),
            dataset.freshness.late_at(partition, tz),
        )
        if due <= now < late:
            again = min(now + timedelta(seconds=settings.source_recheck), late)
            raise TryAgainAt(again, f"{url}: not published yet (HTTP {fetched.status})")
        return {**summary, "outcome": "not_published", "status": fetched.status}
    validators = dict(fetched.validators or {})
    if fetched.outcome == "not_modified" or (
        previous is not None and previous.sha256 == fetched.sha256
    ):
        count_request(source.name, "not_modified")
        if fetched.outcome == "fetched" and previous is not None:
            await _refresh(ctx.pool, previous, url, validators)
        return {**summary, "outcome": "not_modified", "status": fetched.status}
    count_request(source.name, "fetched", fetched.bytes)
    ingest = registry.get(dataset.pipeline)
    params = ingest.validate(dataset.params(partition, landing), settings)
    await ctx.progress(0, None, f"ingesting {landing}", phase="ingest")
    with partitions.fetched_from(RemoteOrigin(dataset.name, url, validators)):
        loaded = await ingest.run(ctx, params)
    return {
        **summary,
        "outcome": "fetched",
        "file": landing,
        "bytes": fetched.bytes,
        "sha256": fetched.sha256,
        "ingest": loaded,
    }


async def _fetch(  # noqa: PLR0917 - the fetch's seven parts, each distinct
    pool: AsyncPool,
    settings: Settings,
    source: RemoteSource,
    partition: Partition,
    url: str,
    dest: Path,
    previous: Previous | None,
) -> Fetched:
    """The request(s), under a slot of the host; an error is counted, then raised."""
    try:
        async with new_client(settings) as client:
            token = None
            if source.token is not None:
                token = await TOKENS.token(client, source.token, settings)
            host = httpx.URL(url).host
            async with host_slot(pool, host, settings.source_max_per_host):
                if source.query is not None:
                    return await fetch_pages(
                        client,
                        source.query,
                        url,
                        partition,
                        dest,
                        page_size=settings.source_page_size,
                        token=token,
                    )
                return await fetch_file(client, source, url, dest, previous)
    except (SourceUnavailable, SourceRefused, TryAgainAt):
        count_request(source.name, "error")
        raise


@asynccontextmanager
async def host_slot(pool: AsyncPool, host: str, limit: int) -> AsyncIterator[int]:
    """Hold one of `limit` request slots of `host`, across every process and pool.

    A slot is a session advisory lock held by a pooled connection for the fetch: a
    free one is taken at once, else one is waited for. A process that dies frees its
    slots with its connections.
    """
    async with pool.connection() as conn:
        slot = await _take_slot(conn, host, limit)
        try:
            yield slot
        finally:
            await conn.execute(_SQL["free_host_slot"], {"host": host, "slot": slot})


async def _take_slot(conn: AsyncConn, host: str, limit: int) -> int:
    for slot in range(limit):
        row = await (
            await conn.execute(_SQL["try_host_slot"], {"host": host, "slot": slot})
        ).fetchone()
        if row is not None and row["taken"]:
            return slot
    slot = random.randrange(limit)  # noqa: S311 - spreads waiters, nothing secret
    await conn.execute(_SQL["wait_host_slot"], {"host": host, "slot": slot})
    return slot


async def _refresh(
    pool: AsyncPool, previous: Previous, url: str, validators: dict[str, str]
) -> None:
    """The same content under new validators: the newest materialization takes them (and
    the URL), so the next request is conditional on what the publisher sends now."""
    if previous.url == url and dict(previous.validators) == validators:
        return
    async with pool.connection() as conn:
        await conn.execute(
            _SQL["refresh_validators"],
            {"id": previous.id, "url": url, "validators": _encode(validators).decode()},
        )


async def _previous(conn: AsyncConn, dataset: Dataset, partition: Partition) -> Previous | None:
    """The newest materialization's source (what a conditional request compares with)."""
    row = await (
        await conn.execute(_SQL["latest_remote"], {"dataset": dataset.name, "key": partition.key})
    ).fetchone()
    if row is None or row["outcome"] != "loaded":
        return None
    validators = row["source_validators"] or {}
    return Previous(
        id=row["id"],  # type: ignore[arg-type]
        url=row["source_url"],  # type: ignore[arg-type]
        validators={str(k): str(v) for k, v in validators.items()},  # type: ignore[attr-defined]
        sha256=row["source_sha256"],  # type: ignore[arg-type]
    )


async def _record_no_data(
    ctx: PipelineContext, dataset: Dataset, partition: Partition, reason: str
) -> None:
    async with ctx.pool.connection() as conn, conn.transaction():
        await partitions.record(
            conn,
            [
                NewMaterialization(
                    dataset=dataset.name,
                    key=partition.key,
                    execution_id=ctx.execution_id,
                    outcome="no_data",
                    source=Source(validators={"closed": reason}),
                )
            ],
        )


def _inside(data_dir: Path, relative: str) -> Path:
    """The landed file's path, which must stay inside the data directory."""
    root = data_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise SourceRefused(f"landing path {relative!r} leaves SPINE_DATA_DIR")
    return path
