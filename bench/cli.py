"""`python -m bench`: run the scenarios, print the table, write the JSON."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import report
from bench.context import FULL, PEER_SCENARIOS, QUICK, Context
from bench.harness import Scratch, progress
from bench.scenarios import SCENARIOS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Market Spine against raw-PostgreSQL baselines, measured in the same run.",
    )
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run.")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS),
        metavar="SCENARIO",
        help=f"Run only this scenario (repeatable): {', '.join(SCENARIOS)}.",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="Measured runs after the warm-up (default 3, quick 1).",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="Server to make scratch databases on (default DATABASE_URL, else the embedded one).",
    )
    parser.add_argument(
        "--http-seconds", type=float, default=None, help="Seconds per HTTP load run (default 15)."
    )
    parser.add_argument(
        "--http-client",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="HTTP load generator: wrk when installed (auto), or the asyncio httpx client.",
    )
    parser.add_argument(
        "--schedules",
        type=int,
        default=0,
        help="Create this many daily cron schedules before draining (their scheduler's cost).",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="Market Spine beside procrastinate and pgqueuer (needs the `bench` extra).",
    )
    parser.add_argument(
        "--peers-only",
        action="append",
        choices=list(PEER_SCENARIOS),
        metavar="SCENARIO",
        help=f"With the peers, run only this scenario (repeatable; implies --peers): "
        f"{', '.join(PEER_SCENARIOS)}.",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="Jobs each peer drain runs (default 20,000; quick 300): at 2,000 a drain lasts "
        "under half a second here, too short to trust.",
    )
    parser.add_argument(
        "--celery-broker",
        default=os.environ.get("SPINE_BENCH_AMQP_URL") or None,
        help="Also drain through a Celery node on this RabbitMQ (default SPINE_BENCH_AMQP_URL; "
        "needs the `celery` extra).",
    )
    parser.add_argument(
        "--scale-rows",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="Also run the scale scenario with N finished executions behind the queue "
        "(repeatable; e.g. 10000000; a full run has 1,000,000).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Where to write the results JSON.")
    parser.add_argument(
        "--keep-work-dir", action="store_true", help="Keep generated files and process logs."
    )
    return parser


def _server_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from app import db
    from app.config import get_settings

    return db.database_url(get_settings())


def _peers(ctx: Context) -> None:
    try:
        from bench.peers.run import run
    except ImportError as exc:  # the extra is not installed: say how to get it
        raise SystemExit(
            f"--peers needs the bench extra ({exc}): pip install -e '.[dev,bench]'"
        ) from exc
    ctx.peer_rows.extend(run(ctx))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.http_seconds is not None:
        sizes = replace(sizes, http_seconds=args.http_seconds)
    if args.jobs is not None:
        if args.jobs < 1:
            raise SystemExit("--jobs must be at least 1")
        sizes = replace(sizes, peers_drain_executions=args.jobs)
    if args.scale_rows:
        sizes = replace(sizes, scale_rows=tuple(sorted({*sizes.scale_rows, *args.scale_rows})))
    if args.schedules:
        sizes = replace(sizes, drain_schedules=args.schedules)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    peers = args.peers or bool(args.peers_only)
    chosen = ["peers"] if peers else (args.only or list(SCENARIOS))
    started = time.monotonic()
    started_at = datetime.now(UTC)

    server = _server_url(args.database_url)
    scratch = Scratch(server)
    work_dir = Path(tempfile.mkdtemp(prefix="spine-bench-"))
    ctx = Context(
        scratch=scratch,
        sizes=sizes,
        repeat=repeat,
        work_dir=work_dir,
        http_client=args.http_client,
        peer_scenarios=tuple(args.peers_only or PEER_SCENARIOS),
        celery_broker=args.celery_broker,
    )
    progress(
        f"bench: {', '.join(chosen)}; {'quick' if args.quick else 'full'} sizes; "
        f"{repeat} measured run(s) after a warm-up; work dir {work_dir}"
    )
    errors: dict[str, str] = {}
    machine: dict[str, Any] = {}
    try:
        dropped = scratch.drop_leftovers()
        if dropped:
            progress(f"dropped {len(dropped)} database(s) left by earlier runs")
        machine = report.machine(server)
        progress(
            f"{machine['cpus']} CPUs, {machine['memory_gib']} GiB, load average "
            f"{machine['load_average'][0]:.2f}; {machine['postgresql']}"
        )
        applied = scratch.create_template()
        progress(f"template {scratch.template}: {len(applied)} migration(s) applied")
        for name in chosen:
            run: Callable[[Context], None] = SCENARIOS.get(name, _peers)
            progress(f"--- {name}")
            began = time.monotonic()
            try:
                run(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one broken scenario must not lose the others' figures
                errors[name] = f"{type(exc).__name__}: {exc}"
                progress(f"{name} FAILED: {errors[name]}")
            progress(f"{name} took {time.monotonic() - began:.0f}s")
    finally:
        try:
            scratch.drop_all()
        except psycopg.Error as exc:  # the server went away: say so, keep the figures
            errors["cleanup"] = f"could not drop the scratch databases: {exc}"
            progress(errors["cleanup"])
        if args.keep_work_dir:
            progress(f"work dir kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    elapsed = time.monotonic() - started
    print()
    if peers:
        from bench.peers.run import table

        print(table(ctx.peer_rows))
    else:
        print(report.table(ctx.rows))
    extra = report.notes(ctx.rows)
    if extra:
        print()
        print(extra)
    for name, message in errors.items():
        print(f"\n{name}: FAILED: {message}")
    payload = {
        "started_at": started_at.isoformat(),
        "duration_s": round(elapsed, 1),
        "options": {
            "quick": args.quick,
            "repeat": repeat,
            "only": chosen,
            "peer_scenarios": list(ctx.peer_scenarios),
            "sizes": dict(vars(sizes)),
        },
        "machine": machine,
        "rows": [row.as_json() for row in ctx.rows],
        "peers": [row.as_json() for row in ctx.peer_rows],
        "errors": errors,
    }
    path = report.write_json(payload, args.json)
    print(f"\nfull run took {elapsed / 60:.1f} min; results: {path}")
    return 1 if errors else 0
