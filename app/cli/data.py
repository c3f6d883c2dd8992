"""`spine data`: input files, and the retention of their raw lines."""

from __future__ import annotations

import time
from pathlib import Path

import click

from app.cli.common import parse_age, with_conn
from app.config import get_settings
from app.otc.generator import generate
from app.otc.retention import prune_raw

__all__ = ["data_group"]


@click.group("data")
def data_group() -> None:
    """Input files, and the retention of their raw lines."""


@data_group.command("generate")
@click.option("--rows", type=click.IntRange(0), default=1_000_000, show_default=True)
@click.option("--symbols", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--days", type=click.IntRange(1, 3_650), default=5, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same file.")
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def data_generate(rows: int, symbols: int, days: int, seed: int, out: Path) -> None:
    """Write a synthetic trades CSV (random-walk prices) to OUT, for benchmarks."""
    started = time.perf_counter()
    written = generate(out, rows, symbols, days, seed, market_tz=get_settings().market_tz)
    took = time.perf_counter() - started
    size_mb = out.stat().st_size / 1e6
    click.echo(f"wrote {written:,} trades ({size_mb:.1f} MB) to {out} in {took:.1f}s")


@data_group.command("prune-raw")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Age, like 30d or 12h (default: SPINE_RAW_RETENTION_DAYS days).",
)
def data_prune_raw(older_than: str | None) -> None:
    """Drop the raw lines of loads older than the given age; their summaries and rejects stay."""
    if older_than is None:
        days = get_settings().raw_retention_days
        if days == 0:
            raise click.UsageError(
                "give --older-than (like 30d), or set SPINE_RAW_RETENTION_DAYS to a number of days"
            )
        older_than = f"{days}d"
    seconds = parse_age(older_than)
    pruned = with_conn(lambda c: prune_raw(c, older_than_seconds=seconds))
    click.echo(
        f"dropped the raw lines of {len(pruned.load_ids)} load(s) older than {older_than} "
        f"({pruned.bytes_freed / 1e6:.1f} MB freed)"
    )
