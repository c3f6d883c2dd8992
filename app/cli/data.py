"""`spine data`: input files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from app.config import get_settings
from app.otc.generator import generate

__all__ = ["data_group"]


@click.group("data")
def data_group() -> None:
    """Input files."""


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
