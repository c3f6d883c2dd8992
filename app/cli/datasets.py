"""`spine datasets list|show|partitions|lineage|scan`, `spine backfill`, `spine backfills`.

Thin over app.engine (dataset_reads, scans, backfills); the datasets are the
catalog's (app.catalog.DOMAINS). Keys and states are the API's words.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import click
import msgspec

from app import db
from app.catalog import DOMAINS, default_registry
from app.cli.backend import cli_backend
from app.cli.common import with_conn
from app.cli.render import FORMAT_OPTION, emit, emit_one, one_format_option
from app.config import get_settings
from app.engine import backfills, dataset_reads, scans, sensors
from app.engine.backfills import Backfill, Only
from app.engine.datasets import PARTITION_STATES, Dataset
from app.engine.models import TERMINAL
from app.engine.remote_scans import RemoteScanResult
from app.engine.scans import ScanResult
from app.errors import InvalidRequest, NotFound

__all__ = ["backfill_command", "backfills_group", "datasets_group"]


class DatasetLine(msgspec.Struct):
    name: str
    scheme: str
    loaded: int
    missing: int
    late: int
    failed: int
    stale: int
    newest_loaded: str
    lag_seconds: int


class PartitionLine(msgspec.Struct):
    key: str
    state: str
    due_at: str
    materialized_at: str
    execution_id: str


class BackfillLine(msgspec.Struct):
    id: str
    dataset: str
    from_key: str
    to_key: str
    only: str
    key2: str
    created_at: str
    cancelled: bool


def _dataset(name: str) -> Dataset:
    try:
        return DOMAINS.datasets().get(name)
    except LookupError as exc:
        raise NotFound(str(exc)) from None


@click.group("datasets")
def datasets_group() -> None:
    """Datasets: their partitions' states, lineage and scans."""


@datasets_group.command("list")
@FORMAT_OPTION
def list_datasets(fmt: str) -> None:
    """Every dataset: partitions by state, the newest loaded, the freshness lag."""
    tz = get_settings().market_tz
    found = with_conn(lambda c: dataset_reads.summaries(c, DOMAINS.datasets(), market_tz=tz))
    lines = [
        DatasetLine(
            s.name,
            s.scheme,
            s.partitions["loaded"],
            s.partitions["missing"],
            s.partitions["late"],
            s.partitions["failed"],
            s.partitions["stale"],
            s.newest_loaded or "",
            s.freshness_lag_seconds,
        )
        for s in found
    ]
    emit(lines, fmt, "no datasets", kind=DatasetLine)


@datasets_group.command("show")
@click.argument("name")
@one_format_option()
def show_dataset(name: str, fmt: str) -> None:
    """One dataset: what it is, where it comes from, its partitions by state."""
    dataset = _dataset(name)
    tz = get_settings().market_tz

    s = with_conn(
        lambda conn: dataset_reads.summary(conn, dataset, DOMAINS.datasets(), market_tz=tz)
    )
    counts = ", ".join(f"{k} {v}" for k, v in s.partitions.items() if v)
    text = "\n".join(
        [
            f"{s.name}: {s.description}",
            f"  partitions: {s.scheme}" + (f" x {'/'.join(s.key2)}" if s.key2 else ""),
            f"  pipeline:   {s.pipeline}",
            f"  landing:    {s.landing or '(observed: recorded by its loads)'}",
            f"  upstreams:  {', '.join(s.upstreams) or '-'}",
            f"  downstream: {', '.join(s.downstreams) or '-'}",
            f"  states:     {counts or '-'}",
            f"  newest loaded: {s.newest_loaded or '-'}; lag {s.freshness_lag_seconds:.0f}s",
        ]
    )
    emit_one(s, fmt, text)


@datasets_group.command("lineage")
@click.argument("name")
@click.argument("key")
@one_format_option()
def show_lineage(name: str, key: str, fmt: str) -> None:
    """A partition's lineage: its materializations newest first (source, sha256, execution,
    load, counts) and its upstream and downstream partitions (the API's object as JSON)."""
    dataset = _dataset(name)
    try:
        part = dataset.partition(key)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    found = with_conn(lambda c: dataset_reads.lineage(c, DOMAINS.datasets(), dataset, part))
    lines = [f"{found.dataset} {found.key}: {found.state} (due {found.due_at:%Y-%m-%d %H:%M %Z})"]
    for m in found.materializations:
        source = m.source_path or m.source_url or "-"
        sha = (m.source_sha256 or "")[:12] or "-"
        lines.append(
            f"  {m.materialized_at.isoformat(timespec='seconds')}  {m.outcome}  {source}"
            f"  sha256 {sha}  execution {m.execution_id or '-'}  load {m.load_id or '-'}"
            f"  +{m.inserted} ~{m.changed} -{m.removed} ={m.unchanged} x{m.rejected}"
        )
    if not found.materializations:
        lines.append("  never materialized")
    for label, related in (("upstream", found.upstream), ("downstream", found.downstream)):
        shown = ", ".join(f"{r.dataset} {r.key} ({r.state})" for r in related) or "-"
        lines.append(f"  {label}: {shown}")
    emit_one(found, fmt, "\n".join(lines))


@datasets_group.command("partitions")
@click.argument("name")
@click.option("--state", type=click.Choice(PARTITION_STATES), help="Only partitions in it.")
@click.option("--from", "first", help="First period (a date, or 2022-12a).")
@click.option("--to", "last", help="Last period.")
@FORMAT_OPTION
def list_partitions(
    name: str, state: str | None, first: str | None, last: str | None, fmt: str
) -> None:
    """A dataset's partitions with their states, in key order."""
    dataset = _dataset(name)
    tz = get_settings().market_tz

    async def read(conn: db.AsyncConn) -> list[Any]:
        _, rows = await dataset_reads.summarize(conn, dataset, DOMAINS.datasets(), market_tz=tz)
        return rows

    lo = _period(dataset, first)
    hi = _period(dataset, last)
    rows = [
        r
        for r in with_conn(read)
        if (state is None or r.state == state)
        and (lo is None or dataset.partition(r.key).start >= lo)
        and (hi is None or dataset.partition(r.key).start <= hi)
    ]
    lines = [
        PartitionLine(
            r.key,
            r.state,
            r.due_at.isoformat(timespec="seconds"),
            r.materialized_at.isoformat(timespec="seconds") if r.materialized_at else "",
            r.execution_id or "",
        )
        for r in rows
    ]
    emit(lines, fmt, "no partitions", kind=PartitionLine)


def _period(dataset: Dataset, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return dataset.period(text)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


@datasets_group.command("scan")
@click.argument("name")
@click.option(
    "--remote",
    is_flag=True,
    help="Also fetch its recent due partitions that are not loaded from its remote source, "
    "as its scheduled scan does.",
)
@one_format_option()
def scan_dataset(name: str, remote: bool, fmt: str) -> None:
    """Scan a dataset's landing area now: materialize what is new or changed (`--remote`:
    and fetch what its publisher should have by now)."""
    dataset = _dataset(name)
    if remote and dataset.remote is None:
        raise InvalidRequest(f"dataset {name} has no remote source to fetch from")
    if not remote and dataset.landing is None:
        raise InvalidRequest(
            f"dataset {name} has no landing pattern to scan"
            + ("; --remote fetches from its remote source" if dataset.remote else "")
        )
    settings, backend = get_settings(), cli_backend()

    async def go(conn: db.AsyncConn) -> tuple[ScanResult | None, RemoteScanResult | None]:
        registry = default_registry()
        return await sensors.scan_dataset(conn, registry, settings, backend, dataset, remote=remote)

    landed, fetched = with_conn(go)
    emit_one(sensors.scan_summary(dataset, landed, fetched), fmt, _scan_text(landed, fetched))


def _scan_text(landed: ScanResult | None, fetched: RemoteScanResult | None) -> str:
    lines = []
    if landed is not None:
        lines.append(
            f"{landed.files} file(s), {landed.hashed} hashed; "
            f"submitted {len(landed.submitted)}: {', '.join(landed.submitted) or '-'}"
            + (f"; already running: {', '.join(landed.joined)}" if landed.joined else "")
        )
    if fetched is not None:
        lines.append(
            f"remote: {len(fetched.window)} recent due partition(s); "
            f"fetching {len(fetched.submitted)}: {', '.join(fetched.submitted) or '-'}"
            + (f"; already running: {', '.join(fetched.joined)}" if fetched.joined else "")
            + (f"; asked recently: {', '.join(fetched.resting)}" if fetched.resting else "")
        )
    return "\n".join(lines)


@click.command("backfill")
@click.argument("dataset_name", metavar="DATASET")
@click.option("--from", "first", required=True, help="First period (a date, or 2022-12a).")
@click.option("--to", "last", required=True, help="Last period.")
@click.option(
    "--only",
    type=click.Choice(backfills.ONLY),
    default="missing",
    show_default=True,
    help="missing: missing and late partitions; all: every partition of the range.",
)
@click.option("--key2", help="Only this second key (e.g. a FINRA tier: OTC, T1, T2).")
@click.option("--wait", is_flag=True, help="Wait until every execution has finished.")
@one_format_option()
def backfill_command(  # noqa: PLR0917 (click passes every option by name)
    dataset_name: str, first: str, last: str, only: str, key2: str | None, wait: bool, fmt: str
) -> None:
    """Materialize a range of a dataset's partitions: one execution per partition."""
    dataset = _dataset(dataset_name)
    settings, backend = get_settings(), cli_backend()
    sources = scans.landed(settings.data_dir, dataset) if dataset.landing else None

    async def create(conn: db.AsyncConn) -> Backfill:
        try:
            return await backfills.create(
                conn,
                default_registry(),
                settings,
                backend,
                dataset,
                from_key=first,
                to_key=last,
                only=_only(only),
                key2=key2,
                sources=sources,
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    made = with_conn(create)
    while wait and not _finished(made):
        time.sleep(0.5)
        made = _get(made.id)
    emit_one(made, fmt, _describe(made))


def _only(value: str) -> Only:
    assert value in backfills.ONLY
    return value


def _finished(b: Backfill) -> bool:
    ended = (*TERMINAL, backfills.PRUNED)  # a pruned execution had finished
    return all(i.execution_status in ended for i in b.items if i.execution_id)


def _get(backfill_id: str) -> Backfill:
    found = with_conn(lambda c: backfills.get(c, backfill_id))
    if found is None:
        raise NotFound(f"no backfill {backfill_id}")
    return found


def _describe(b: Backfill) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(b.counts.items())) or "nothing to do"
    head = f"backfill {b.id} of {b.dataset} {b.from_key}..{b.to_key} (--only {b.only})"
    joined = " (joined an identical backfill)" if b.joined else ""
    lines = [head + joined, f"  {len(b.items)} partition(s): {counts}"]
    lines += [
        f"  {i.key}: {i.outcome} {i.execution_id or ''} {i.execution_status or ''}".rstrip()
        for i in b.items
    ]
    return "\n".join(lines)


@click.group("backfills")
def backfills_group() -> None:
    """Backfills: follow and cancel them."""


@backfills_group.command("list")
@click.option("--dataset", help="Only this dataset's.")
@FORMAT_OPTION
def list_backfills(dataset: str | None, fmt: str) -> None:
    """The newest backfills first."""
    found = with_conn(lambda c: backfills.list_recent(c, dataset=dataset))
    lines = [
        BackfillLine(
            b.id,
            b.dataset,
            b.from_key,
            b.to_key,
            b.only,
            b.key2 or "",
            b.created_at.isoformat(timespec="seconds"),
            b.cancelled_at is not None,
        )
        for b in found
    ]
    emit(lines, fmt, "no backfills", kind=BackfillLine)


@backfills_group.command("show")
@click.argument("backfill_id")
@one_format_option()
def show_backfill(backfill_id: str, fmt: str) -> None:
    """A backfill: its partitions, their executions and counts by state."""
    found = _get(backfill_id)
    emit_one(found, fmt, _describe(found))


@backfills_group.command("cancel")
@click.argument("backfill_id")
@one_format_option()
def cancel_backfill(backfill_id: str, fmt: str) -> None:
    """Cancel a backfill: what has not started ends cancelled; what runs, at its next check."""
    backend = cli_backend()
    found = with_conn(lambda c: backfills.cancel(c, backend, backfill_id))
    if found is None:
        raise NotFound(f"no backfill {backfill_id}")
    emit_one(found, fmt, _describe(found))
