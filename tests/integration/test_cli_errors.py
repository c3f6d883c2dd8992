"""Every command group refuses bad input with one line on stderr and a non-zero exit.

Run as real subprocesses (`python -m app.cli`), so what is checked is exactly
what a user sees: no traceback, no usage block, one line naming the mistake.
"""

from __future__ import annotations

import pytest

from tests.support import one_error_line, spine_env, spine_process

CASES = [
    # (command group, arguments, extra environment, what the line must say)
    ("db", ["db", "status"], {"DATABASE_URL": "notaurl"}, "DATABASE_URL"),
    ("db", ["db", "reset", "--bogus"], {}, "No such option '--bogus'"),
    ("list/run", ["run", "nope"], {}, "unknown pipeline 'nope'"),
    ("list/run", ["run", "otc_ingest", "-p", "file=missing.csv"], {}, "missing.csv"),
    ("list/run", ["run", "sleep", "--lane", "fast"], {}, "'--lane'"),
    ("executions", ["executions", "show", "no-such-id"], {}, "no execution no-such-id"),
    ("executions", ["executions", "cancel", "no-such-id"], {}, "no execution no-such-id"),
    ("executions", ["executions", "list", "--status", "done"], {}, "'done' is not one of"),
    ("executions", ["executions", "prune", "--older-than", "soon"], {}, "'soon'"),
    ("data", ["data", "generate", "--rows", "10", "/nonexistent/dir/x.csv"], {}, "/nonexistent"),
    ("query", ["query", "metrics", "--start", "2026-13-01"], {}, "is not a date"),
    ("query", ["query", "trades", "--symbol", "ACME", "--end", "yesterday"], {}, "is not a date"),
    ("worker", ["worker", "start"], {"SPINE_MAX_CONCURRENT": "0"}, "SPINE_MAX_CONCURRENT"),
    ("api", ["api", "--port", "70000"], {}, "'--port'"),
    ("up", ["up", "--procfile", "no/such/Procfile"], {}, "no/such/Procfile not found"),
    ("shell", ["shell", "--bogus"], {}, "No such option '--bogus'"),
    ("schedules", ["schedules", "show", "no-such-schedule"], {}, "no-such-schedule"),
    ("schedules", ["schedules", "add", "x", "noop", "--cron", "61 * * * *"], {}, "Bad minute"),
    ("datasets", ["datasets", "show", "nope"], {}, "unknown dataset 'nope'"),
    ("datasets", ["datasets", "partitions", "otc_trades", "--state", "weird"], {}, "'weird'"),
    (
        "backfill",
        ["backfill", "otc_metrics_daily", "--from", "2026-01-09", "--to", "2026-01-05"],
        {},
        "2026-01-09 is after 2026-01-05",
    ),
    ("backfills", ["backfills", "show", "no-such-id"], {}, "no backfill no-such-id"),
    ("backfills", ["backfills", "cancel", "no-such-id"], {}, "no backfill no-such-id"),
    ("sources", ["sources", "check", "--format", "xml"], {}, "'xml'"),
    # A byte that is not UTF-8 (the shell's $'\xff'), where the database gets it.
    ("executions", ["executions", "show", "\udcff"], {}, "not UTF-8 text: b'\\xff'"),
    ("executions", ["executions", "list", "--pipeline", "a\udcff"], {}, "not UTF-8 text"),
    ("schedules", ["schedules", "pause", "\udcff"], {}, "not UTF-8 text"),
    ("backfills", ["backfills", "show", "\udcff"], {}, "not UTF-8 text"),
    ("list/run", ["run", "noop", "--in", "99999999999d"], {}, "'99999999999d' is too long"),
]


@pytest.mark.parametrize(
    ("group", "args", "extra", "expected"), CASES, ids=[" ".join(c[1]) for c in CASES]
)
def test_bad_invocation_is_one_line_and_a_non_zero_exit(
    database_url: str, group: str, args: list[str], extra: dict[str, str], expected: str
) -> None:
    line = one_error_line(spine_process(args, spine_env(database_url, **extra)))
    assert expected in line, group
    assert "'spine " in line or "--help" not in line


def test_every_command_group_has_a_case() -> None:
    from app.cli import main

    covered = {args[0] for _, args, _, _ in CASES}
    assert set(main.commands) <= covered | {"list"}
