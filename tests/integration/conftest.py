"""Fixtures of the integration tests: a fresh database per test, cloned from the template.

The server and the migrated template are set up once per run by the root
`tests/conftest.py` (its `pytest_configure`).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from app import db
from app.config import get_settings
from tests.celery_support import Backend, amqp_or_skip, delete_queues, new_prefix
from tests.conftest import SERVER_ENV, TEMPLATE_ENV

_counter = itertools.count()


def _fresh_database_name() -> str:
    run = os.environ[TEMPLATE_ENV].removeprefix("spine_tpl_")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    return f"spine_t_{run}_{worker}_{os.getpid()}_{next(_counter)}"


@pytest.fixture
def database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database; DATABASE_URL and the settings point at it."""
    server, template = os.environ[SERVER_ENV], os.environ[TEMPLATE_ENV]
    name = _fresh_database_name()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = make_conninfo(server, dbname=name)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SPINE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    try:
        yield url
    finally:
        get_settings.cache_clear()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[dict[str, object]]]:
    """An autocommit connection to the test's database."""
    with db.connect(database_url) as connection:
        yield connection


@pytest.fixture
def server_url() -> str:
    """The test server's maintenance URL, for tests that create databases of their own."""
    return os.environ[SERVER_ENV]


@pytest.fixture
def bare_url(server_url: str) -> Iterator[str]:
    """An empty database with no migration applied (for migration tests), dropped after."""
    name = f"spine_bare_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["local", "celery"])
def backend(
    request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """Each backend in turn (tests that hold for both): its settings apply to this process
    and to the workers it starts. The Celery one needs a broker (see tests/celery_support)."""
    if request.param == "local":
        yield Backend("local")
        return
    chosen = Backend("celery", amqp_or_skip(), new_prefix())
    for name, value in chosen.env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield chosen
    finally:
        get_settings.cache_clear()
        assert chosen.amqp_url is not None and chosen.prefix is not None
        delete_queues(chosen.amqp_url, chosen.prefix)
