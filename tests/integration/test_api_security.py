"""Abuse and access: body limits, hostile JSON, NUL bytes, bearer tokens, errors without leaks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from litestar.exceptions import InternalServerException
from litestar.testing import RequestFactory

from app.errors import Conflict, InvalidParams, InvalidRequest, NotFound, UnknownPipeline
from app.web.problems import problem_for
from app.web.security import MAX_JSON_DEPTH
from tests.api_support import Client, api_client, problem

URL = "/api/v1/executions"
TOKEN = "s3cret-token-0123456789"


@pytest.fixture
async def client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("SPINE_MAX_BODY_BYTES", "4096")
    async with api_client() as c:
        yield c


# ------------------------------------------------------------------ bodies


async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    padding = "x" * 5000
    response = await client.post(URL, json={"pipeline": "noop", "logical_key": padding})
    body = problem(response, 413)
    assert "4096" in body["detail"]


async def test_a_streamed_body_over_the_limit_is_413(client: Client) -> None:
    """Chunked, with no Content-Length to trust: the limit counts bytes as they arrive.

    The test client always sends one buffered body, so this speaks ASGI to the app itself.
    """
    chunks = [b'{"pipeline": "noop", "logical_key": "', *[b"y" * 1000] * 10, b'"}']
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": URL, "raw_path": URL.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("test", 80),
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                    (b"transfer-encoding", b"chunked")],
        "state": {},
    }  # fmt: skip
    await client.app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert received < len(chunks)  # refused before the whole body was read
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"body-too-large" in body


async def test_a_body_just_under_the_limit_is_read(client: Client) -> None:
    content = b'{"pipeline": "noop", "params": {}}' + b" " * 4000
    assert len(content) <= 4096
    assert (await client.post(URL, content=content)).status_code == 202


@pytest.mark.parametrize(
    "content",
    [
        b'{"pipeline": "\xff\xfe"}',
        b'{"pipeline": "noop", "logical_key": "\xc3\x28"}',
        b'["\x80"]',
    ],
)
async def test_invalid_utf8_is_400(client: Client, content: bytes) -> None:
    body = problem(await client.post(URL, content=content), 400)
    assert "UTF-8" in body["detail"]


@pytest.mark.parametrize(
    "depth",
    [
        MAX_JSON_DEPTH + 1,
        1_000,  # deeper than anything a pipeline takes, shallower than the decoder's limit
        100_000,  # past the decoder's own limit (it raises RecursionError)
    ],
)
async def test_deeply_nested_json_is_400(database_url: str, depth: int) -> None:
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    content = b'{"pipeline": "noop", "params": ' + nested + b"}"
    async with api_client() as client:  # the default 1 MiB limit
        body = problem(await client.post(URL, content=content), 400)
        assert "nested" in body["detail"]
        body = problem(await client.post(URL, content=b"[" * depth + b"]" * depth), 400)
        assert "nested" in body["detail"]


async def test_nesting_within_the_limit_reaches_params_validation(client: Client) -> None:
    nested = b'{"a":' * 10 + b"1" + b"}" * 10
    content = b'{"pipeline": "noop", "params": ' + nested + b"}"
    problem(await client.post(URL, content=content), 422)  # noop takes no params


@pytest.mark.parametrize(
    "payload",
    [
        {"pipeline": "noop\u0000"},
        {"pipeline": "noop", "logical_key": "a\u0000b"},
        {"pipeline": "sleep", "params": {"seconds\u0000": 1}},
    ],
)
async def test_nul_in_a_json_string_is_400(client: Client, payload: dict[str, object]) -> None:
    body = problem(await client.post(URL, json=payload), 400)
    assert "NUL" in body["detail"]


@pytest.mark.parametrize(
    "url",
    [
        f"{URL}?pipeline=no%00op",
        f"{URL}?cursor=%00",
        f"{URL}/abc%00def",
        f"{URL}/abc%00def/events",
        "/api/v1/otc/metrics/daily?sym%00bol=ACME",
    ],
)
async def test_nul_in_the_url_is_400(client: Client, url: str) -> None:
    body = problem(await client.get(url), 400)
    assert "NUL" in body["detail"]


async def test_unknown_route_and_wrong_method_are_problems(client: Client) -> None:
    problem(await client.get("/api/v1/nothing-here"), 404)
    response = await client.delete(f"{URL}/some-id")
    problem(response, 405)
    assert "GET" in response.headers.get("allow", "")


# ------------------------------------------------------------------ access


@pytest.fixture
async def guarded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("SPINE_API_TOKEN", TOKEN)
    async with api_client() as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        bearer(TOKEN[:-1]),
        bearer(TOKEN + "x"),
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        bearer(""),
        {"Authorization": "Bearer \xe9t\xe9"},  # not ASCII: sent as latin-1 bytes
    ],
)
async def test_mutations_need_the_token(guarded: Client, headers: dict[str, str]) -> None:
    raw = {k.encode(): v.encode("latin-1") for k, v in headers.items()}
    response = await guarded.post(URL, json={"pipeline": "noop"}, headers=raw)
    body = problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    for value in headers.values():
        assert value.split()[-1] not in response.text or value.split()[-1] == "Bearer"
    assert "Bearer" in body["detail"]


async def test_the_token_is_checked_before_the_body_is_read(guarded: Client) -> None:
    """An anonymous client cannot make the server parse (or buffer) anything."""
    problem(await guarded.post(URL, content=b"{not json"), 401)
    problem(await guarded.post(URL, content=b"x" * 2_000_000), 401)


async def test_the_right_token_is_accepted_and_reads_stay_open(guarded: Client) -> None:
    response = await guarded.post(URL, json={"pipeline": "noop"}, headers=bearer(TOKEN))
    assert response.status_code == 202
    execution_id = response.json()["id"]
    lowercase = {"authorization": f"bearer {TOKEN}"}
    assert (await guarded.get(URL)).status_code == 200
    assert (await guarded.get(f"{URL}/{execution_id}")).status_code == 200
    assert (await guarded.get("/api/v1/otc/metrics/daily")).status_code == 200
    problem(await guarded.post(f"{URL}/{execution_id}/cancel"), 401)
    cancel = await guarded.post(f"{URL}/{execution_id}/cancel", headers=lowercase)
    assert cancel.status_code == 202


async def test_reads_need_the_token_when_configured(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINE_API_TOKEN", TOKEN)
    monkeypatch.setenv("SPINE_API_TOKEN_READS", "1")
    async with api_client() as client:
        for path in (URL, f"{URL}/x", "/api/v1/otc/trades?symbol=ACME", "/api/v1/pipelines"):
            problem(await client.get(path), 401)
            assert (await client.get(path, headers=bearer(TOKEN))).status_code in {200, 404}
        # Probes and the API description stay open for orchestrators and humans.
        assert (await client.get("/api/v1/health")).status_code == 200
        assert (await client.get("/api/v1/health/ready")).status_code == 200
        assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_no_token_configured_means_open(client: Client) -> None:
    assert (await client.post(URL, json={"pipeline": "noop"})).status_code == 202


async def test_secrets_never_reach_logs(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SPINE_API_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    async with api_client() as client:
        await client.post(URL, json={"pipeline": "noop"}, headers=bearer("guess-" + TOKEN[:5]))
        await client.post(URL, json={"pipeline": "noop"}, headers=bearer(TOKEN))
        await client.post(URL, json={"pipeline": "nope"}, headers=bearer(TOKEN))
    assert TOKEN not in caplog.text
    assert "guess-" not in caplog.text


# ------------------------------------------------------------------ server errors


async def test_an_unexpected_error_is_a_generic_500_with_the_traceback_logged(
    client: Client,
    conn: psycopg.Connection[dict[str, object]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real fault (a column the code needs is gone), not a mock: 500, nothing leaked."""
    # Reads go through the executions_all view (hot and history tiers): break it there.
    conn.execute("ALTER VIEW executions_all RENAME COLUMN error TO error_gone")
    caplog.set_level(logging.ERROR, logger="app.api")
    response = await client.get(URL)
    body = problem(response, 500)
    assert body["type"].endswith("internal-error")
    assert "error_gone" not in response.text and "column" not in response.text
    reference = body["detail"].rsplit(" ", 1)[-1]
    record = next(r for r in caplog.records if reference in r.getMessage())
    assert record.exc_info is not None  # the traceback is in the log, not the answer
    assert "GET /api/v1/executions" in record.getMessage()


# ------------------------------------------------------------------ the mapping itself


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        (NotFound("no execution 'x'"), 404, "not-found"),
        (Conflict("already finished"), 409, "conflict"),
        (UnknownPipeline("nope", ["noop"]), 422, "unknown-pipeline"),
        (InvalidParams("bad `params.x`"), 422, "invalid-params"),
        (InvalidRequest("bad lane"), 422, "invalid-request"),
        (psycopg.errors.NumericValueOutOfRange("out of range"), 400, "invalid-value"),
        (psycopg.OperationalError("connection refused"), 503, "database-unavailable"),
        (InternalServerException("client disconnected prematurely"), 400, "client-disconnected"),
        (InternalServerException("something broke"), 500, "internal-error"),
        (RuntimeError("boom at /secret/path"), 500, "internal-error"),
    ],
)
def test_every_error_maps_to_one_problem(exc: Exception, status: int, kind: str) -> None:
    request = RequestFactory().get("/api/v1/executions/x")
    problem_doc, headers = problem_for(request, exc)
    assert problem_doc.status == status
    assert problem_doc.type.endswith(kind)
    assert problem_doc.instance == "/api/v1/executions/x"
    if status >= 500:
        assert "boom" not in (problem_doc.detail or "")
        assert "disconnected" not in (problem_doc.detail or "")
    else:
        assert problem_doc.detail
    if status == 503:
        assert headers["Retry-After"]
    if isinstance(exc, UnknownPipeline):
        assert problem_doc.known_pipelines == ["noop"]
