"""A publisher in the test process: real HTTP over a socket, serving real files, with faults.

There is no internet in the tests (nor in CI). `Publisher` is a threaded HTTP
server on 127.0.0.1 that serves any directory tree under any URL layout
(`routes`: URL prefix -> directory), with validators (a strong `ETag` from the
content, `Last-Modified` from the file's mtime, 304 on a match), optional
zipping (`/x.txt.zip` serves `x.txt` in a zip, the SEC's way) and HEAD. Faults
are queued per URL path and used one per request: a status (503, 429 with
`Retry-After`, ...) or a body cut halfway (the connection dropped after half
of the announced `Content-Length`). `new_etag(path)` serves the same bytes under
a new ETag (a publisher that regenerates its validators). It counts every
request, and the most requests in flight at once per host (the politeness tests).

`FinraQueryApi` is a STAND-IN for FINRA's Query API, not FINRA's service: the
subset Market Spine uses, built from the committed weekly files. `POST
/data/group/otcMarket/name/weeklySummary` with `compareFilters` (equal) on
`weekStartDate`, `tierIdentifier` and `summaryTypeCode`, `limit` and `offset`,
answered as pipe-delimited text with a header (its columns in another order
than the files', plus fields the files lack); and the OAuth2 token endpoint
(`POST /fip/rest/ews/oauth2/access_token?grant_type=client_credentials`, Basic
auth). With credentials configured, the query requires the bearer token.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import json
import re
import secrets
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["Fault", "FinraQueryApi", "Publisher", "serving"]

API_PATH = "/data/group/otcMarket/name/weeklySummary"
TOKEN_PATH = "/fip/rest/ews/oauth2/access_token"
API_FIELDS = (
    "tierIdentifier",
    "weekStartDate",
    "summaryTypeCode",
    "issueSymbolIdentifier",
    "MPID",
    "marketParticipantName",
    "tierDescription",
    "issueName",
    "totalWeeklyTradeCount",
    "totalWeeklyShareQuantity",
    "lastUpdateDate",
    "productTypeCode",
)
"""The stand-in's columns: another order than the files', and fields they lack."""
_TIER_IDS = {"OTC": "OTC", "NMS Tier 1": "T1", "NMS Tier 2": "T2"}
_WEEK_IN_NAME = re.compile(r"(\d{4})(\d{2})(\d{2})\.\w+$")


@dataclass(frozen=True)
class Fault:
    """One request's fault: `status` (with `headers`, `body`), or `cut` (half the body)."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut: bool = False


@dataclass
class FinraQueryApi:
    """The Query API stand-in's data: the weekly files of each summary type."""

    files: Mapping[str, Sequence[Path]]
    credentials: tuple[str, str] | None = None
    token_lifetime: int = 1800
    tokens_issued: int = 0
    _tokens: set[str] = field(default_factory=set)

    def rows(self, filters: Mapping[str, str]) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        summary = filters.get("summaryTypeCode", "")
        for path in self.files.get(summary, ()):
            named = _WEEK_IN_NAME.search(path.name)
            assert named, path
            week = f"{named[1]}-{named[2]}-{named[3]}"
            if filters.get("weekStartDate", week) != week:
                continue
            with path.open(encoding="utf-8") as f:
                header = f.readline().rstrip("\n").split("|")
                for line in f:
                    row = dict(zip(header, line.rstrip("\n").split("|"), strict=True))
                    row["tierIdentifier"] = _TIER_IDS[row["tierDescription"]]
                    if (
                        filters.get("tierIdentifier", row["tierIdentifier"])
                        != row["tierIdentifier"]
                    ):
                        continue
                    row.update(weekStartDate=week, summaryTypeCode=summary, productTypeCode="OTC")
                    found.append(row)
        return found


class Publisher:
    """The server. `routes`: URL prefix -> directory; `latency`: seconds each answer waits
    (so requests overlap when the client allows it)."""

    def __init__(
        self,
        routes: Mapping[str, Path] | None = None,
        *,
        api: FinraQueryApi | None = None,
        latency: float = 0.0,
    ) -> None:
        self.routes = dict(routes or {})
        self.api = api
        self.latency = latency
        self.faults: dict[str, list[Fault]] = {}
        self.etag_generations: Counter[str] = Counter()
        self.requests: list[tuple[str, str, int]] = []
        self.statuses: Counter[int] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.user_agents: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fault(self, path: str, *faults: Fault) -> None:
        """Queue faults for `path`: the next requests of it get them, one each, in order."""
        with self._lock:
            self.faults.setdefault(path, []).extend(faults)

    def new_etag(self, path: str) -> None:
        """Serve `path`'s same bytes under a new ETag from now on."""
        with self._lock:
            self.etag_generations[path] += 1

    def count(self, path: str | None = None, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for _, p, s in self.requests
                if (path is None or p == path) and (status is None or s == status)
            )

    # ---------------------------------------------------------------- used by the handler

    def _enter(self, user_agent: str) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.user_agents.add(user_agent)

    def _answered(self, method: str, path: str, status: int) -> None:
        """Count a request, and end it in flight, as its answer starts: the client may act
        on the answer (a test look at the counts, a polite client send its next request)
        before the handler's thread runs again."""
        with self._lock:
            self.in_flight -= 1
            self.requests.append((method, path, status))
            self.statuses[status] += 1

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            queued = self.faults.get(path)
            return queued.pop(0) if queued else None

    def _file(self, path: str) -> tuple[bytes, float] | None:
        """The body and mtime served at `path`, zipped for a `.zip` of a served file."""
        for prefix, root in self.routes.items():
            if not path.startswith(prefix):
                continue
            relative = path[len(prefix) :].lstrip("/")
            target = (root / relative).resolve()
            if target.is_relative_to(root.resolve()) and target.is_file():
                return target.read_bytes(), target.stat().st_mtime
            if relative.endswith(".zip"):
                inner = (root / relative.removesuffix(".zip")).resolve()
                if inner.is_relative_to(root.resolve()) and inner.is_file():
                    out = io.BytesIO()
                    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                        z.writestr(inner.name, inner.read_bytes())
                    return out.getvalue(), inner.stat().st_mtime
        return None


def _handler(publisher: Publisher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_POST(self) -> None:
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            self._path, self._counted = path, False
            publisher._enter(self.headers.get("User-Agent", ""))
            try:
                if publisher.latency:
                    time.sleep(publisher.latency)  # the publisher's own latency, not a sync
                self._answer(path, head)
            finally:
                if not self._counted:  # the handler failed before it answered: status 0
                    publisher._answered(self.command, path, 0)

        def _answer(self, path: str, head: bool) -> int:
            length = int(self.headers.get("Content-Length") or 0)
            request_body = self.rfile.read(length) if length else b""
            fault = publisher._next_fault(path)
            if fault is not None and fault.status is not None:
                return self._send(fault.status, fault.body, dict(fault.headers), head=head)
            if publisher.api is not None and path == TOKEN_PATH and self.command == "POST":
                return self._token()
            if publisher.api is not None and path == API_PATH:
                if self.command != "POST":
                    return self._send(405, b"POST only\n", {}, head=head)
                return self._query(request_body, fault)
            found = publisher._file(path)
            if found is None:
                return self._send(404, b"Not Found\n", {}, head=head)
            body, mtime = found
            generation = publisher.etag_generations[path]
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + f'-{generation}"'
            modified = email.utils.formatdate(mtime, usegmt=True)
            validators = {"ETag": etag, "Last-Modified": modified}
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", validators, head=True)
            since = self.headers.get("If-Modified-Since")
            if since and self.headers.get("If-None-Match") is None:
                when = email.utils.parsedate_to_datetime(since).timestamp()
                if int(mtime) <= when:
                    return self._send(304, b"", validators, head=True)
            return self._send(200, body, validators, head=head, cut=bool(fault and fault.cut))

        def _token(self) -> int:
            api = publisher.api
            assert api is not None
            expected = api.credentials
            given = self.headers.get("Authorization", "")
            if expected is not None:
                basic = "Basic " + base64.b64encode(":".join(expected).encode()).decode()
                if given != basic:
                    return self._send(401, b'{"error": "invalid_client"}\n', {}, head=False)
            token = secrets.token_hex(16)
            api._tokens.add(token)
            api.tokens_issued += 1
            answer = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": api.token_lifetime,
            }
            return self._send(200, json.dumps(answer).encode(), {}, head=False)

        def _query(self, request_body: bytes, fault: Fault | None) -> int:
            api = publisher.api
            assert api is not None
            if api.credentials is not None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token not in api._tokens:
                    return self._send(401, b"Unauthorized: a bearer token is required\n", {})
            try:
                asked = json.loads(request_body)
                filters = {
                    f["fieldName"]: str(f["fieldValue"])
                    for f in asked.get("compareFilters", [])
                    if str(f.get("compareType", "")).lower() == "equal"
                }
                limit, offset = int(asked.get("limit", 1000)), int(asked.get("offset", 0))
            except (ValueError, KeyError, TypeError):
                return self._send(400, b"Bad Request: the body is not a query\n", {})
            rows = api.rows(filters)[offset : offset + limit]
            if not rows and offset == 0:
                return self._send(204, b"", {})
            lines = ["|".join(API_FIELDS)] + [
                "|".join(row[name] for name in API_FIELDS) for row in rows
            ]
            body = ("\n".join(lines) + "\n").encode()
            return self._send(
                200, body, {"Content-Type": "text/plain"}, cut=bool(fault and fault.cut)
            )

        def _send(
            self,
            status: int,
            body: bytes,
            headers: Mapping[str, str],
            *,
            head: bool = False,
            cut: bool = False,
        ) -> int:
            publisher._answered(self.command, self._path, status)
            self._counted = True
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            if not head and status not in (204, 304):
                self.wfile.write(body[: len(body) // 2] if cut else body)
            if cut:
                self.wfile.flush()
                self.close_connection = True
            return status

    return Handler


@contextmanager
def serving(publisher: Publisher) -> Iterator[Publisher]:
    """Start the publisher for a block; it is stopped (and its thread joined) after."""
    publisher.start()
    try:
        yield publisher
    finally:
        publisher.stop()
