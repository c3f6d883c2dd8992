"""Property-based requests generated from the served OpenAPI document find no 5xx.

The app runs under a real uvicorn server (in a thread of this process) on a
migrated database holding the ingested sample; schemathesis reads the document
from that server and, for every operation, sends hypothesis-generated valid
and invalid requests over HTTP. Derandomized, with a fixed number of examples,
so a run is repeatable and stays within seconds.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from app.config import get_settings
from app.server import create_app
from tests.support import ROOT, run_inline, wait_until

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES_PER_OPERATION = 40  # per generation mode (valid, invalid)


@pytest.fixture
def server(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """uvicorn serving create_app() on a free port; yields the base URL."""
    import uvicorn

    monkeypatch.setenv("SPINE_DATA_DIR", str(ROOT / "data"))
    get_settings.cache_clear()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(), log_level="warning", access_log=False, lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: uv.started or not thread.is_alive(), timeout=30)
        assert uv.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        sock.close()


async def _ingest(database_url: str) -> None:
    execution = await run_inline(database_url, "otc_ingest", {"file": "otc_sample.csv"})
    assert execution.status == "completed", execution.error


# Hypothesis warns when the global `random` moves while it draws an example, taking it
# for a strategy that uses `random`. Ours do not: the server's thread does, when its
# connection pool grows (psycopg_pool jitters each connection's lifetime).
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_generated_requests_never_get_a_5xx(
    database_url: str, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from schemathesis import GenerationMode

    checks = schemathesis.checks
    every_check = [
        checks.not_a_server_error,
        checks.status_code_conformance,  # every status answered is documented
        checks.content_type_conformance,
        checks.response_schema_conformance,  # bodies match their documented schemas
        checks.response_headers_conformance,
    ]

    asyncio.run(_ingest(database_url))
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    tried: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: Any) -> None:
                response = case.call(base_url=server, timeout=30)
                tried[case.operation.label] += 1
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    curl = case.as_curl_command()
                    server_errors.append(f"{response.status_code} {curl} -> {response.text[:300]}")
                case.validate_response(response, checks=every_check)

            try:
                check()
            except Unsatisfiable:
                # Nothing to get wrong (no parameters, no body): no invalid request exists.
                assert mode is GenerationMode.NEGATIVE, operation.label

    submissions = _fuzz_submissions(server, statuses, server_errors)
    tried["POST /api/v1/executions (registered pipelines)"] += submissions
    total = sum(tried.values())
    with capsys.disabled():
        print(f"\nfuzz: {total} requests over {len(tried)} operations; statuses {dict(statuses)}")
    assert not server_errors, "\n".join(server_errors)
    assert len(tried) == len(list(schema.get_all_operations())) + 1
    assert total >= len(tried) * 10


# Generated-from-the-schema bodies almost never name a real pipeline; these always
# do, so each pipeline's own params validation (paths, dates, numbers) gets fuzzed.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_paths = st.sampled_from(
    [
        "otc_sample.csv",
        "../pyproject.toml",
        "/etc/passwd",
        "x" * 300,
        "a/" * 200 + "b",
        ".",
        "",
        " ",
        "data/",
    ]
) | st.text(max_size=40)
_params = st.dictionaries(
    st.sampled_from(["file", "seconds", "start_date", "end_date", "symbol"]) | st.text(max_size=8),
    _json | _paths | st.sampled_from(["2026-01-06", "2026-02-30", "ACME", "acme!"]),
    max_size=3,
)


def _fuzz_submissions(server: str, statuses: Counter[int], server_errors: list[str]) -> int:
    import httpx

    with httpx.Client(base_url=server, timeout=30) as client:
        pipelines = [p["name"] for p in client.get("/api/v1/pipelines").json()]
        bodies = st.fixed_dictionaries(
            {"pipeline": st.sampled_from(pipelines)},
            optional={
                "params": _params,
                "lane": st.sampled_from(["normal", "backfill"]),
                "logical_key": st.text(min_size=1, max_size=30),
            },
        )
        sent = 0

        @settings(
            max_examples=EXAMPLES_PER_OPERATION * 4,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(body=bodies)
        @example(body={"pipeline": "otc_ingest", "params": {"file": "x" * 300}})  # ENAMETOOLONG
        @example(body={"pipeline": "otc_ingest", "params": {"file": "../../etc/passwd"}})
        @example(body={"pipeline": "otc_ingest", "params": {"file": "/dev/zero"}})
        @example(body={"pipeline": "otc_ingest", "params": {"file": "data"}})  # a directory
        @example(body={"pipeline": "otc_compute_metrics", "params": {"symbol": "ACME"}})
        @example(body={"pipeline": "otc_compute_metrics", "params": {"start_date": "2026-02-30"}})
        @example(body={"pipeline": "sleep", "params": {"seconds": 1e308}})
        @example(body={"pipeline": "noop", "params": {"n": 10**40}})
        def submit(body: dict[str, Any]) -> None:
            nonlocal sent
            response = client.post("/api/v1/executions", json=body)
            sent += 1
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                server_errors.append(
                    f"POST {body!r} -> {response.status_code} {response.text[:300]}"
                )
            assert response.status_code in {200, 202, 400, 422}, (body, response.text)

        submit()
    return sent
