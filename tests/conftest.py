"""Test harness: a real PostgreSQL server, a migrated template, a fresh database per test.

`tests/unit` needs no server: `pytest tests/unit` starts none. The fixtures
that hand out databases are in `tests/integration/conftest.py`.

The server is the embedded one (under `.spine/test`, shared by concurrent
pytest runs and stopped by the last one to finish) unless
`SPINE_TEST_DATABASE_URL` (or `DATABASE_URL`) names one. The controlling
pytest process migrates a template database once; every test gets its own
database cloned from it, named with the xdist worker id, so `pytest -n auto`
never shares state between tests.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from app import db, embedded
from app.migrations import apply_pending

ROOT = Path(__file__).resolve().parent.parent
TEST_STATE_DIR = ROOT / ".spine" / "test"

SERVER_ENV = "SPINE_TEST_SERVER_URL"
TEMPLATE_ENV = "SPINE_TEST_TEMPLATE"
_STARTED_EMBEDDED = "_SPINE_TEST_STARTED_EMBEDDED"


def _hide_developer_dotenv() -> None:
    """The suite runs on defaults, whatever a developer's ./.env says.

    Settings read `.env` beneath the environment, and an empty variable means
    "unset": so an empty value for each name the file sets hides it, in this
    process and in every process a test starts (they inherit the environment).
    """
    dotenv = ROOT / ".env"
    if not dotenv.is_file():
        return
    from honcho.environ import parse

    for name in parse(dotenv.read_text(encoding="utf-8")):
        os.environ.setdefault(name, "")


_hide_developer_dotenv()


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _only_unit_tests(config: pytest.Config) -> bool:
    """Whether every path asked for is under tests/unit: then no server is started."""
    unit = ROOT / "tests" / "unit"
    paths = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    return bool(paths) and all(p.is_relative_to(unit) for p in paths)


def pytest_configure(config: pytest.Config) -> None:
    if not _is_controller(config) or os.environ.get(TEMPLATE_ENV) or _only_unit_tests(config):
        return
    server = os.environ.get("SPINE_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not server:
        server = embedded.embedded_url(TEST_STATE_DIR)
        _users_dir().mkdir(parents=True, exist_ok=True)
        (_users_dir() / str(os.getpid())).touch()
        os.environ[_STARTED_EMBEDDED] = "1"
    template = f"spine_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{template}"')
    with db.connect(make_conninfo(server, dbname=template)) as conn:
        apply_pending(conn)
    # xdist workers are spawned after this hook and inherit the environment.
    os.environ[SERVER_ENV] = server
    os.environ[TEMPLATE_ENV] = template


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _is_controller(config) or TEMPLATE_ENV not in os.environ:
        return
    server, template = os.environ.pop(SERVER_ENV), os.environ.pop(TEMPLATE_ENV)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        # Databases a crashed test left behind.
        run = template.removeprefix("spine_tpl_")
        leftovers = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"spine_t_{run}_%",)
        ).fetchall()
        for (name,) in leftovers:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if os.environ.pop(_STARTED_EMBEDDED, None):
        (_users_dir() / str(os.getpid())).unlink(missing_ok=True)
        if not _other_live_users():
            embedded.stop(TEST_STATE_DIR)


def _users_dir() -> Path:
    """One file per pytest run using the shared embedded test server (named by pid)."""
    return TEST_STATE_DIR / "users"


def _other_live_users() -> bool:
    """Whether another pytest run still uses the server; files of dead runs are cleared."""
    alive = False
    for entry in _users_dir().iterdir():
        try:
            os.kill(int(entry.name), 0)
            alive = True
        except (ValueError, ProcessLookupError):
            entry.unlink(missing_ok=True)
        except PermissionError:
            alive = True
    return alive
