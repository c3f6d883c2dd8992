"""`spine data`: input files, and the retention of their raw lines."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from app.cli.common import parse_age, parse_date, with_conn
from app.config import get_settings
from app.otc.generator import default_ids, generate
from app.otc.retention import prune_raw

__all__ = ["data_group"]

PROGRESS_FROM_ROWS = 200_000  # smaller files take well under a second: no progress


@click.group("data")
def data_group() -> None:
    """Input files, and the retention of their raw lines."""


@data_group.command("generate")
@click.option("--rows", type=click.IntRange(0), default=1_000_000, show_default=True)
@click.option("--symbols", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--days", type=click.IntRange(1, 3_650), default=5, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same file.")
@click.option(
    "--start-date",
    "start",
    default="2026-01-05",
    show_default=True,
    help="First trading day (YYYY-MM-DD; weekends are skipped).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def data_generate(
    *, rows: int, symbols: int, days: int, seed: int, start: str, force: bool, out: Path
) -> None:
    """Write a synthetic trades CSV (random-walk prices) to OUT, for benchmarks and trials.

    Trade ids are unique per (seed, start date), so ingesting a generated file
    never overwrites the sample's or another generated file's trades. To ingest
    OUT, put it in the data directory (SPINE_DATA_DIR; files there are
    git-ignored, except the sample).
    """
    start_date = parse_date(start)
    assert start_date is not None
    if out.exists() and not force:
        raise click.ClickException(f"{out} exists: use --force to overwrite it")
    if not out.parent.is_dir():
        raise click.ClickException(f"{out.parent} is not a directory")
    started = time.perf_counter()
    if rows >= PROGRESS_FROM_ROWS:
        with click.progressbar(
            length=rows, label=f"writing {out.name}", file=sys.stderr, show_percent=True
        ) as bar:
            shown = 0

            def advance(written: int) -> None:
                nonlocal shown
                bar.update(min(written, rows) - shown)
                shown = min(written, rows)

            written = generate(
                out, rows, symbols, days, seed,
                start_date=start_date, market_tz=get_settings().market_tz, on_rows=advance,
            )  # fmt: skip
    else:
        written = generate(
            out, rows, symbols, days, seed,
            start_date=start_date, market_tz=get_settings().market_tz,
        )  # fmt: skip
    took = time.perf_counter() - started
    size_mb = out.stat().st_size / 1e6
    click.echo(
        f"wrote {written:,} trades ({size_mb:.1f} MB, ids {default_ids(seed, start_date)}...) "
        f"to {out} in {took:.1f}s"
    )


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
