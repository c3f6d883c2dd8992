"""The served OpenAPI document agrees with the server: schemathesis, every check, no finding.

A real uvicorn server (in a thread) on a migrated database; schemathesis reads
the document the server serves and, for every operation, sends valid and
invalid requests generated from it, running all its checks on each answer
(status codes, content types, headers and bodies as documented, invalid data
refused, valid data accepted, auth enforced as documented, unsupported methods
answered 405 with Allow). Once without a token configured and once with one
(the document then says which calls need it). Derandomized and bounded.

Two settings of the checks, both about what a schema cannot say:
- schema-valid data may be answered 422: the API's "well formed, but not
  acceptable here" (a file that does not exist, a range that ends before it
  starts, a week that is not a Monday, a cron expression that never fires).
  A 400 still fails the check: it means the document promised too much.
- positive cases leave `cursor` out: only the server makes cursors, so a
  generated one is never valid; negative cases still send malformed ones.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from app.config import get_settings
from app.server import create_app
from tests.support import ROOT, run_inline, wait_until

schemathesis = pytest.importorskip("schemathesis")

pytestmark = [
    pytest.mark.slow,
    # The server's thread moves the global `random` (psycopg_pool's jitter) while
    # hypothesis draws an example; no strategy of ours uses it.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

TOKEN = "conformance-token-0123456789"
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"""
EXAMPLES = 25  # per operation and generation mode
MIN_CASES = 1_000


def _serve(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[str]:
    import uvicorn

    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(), log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=30)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _kinds(failure: BaseException) -> list[str]:
    """The finding's kinds as schemathesis titles them ("ST202 Schema-valid request rejected")."""
    return [line[2:] for line in str(failure).splitlines() if line.startswith("- ")] or ["?"]


class _Run:
    """One schemathesis run over every operation; what it saw and what it found."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url = base_url
        self.headers = headers
        self.cases = 0
        self.statuses: Counter[int] = Counter()
        self.findings: dict[str, str] = {}  # by operation, mode and kind: the first report

    def operation(self, operation: Any, mode: Any) -> None:
        from schemathesis import GenerationMode
        from schemathesis.core.failures import FailureGroup

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            self.cases += 1
            if mode is GenerationMode.POSITIVE and isinstance(case.query, dict):
                case.query.pop("cursor", None)
            try:
                response = case.call_and_validate(base_url=self.base_url, headers=self.headers)
                self.statuses[response.status_code] += 1
            except (AssertionError, FailureGroup) as failure:  # findings, with a curl line
                for kind in _kinds(failure):
                    key = f"{operation.label} [{mode.value}] {kind}"
                    self.findings.setdefault(key, str(failure)[:1500])

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing invalid to send


def _run(base_url: str, headers: dict[str, str]) -> _Run:
    """Every operation, valid and invalid inputs, every check schemathesis has."""
    from schemathesis import GenerationMode
    from schemathesis.checks import CHECKS, load_all_checks
    from schemathesis.config import SchemathesisConfig

    config = SchemathesisConfig.from_str(CONFIG)
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json", config=config)
    load_all_checks()
    checks = schema.config.checks_config_for(operation=None, phase=None)
    assert all(checks.get_by_name(name=name).enabled for name in CHECKS.get_all_names())
    run = _Run(base_url, headers)
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run.operation(result.ok(), mode)
    return run


async def _ingest(database_url: str) -> None:
    execution = await run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
    assert execution.status == "completed", execution.error


@pytest.mark.parametrize("token", ["", TOKEN], ids=["no-token", "token"])
def test_schemathesis_finds_nothing_with_every_check(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    token: str,
) -> None:
    asyncio.run(_ingest(database_url))
    env = {"SPINE_API_TOKEN": token} if token else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for base_url in _serve(monkeypatch, **env):
        run = _run(base_url, headers)
    found = run.findings
    with capsys.disabled():
        statuses = dict(sorted(run.statuses.items()))
        label = "token" if token else "no token"
        print(f"\nschemathesis ({label}): {run.cases} cases, {statuses}, {len(found)} findings")
    assert not found, "\n".join(sorted(found)) + "\n\n" + "\n\n".join(list(found.values())[:40])
    assert run.cases >= MIN_CASES
