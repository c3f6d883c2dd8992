"""Scans (sensors): new and changed files in the landing area become materializations.

For each file matching a dataset's landing pattern, a scan submits the
partition's materialization when the partition has none, or when the file's
content differs from the last one materialized (a republished week). It
compares size and modification time with the recorded source first and
hashes only the files whose stat changed, so a scan of an unchanged landing
area reads directory entries, never contents.

A partition is materialized once per change of its input: while its
execution is active, the logical key `dataset:<name>:<key>` stops a second
one; once it finished, the recorded sha256 does. Scans and backfills of one
dataset take turns (the backfills' advisory lock), so concurrent ones create
it once. The landing area must be the same storage for every pool that scans.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from app.config import Settings
from app.db import AsyncConn
from app.engine import partitions
from app.engine.backends import OrchestratorBackend
from app.engine.datasets import Dataset, logical_key
from app.engine.landing import LandedFile, landed_files
from app.engine.partitions import Source
from app.engine.queries import load
from app.engine.registry import Registry
from app.engine.submit import hand_over, submit_many

__all__ = ["ScanResult", "landed", "scan"]

_LOCK = load("backfills")["lock_dataset"]
_CHUNK = 1024 * 1024


class ScanResult(msgspec.Struct, frozen=True):
    """What one scan of a dataset found and did."""

    dataset: str
    files: int
    """Files matching the pattern."""
    hashed: int
    """Files whose stat differed from the recorded source, so were hashed."""
    submitted: list[str]
    """Partition keys whose materialization was created."""
    joined: list[str]
    """Partition keys already being materialized (their active execution kept)."""


def landed(data_dir: Path, dataset: Dataset) -> dict[str, str]:
    """Each partition key's landed file, relative to the data directory (the newest
    when two files match one partition): a backfill's sources."""
    return {key: file.path for key, (file, _) in _newest_by_key(data_dir, dataset).items()}


async def scan(
    conn: AsyncConn,
    registry: Registry,
    settings: Settings,
    backend: OrchestratorBackend,
    dataset: Dataset,
) -> ScanResult:
    """Scan `dataset`'s landing pattern once; submit what is new or changed."""
    files = await asyncio.to_thread(_newest_by_key, settings.data_dir, dataset)
    to_submit: list[tuple[str, dict[str, object]]] = []
    hashed = 0
    async with conn.transaction():
        await conn.execute(_LOCK, {"dataset": dataset.name})
        recorded = await partitions.latest_sources(conn, dataset.name)
        for key, (file, stat) in sorted(files.items()):
            before = recorded.get(key)
            if before is not None and _same_stat(before, file, stat):
                continue
            if before is not None:
                hashed += 1
                digest = await asyncio.to_thread(_sha256, settings.data_dir / file.path)
                if digest == before.sha256:
                    continue
            to_submit.append((key, dataset.params(file.partition, file.path)))
        made = await submit_many(
            conn,
            registry,
            settings,
            dataset.pipeline,
            [params for _, params in to_submit],
            logical_keys=[logical_key(dataset.name, key) for key, _ in to_submit],
            trigger_source="scan",
            backend=backend,
        )
    await hand_over(conn, backend, made)  # committed: the backend may hear of them now
    keys = [key for key, _ in to_submit]
    submitted = [key for key, (_, created) in zip(keys, made, strict=True) if created]
    joined = [key for key, (_, created) in zip(keys, made, strict=True) if not created]
    return ScanResult(dataset.name, len(files), hashed, submitted, joined)


def _newest_by_key(
    data_dir: Path, dataset: Dataset
) -> dict[str, tuple[LandedFile, os.stat_result]]:
    found: dict[str, tuple[LandedFile, os.stat_result]] = {}
    for file, stat in landed_files(data_dir, dataset):
        key = file.partition.key
        if key not in found or stat.st_mtime > found[key][1].st_mtime:
            found[key] = (file, stat)
    return found


def _same_stat(before: Source, file: LandedFile, stat: os.stat_result) -> bool:
    """The recorded source is this file, same size, same modification time."""
    return (
        before.path == file.path
        and before.bytes == stat.st_size
        and before.mtime is not None
        and before.mtime == datetime.fromtimestamp(stat.st_mtime, UTC)
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
