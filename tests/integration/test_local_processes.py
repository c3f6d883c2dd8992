"""Where state lives and what keeps running: one-shot commands, `honcho start`, `spine up`.

Each test runs the real `spine` (or `honcho`) as a subprocess with its own
embedded PostgreSQL under a temporary SPINE_STATE_DIR, and checks that nothing
is left running afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from app import embedded
from tests.support import ROOT, free_port, stop_tree, wait_until

BIN = Path(sys.executable).parent


def local_env(state: Path, **extra: str) -> dict[str, str]:
    """No DATABASE_URL: the embedded server under `state`."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SPINE_STATE_DIR=str(state), SPINE_LOG_LEVEL="WARNING", **extra)
    return env


def spine(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "spine"), *args],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def postgres_processes(state: Path) -> list[psutil.Process]:
    pgdata = str(embedded.pgdata_dir(state))
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(pgdata in part for part in cmdline):
            found.append(proc)
    return found


def test_one_shot_commands_from_any_directory_share_a_database_and_leave_nothing(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    env = local_env(state)

    listed = spine("executions", "list", env=env, cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "no executions"  # migrated, not `relation does not exist`
    starting = [line for line in listed.stderr.splitlines() if "starting embedded" in line]
    assert len(starting) == 1, listed.stderr
    assert "Traceback" not in listed.stderr
    assert not embedded.is_running(state)
    assert postgres_processes(state) == []
    assert not (elsewhere / ".spine").exists()

    submitted = spine("run", "noop", env=env, cwd=elsewhere)
    assert submitted.returncode == 0, submitted.stderr
    execution_id = submitted.stdout.split()[1]
    from_root = spine("executions", "list", env=env, cwd=ROOT / "app")
    assert execution_id in from_root.stdout
    assert not embedded.is_running(state)


def test_db_start_keeps_it_and_status_says_who(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = local_env(state)
    try:
        before = spine("db", "status", env=env, cwd=tmp_path)
        assert before.returncode == 0, before.stderr
        assert "not running" in before.stdout
        assert "0 pending" in before.stdout
        assert not embedded.is_running(state)

        started = spine("db", "start", env=env, cwd=tmp_path)
        assert started.returncode == 0, started.stderr
        assert "starting embedded PostgreSQL" in started.stderr
        assert embedded.is_running(state)

        status = spine("db", "status", env=env, cwd=tmp_path)
        assert "running, started by `spine db start`" in status.stdout
        assert "kept until `spine db stop`" in status.stdout
        assert "starting embedded" not in status.stderr
        shown = spine("db", "url", env=env, cwd=tmp_path)
        # Kept running: no "stops when this command ends" note; outside a checkout, which database.
        assert shown.stderr.splitlines() == [f"database: embedded PostgreSQL in {state / 'pgdata'}"]
        url = shown.stdout.strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM executions").fetchone() == (0,)
        assert embedded.is_running(state)  # still: somebody asked for it
    finally:
        stopped = spine("db", "stop", env=env, cwd=tmp_path)
    assert "stopped" in stopped.stdout
    assert not embedded.is_running(state)
    assert postgres_processes(state) == []


def test_an_external_database_without_migrations_says_what_to_run(
    tmp_path: Path, database_url: str
) -> None:
    name = f"spine_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": make_conninfo(database_url, dbname=name)}
        for args in (("executions", "list"), ("query", "metrics")):
            result = spine(*args, env=env, cwd=tmp_path)
            assert result.returncode == 1
            lines = result.stderr.strip().splitlines()
            # Outside a checkout, the first line names the database; then the one-line error.
            assert lines[0].startswith("database: DATABASE_URL"), result.stderr
            lines = lines[1:]
            assert len(lines) == 1, result.stderr
            assert "run `spine db init`" in lines[0]
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0


@pytest.mark.slow
def test_honcho_start_serves_on_the_readmes_port_migrated_and_stops_everything(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    port = free_port()
    # An activated venv: its bin first on PATH. A bare `honcho start` sets PORT=5000.
    env = local_env(
        state, SPINE_API_PORT=str(port), SPINE_MAX_CONCURRENT="1", PORT="5000", VIRTUAL_ENV=""
    )
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    out = tmp_path / "honcho.log"
    with out.open("wb") as log:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            ready = f"http://127.0.0.1:{port}/api/v1/health/ready"
            try:  # 503 while migrations are pending
                wait_until(lambda: _get(ready) == 200 or honcho.poll() is not None, timeout=120)
            except AssertionError:
                raise AssertionError(out.read_text()) from None
            assert honcho.poll() is None, out.read_text()
            family = psutil.Process(honcho.pid).children(recursive=True)
            assert embedded.is_running(state)
            honcho.send_signal(signal.SIGINT)
            assert honcho.wait(timeout=60) in (0, 130)
        finally:
            stop_tree(honcho.pid)
    text = out.read_text()
    assert "rc=-15" not in text, text
    assert "Traceback" not in text, text
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not embedded.is_running(state)
    assert postgres_processes(state) == []


@pytest.mark.slow
def test_spine_up_with_the_embedded_server_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    env = local_env(state, SPINE_API_PORT=str(port), SPINE_MAX_CONCURRENT="1")
    out = tmp_path / "up.log"
    with out.open("wb") as log:
        up = subprocess.Popen(
            [str(BIN / "spine"), "up"],
            env=env,
            cwd=ROOT / "app",  # any directory of the checkout
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            ready = f"http://127.0.0.1:{port}/api/v1/health/ready"
            wait_until(lambda: _get(ready) == 200 or up.poll() is not None, timeout=90)
            assert up.poll() is None, out.read_text()
            family = [psutil.Process(up.pid), *psutil.Process(up.pid).children(recursive=True)]
            up.send_signal(signal.SIGINT)
            assert up.wait(timeout=60) == 0, out.read_text()
        finally:
            stop_tree(up.pid)
    text = out.read_text()
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    assert not embedded.is_running(state)
    assert postgres_processes(state) == []
    assert "embedded PostgreSQL in" in text and "stopped" in text
    assert "rc=-15" not in text and "Traceback" not in text, text


def test_spine_up_on_a_busy_port_says_so_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = spine("up", env=local_env(state, SPINE_API_PORT=str(port)), cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is in use (Address already in use): stop what "
        "listens there (another `spine up`?) or set SPINE_API_PORT"
    ]
    assert "API:" not in result.stdout
    assert not embedded.is_running(state)


def test_a_command_ended_by_sigterm_stops_the_embedded_server_it_started(
    tmp_path: Path,
) -> None:
    """SIGTERM ends a one-shot command the way Ctrl-C does: the server it started stops."""
    state = tmp_path / "state"
    # No worker runs, so `run --wait` waits until it is told to stop.
    proc = subprocess.Popen(
        [str(BIN / "spine"), "run", "noop", "--wait"],
        env=local_env(state),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("submitted:")  # so it is up and registered
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        left_running = embedded.is_running(state)
    finally:
        stop_tree(proc.pid)
        embedded.stop(state)  # whatever the command left, for the next test
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "stopped" in stderr.splitlines()[-1], stderr
    assert not left_running


def test_a_new_checkouts_first_init_counts_the_migrations_it_applied(tmp_path: Path) -> None:
    """The embedded database is migrated as it starts; `db init` still says how many were."""
    state = tmp_path / "state"
    initialized = spine("db", "init", env=local_env(state), cwd=ROOT)
    assert initialized.returncode == 0, initialized.stderr
    every = len(list((ROOT / "migrations").glob("*.sql")))
    assert f"{every} migration(s) applied" in initialized.stdout, initialized.stdout
    listed = [line for line in initialized.stdout.splitlines() if line.startswith("applied ")]
    assert len(listed) == every  # a line each
    assert "database:" not in initialized.stderr  # in a checkout the database is the checkout's


def test_outside_a_checkout_a_command_names_its_database_once_without_the_password(
    tmp_path: Path, database_url: str
) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with_password = make_conninfo(database_url, password="s3cret-pw")
    env = local_env(tmp_path / "state", DATABASE_URL=with_password)
    listed = spine("executions", "list", env=env, cwd=tmp_path)
    lines = [line for line in listed.stderr.splitlines() if line.startswith("database:")]
    assert len(lines) == 1, listed.stderr
    assert "s3cret-pw" not in listed.stderr + listed.stdout
    assert str(conninfo_to_dict(database_url)["dbname"]) in lines[0]
