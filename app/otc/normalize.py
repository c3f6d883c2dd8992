"""Raw lines of one load -> otc_trades, set-based, with every decision counted.

Rules for a line are `otc_parse_line` (migrations/010); lines the connector
proved plainly valid skip it. Then, per trade id:

- a new id is inserted;
- an id already stored with identical values is a duplicate: nothing changes;
- an id stored with different values is a correction: the line's values
  replace the stored ones (and both the old and the new (symbol, date) pairs
  are marked for the metrics recompute).

Within one file the last valid line for a trade id wins. It is classified as
above against the stored trade; each earlier line for the same id is a
duplicate when identical to that last line and a correction otherwise. So
loading the same file twice gives the same duplicates/corrections split except
that the first run's inserts become duplicates, and nothing changes the second
time. Always: rows_read == inserted + duplicates + corrections + rejected.

Cost: when every trade id of the file is new (the common case) the load is one
plain INSERT ... SELECT; otherwise that INSERT is rolled back at its first
conflict, redone with ON CONFLICT DO NOTHING, and `resolve_repeats` joins the
skipped lines with the stored trades (sorting by trade id only when some id
has several lines in the file).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.db import AsyncConn
from app.otc import metrics, normalize_steps
from app.otc.connector import FlaggedLines

__all__ = ["NormalizeResult", "StepFn", "normalize_load"]

# (phase, steps done, steps in the phase, message): `normalize` then `metrics`.
StepFn = Callable[[str, int, int, str], Awaitable[None]]
NORMALIZE_STEPS = 4


@dataclass(frozen=True)
class NormalizeResult:
    rows_read: int
    inserted: int
    duplicates: int
    corrections: int
    rejected: int
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    metrics_rows_changed: int = 0
    """Metric rows the load inserted, updated or deleted (0 when its trades changed nothing)."""
    metrics_rows_total: int = 0
    """The daily metric rows stored after the load (every symbol and date), changed or not."""

    def __post_init__(self) -> None:
        accounted = self.inserted + self.duplicates + self.corrections + self.rejected
        if accounted != self.rows_read:
            raise AssertionError(f"normalization lost lines: read {self.rows_read}, {self}")


async def normalize_load(
    conn: AsyncConn,
    load_id: int,
    *,
    rows_read: int,
    check_lines: FlaggedLines,
    market_tz: str,
    step: StepFn | None = None,
) -> NormalizeResult:
    """Normalize load `load_id`'s raw lines into otc_trades and recompute the metrics it touched.

    One transaction (a savepoint inside the caller's): it takes the trades lock,
    held until the caller commits, and owns the temporary tables the steps
    share, so no caller has to know their order. `step` hears of each step
    before it runs (progress for long loads).
    """

    async def report(phase: str, done: int, total: int, message: str) -> None:
        if step is not None:
            await step(phase, done, total, message)

    async with conn.transaction():
        if not await metrics.try_lock_trades(conn):  # said only when another load holds it
            await report("normalize", 0, NORMALIZE_STEPS, "waiting for the trades lock")
            await metrics.lock_trades(conn)
        await report("normalize", 1, NORMALIZE_STEPS, f"checking {check_lines.count} lines")
        await normalize_steps.parse_check_lines(conn, load_id, check_lines.chunks())
        rejects_by_reason = await normalize_steps.record_rejects(conn, load_id)
        await normalize_steps.start_touched(conn)
        flagged = check_lines.count
        await report("normalize", 2, NORMALIZE_STEPS, f"inserting trades of {rows_read} lines")
        inserted, every_line_inserted = await normalize_steps.insert_new_trades(
            conn, load_id, market_tz, flagged=flagged
        )
        duplicates = corrections = 0
        if not every_line_inserted:
            await report("normalize", 3, NORMALIZE_STEPS, "resolving duplicates and corrections")
            duplicates, corrections = await normalize_steps.resolve_repeats(
                conn, load_id, market_tz, flagged=flagged
            )
        await report("metrics", 0, 1, "recomputing the daily metrics the load touched")
        metrics_rows_changed = await metrics.recompute_touched(conn)
        metrics_rows_total = await metrics.count_range(conn)
    return NormalizeResult(
        rows_read=rows_read,
        inserted=inserted,
        duplicates=duplicates,
        corrections=corrections,
        rejected=sum(rejects_by_reason.values()),
        rejects_by_reason=rejects_by_reason,
        metrics_rows_changed=metrics_rows_changed,
        metrics_rows_total=metrics_rows_total,
    )
