"""The backend hears every state change it must, whichever front end started it.

A recording backend (the backend interface, over the real local backend and
the real database) is handed to each front end the way it builds its own
once: the app's state (API and dashboard), the CLI's context object, the
scheduler's attribute. Every submit, cancel, retry, manual run and fire must
reach it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg
from click.testing import CliRunner
from litestar.testing import TestClient

from app.catalog import default_registry
from app.cli import main
from app.config import get_settings
from app.db import AsyncConn
from app.engine.backends import LocalBackend, OrchestratorBackend
from app.engine.executions import CancelOutcome
from app.engine.models import Execution
from app.server import create_app
from tests.support import wait_until
from worker.scheduler import Scheduler

Conn = psycopg.Connection[dict[str, object]]
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


class Recording:
    """An OrchestratorBackend that remembers what it heard: (what, execution id, source)."""

    name = "local"  # it hands everything to the local pool, which claims only its own

    def __init__(self) -> None:
        self._local = LocalBackend(get_settings())
        self.heard: list[tuple[str, str, str]] = []

    async def submit(self, conn: AsyncConn, execution: Execution) -> str | None:
        self.heard.append(("submit", execution.id, execution.trigger_source))
        return await self._local.submit(conn, execution)

    async def submit_many(self, conn: AsyncConn, batch: Sequence[Execution]) -> list[str | None]:
        return [await self.submit(conn, execution) for execution in batch]

    async def cancel(
        self, conn: AsyncConn, execution_id: str
    ) -> tuple[Execution | None, CancelOutcome]:
        self.heard.append(("cancel", execution_id, ""))
        return await self._local.cancel(conn, execution_id)

    async def retry(self, conn: AsyncConn, execution: Execution) -> None:
        self.heard.append(("retry", execution.id, ""))
        await self._local.retry(conn, execution)

    async def health(self, conn: AsyncConn) -> dict[str, Any]:
        return await self._local.health(conn)


def test_the_recording_backend_is_a_backend(database_url: str) -> None:
    assert isinstance(Recording(), OrchestratorBackend)


def newest(conn: Conn, source: str) -> str:
    row = conn.execute(
        "SELECT id FROM executions WHERE trigger_source = %s ORDER BY seq DESC LIMIT 1", (source,)
    ).fetchone()
    assert row is not None, f"no execution from {source}"
    return str(row["id"])


def test_api_and_dashboard_changes_reach_the_backend(database_url: str, conn: Conn) -> None:
    backend = Recording()
    app = create_app()
    app.state.backend = backend  # what create_app built once, replaced
    with TestClient(app) as client:
        client.follow_redirects = False
        made = client.post(
            "/api/v1/schedules", json={"name": "s", "pipeline": "noop", "interval_seconds": 3600}
        )
        assert made.status_code == 201, made.text
        submitted = client.post(
            "/api/v1/executions", json={"pipeline": "sleep", "params": {"seconds": 30}}
        )
        assert submitted.status_code == 202, submitted.text
        first = submitted.json()["id"]
        assert client.post(f"/api/v1/executions/{first}/cancel").status_code == 202
        assert client.post(f"/api/v1/executions/{first}/retry").status_code == 202
        manual = client.post("/api/v1/schedules/s/run")
        assert manual.status_code == 202, manual.text
        api_heard = [
            ("submit", first, "api"),
            ("cancel", first, ""),
            ("retry", first, ""),
            ("submit", manual.json()["id"], "manual"),
        ]
        assert backend.heard == api_heard

        page = client.get(f"/ui/executions/{first}")
        found = CSRF_FIELD.search(page.text)
        assert page.status_code == 200 and found, page.text
        form = {"_csrf_token": found.group(1)}
        assert client.post(f"/ui/executions/{first}/cancel", data=form).status_code == 303
        assert client.post(f"/ui/executions/{first}/retry", data=form).status_code == 303
    assert backend.heard == [*api_heard, ("cancel", first, ""), ("retry", first, "")]
    assert conn.execute("SELECT status FROM executions WHERE id = %s", (first,)).fetchone() == {
        "status": "pending"
    }


def spine(backend: Recording, *args: str) -> str:
    """A CLI command with `backend` as its context object (what `cli_backend` takes)."""
    result = CliRunner().invoke(main, list(args), obj=backend)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_changes_reach_the_backend(database_url: str, conn: Conn) -> None:
    backend = Recording()
    spine(backend, "schedules", "add", "s", "noop", "--every", "1h")
    spine(backend, "run", "sleep", "-p", "seconds=30")
    first = newest(conn, "cli")
    spine(backend, "executions", "cancel", first)
    spine(backend, "executions", "retry", first)
    spine(backend, "executions", "cancel", first)
    spine(backend, "executions", "retry", "--status", "cancelled", "--yes")
    manual = spine(backend, "schedules", "run", "s").strip()
    assert backend.heard == [
        ("submit", first, "cli"),
        ("cancel", first, ""),
        ("retry", first, ""),
        ("cancel", first, ""),
        ("retry", first, ""),
        ("submit", manual, "manual"),
    ]


def test_scheduler_fires_reach_the_backend(database_url: str, conn: Conn) -> None:
    backend = Recording()
    spine(backend, "schedules", "add", "tick", "noop", "--every", "1s")
    scheduler = Scheduler(get_settings(), database_url, default_registry())
    scheduler.backend = backend
    scheduler.start()
    try:
        wait_until(lambda: len(backend.heard) >= 2, timeout=30)
    finally:
        scheduler.stop()
    fired = {
        str(r["id"])
        for r in conn.execute("SELECT id FROM executions WHERE trigger_source = 'schedule'")
    }
    assert len(fired) >= 2
    assert {(what, source) for what, _, source in backend.heard} == {("submit", "schedule")}
    assert {execution_id for _, execution_id, _ in backend.heard} == fired
