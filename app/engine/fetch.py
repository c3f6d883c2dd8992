"""The fetcher: one partition's file from a publisher into the landing area, carefully.

On httpx (streaming bodies, timeouts, proxies from the standard environment
variables). What it promises:

- **Conditional**: the last fetch's validators go out as `If-None-Match` /
  `If-Modified-Since`; a 304 is `not_modified` and lands nothing.
- **Integrity**: the body streams to a temporary file beside the landed one
  (a name no landing pattern matches), hashed (sha256) while it is written;
  a `Content-Length` that the body does not reach is a transient error; a zip
  (the SEC's) is unpacked (one member); only then is it renamed over the
  landed path, atomically. A failed or cut download never leaves a partial
  file where an ingest could find it.
- **Not published is no error**: 404, 403 and 410 for a file, and an empty
  first page of an API, are `not_published`.
- **Errors**: 5xx, timeouts and dropped connections are `SourceUnavailable`
  (retryable under the pipeline's policy); a `Retry-After` on a 429 or 503 is
  `TryAgainAt` (no attempt used); any other 4xx is `SourceRefused`, permanent,
  with the status and the body's first line.

Errors (the hierarchy):

    SourceUnavailable     transient: 5xx, timeout, reset, truncated body   -> retried
    SourceRefused         permanent: another 4xx, a bad (complete) zip      -> failed
     └── ContactRequired  an SEC source without SPINE_HTTP_USER_AGENT       -> failed
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
import time
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx

from app.config import Settings
from app.engine.datasets import Partition
from app.engine.sources import PagedQuery, RemoteSource, TokenEndpoint
from app.errors import InvalidRequest, SpineError, TryAgainAt

__all__ = [
    "NOT_PUBLISHED",
    "ContactRequired",
    "Fetched",
    "Previous",
    "SourceRefused",
    "SourceUnavailable",
    "fetch_file",
    "fetch_pages",
    "new_client",
    "require_contact",
]

NOT_PUBLISHED = frozenset({403, 404, 410})
"""Statuses a publisher answers for a file it has not (yet) published."""
_CHUNK = 1024 * 1024
_FIRST_LINE = 200


class SourceUnavailable(Exception):
    """A transient failure of the publisher or the network: retried."""


class SourceRefused(SpineError):
    """The publisher refused the request for good (a 4xx), or sent what cannot land."""


class ContactRequired(InvalidRequest):
    """The publisher wants a User-Agent naming a contact, and none is configured."""


@dataclass(frozen=True)
class Previous:
    """The last materialization's source: what a conditional request and the
    "found unchanged" check compare with."""

    url: str | None
    validators: Mapping[str, str]
    sha256: str | None
    id: int | None = None
    """The materialization's id (whose validators a same body under new ones refreshes)."""


@dataclass(frozen=True)
class Fetched:
    """What one fetch came to. `path`, `bytes` and `sha256` are the landed file's
    (after unzipping) when `outcome` is `fetched`."""

    outcome: Literal["fetched", "not_modified", "not_published"]
    url: str
    status: int
    path: Path | None = None
    bytes: int | None = None
    sha256: str | None = None
    validators: Mapping[str, str] | None = None


def require_contact(source: RemoteSource, settings: Settings) -> None:
    """Refuse a source whose publisher wants a contact when SPINE_HTTP_USER_AGENT is unset."""
    if source.contact_required and not settings.http_user_agent:
        raise ContactRequired(
            f"source {source.name}: set SPINE_HTTP_USER_AGENT to a User-Agent naming a "
            "contact (the publisher refuses requests without one)"
        )


def new_client(settings: Settings) -> httpx.AsyncClient:
    """The client every fetch uses: the User-Agent, the timeouts, proxies from the
    standard environment variables (trust_env)."""
    headers = {"User-Agent": settings.http_user_agent or "market-spine"}
    timeout = httpx.Timeout(settings.http_timeout)
    return httpx.AsyncClient(headers=headers, timeout=timeout, trust_env=True)


async def fetch_file(
    client: httpx.AsyncClient,
    source: RemoteSource,
    url: str,
    dest: Path,
    previous: Previous | None,
) -> Fetched:
    """GET `url` into `dest` (conditional on `previous`'s validators for the same URL)."""
    headers: dict[str, str] = {}
    if previous is not None and previous.url == url:
        if etag := previous.validators.get("etag"):
            headers["If-None-Match"] = etag
        if modified := previous.validators.get("last_modified"):
            headers["If-Modified-Since"] = modified
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return Fetched("not_modified", url, 304)
            if response.status_code in NOT_PUBLISHED:
                return Fetched("not_published", url, response.status_code)
            await _raise_for(response, url)
            validators = {
                name: value
                for name, value in (
                    ("etag", response.headers.get("ETag")),
                    ("last_modified", response.headers.get("Last-Modified")),
                )
                if value
            }
            expected = response.headers.get("Content-Length")
            with _Landing(dest) as landing:
                async for chunk in response.aiter_raw(_CHUNK):
                    landing.write(chunk)
                if expected is not None and landing.size != int(expected):
                    raise SourceUnavailable(
                        f"{url}: body cut off at {landing.size} of {expected} bytes"
                    )
                try:
                    size, sha = await asyncio.to_thread(landing.land, source.zipped)
                except SourceRefused as exc:
                    raise SourceRefused(f"{url}: {exc}") from None
            return Fetched("fetched", url, response.status_code, dest, size, sha, validators)
    except httpx.TransportError as exc:
        raise SourceUnavailable(f"{url}: {type(exc).__name__}: {exc}") from None


async def fetch_pages(
    client: httpx.AsyncClient,
    query: PagedQuery,
    url: str,
    partition: Partition,
    dest: Path,
    *,
    page_size: int,
    token: str | None,
) -> Fetched:
    """POST the query page by page (`limit`/`offset` until a short page) into `dest`, with
    `query.fields` as the header; an empty result is `not_published`."""
    headers = {"Accept": "text/plain"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    rows = 0
    status = 0
    try:
        with _Landing(dest) as landing:
            landing.write((query.delimiter.join(query.fields) + "\n").encode())
            while True:
                body = dict(query.body(partition, page_size, rows))
                async with client.stream("POST", url, json=body, headers=headers) as response:
                    status = response.status_code
                    if status in NOT_PUBLISHED or status == 204:
                        break
                    await _raise_for(response, url)
                    got = await _copy_page(response, query, landing, url)
                rows += got
                if got < page_size:
                    break
            if rows == 0:
                return Fetched("not_published", url, status)
            size, sha = await asyncio.to_thread(landing.land, False)
        return Fetched("fetched", url, status, dest, size, sha, {})
    except httpx.TransportError as exc:
        raise SourceUnavailable(f"{url}: {type(exc).__name__}: {exc}") from None


async def _copy_page(
    response: httpx.Response, query: PagedQuery, landing: _Landing, url: str
) -> int:
    """One page's rows, each with its values in `query.fields`' order: the row count."""
    picks: list[int] | None = None
    rows = 0
    async for raw in response.aiter_lines():
        line = raw.rstrip("\r\n")
        if not line:
            continue
        values = line.split(query.delimiter)
        if picks is None:
            try:
                picks = [values.index(name) for name in query.fields]
            except ValueError as exc:
                raise SourceRefused(f"{url}: the answer's header lacks a field: {exc}") from None
            continue
        if len(values) <= max(picks):
            raise SourceUnavailable(f"{url}: a short row in page (cut off?): {line[:80]!r}")
        landing.write((query.delimiter.join(values[i] for i in picks) + "\n").encode())
        rows += 1
    return rows


async def _raise_for(response: httpx.Response, url: str) -> None:
    """Raise for any answer but a 2xx: Retry-After -> TryAgainAt, 5xx -> transient, 4xx ->
    permanent with the status and the body's first line."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = response.headers.get("Retry-After")
    if status in (429, 503) and retry_after:
        at = _retry_at(retry_after)
        if at is not None:
            raise TryAgainAt(at, f"{url}: HTTP {status}, Retry-After {retry_after}")
    if status >= 500 or status in (408, 429):
        raise SourceUnavailable(f"{url}: HTTP {status}")
    line = await _first_line(response)
    raise SourceRefused(f"{url}: HTTP {status}" + (f": {line}" if line else ""))


async def _first_line(response: httpx.Response) -> str:
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if b"\n" in data or len(data) > _FIRST_LINE:
            break
    return data.decode("utf-8", "replace").strip().split("\n", 1)[0][:_FIRST_LINE].strip()


def _retry_at(value: str) -> datetime | None:
    """A Retry-After value (seconds, or an HTTP date) as an aware time; None if unreadable."""
    now = datetime.now(UTC)
    if value.strip().isdigit():
        return now + timedelta(seconds=int(value.strip()))
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


class _Landing:
    """A temporary file beside `dest`, hashed while written, renamed over `dest` at the end.

    Its name starts with a dot and ends `.part`, so no landing pattern matches it;
    it is removed unless `land` renamed it.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        self.size = 0
        self._sha = hashlib.sha256()
        self._file: Any = None

    def __enter__(self) -> _Landing:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.temp.open("wb")
        return self

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._sha.update(data)
        self.size += len(data)

    def land(self, zipped: bool) -> tuple[int, str]:
        """Rename the finished file over `dest` (unzipped first): its (bytes, sha256)."""
        self._file.close()
        if not zipped:
            os.replace(self.temp, self.dest)
            return self.size, self._sha.hexdigest()
        unzipped = self.temp.with_suffix(".unzipped.part")
        try:
            size, sha = _unzip_one(self.temp, unzipped)
            os.replace(unzipped, self.dest)
        finally:
            unzipped.unlink(missing_ok=True)
            self.temp.unlink(missing_ok=True)
        return size, sha

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self.temp.unlink(missing_ok=True)


def _unzip_one(archive: Path, out: Path) -> tuple[int, str]:
    """The one member of a zip, streamed to `out`: its (bytes, sha256)."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise SourceRefused(f"the zip holds {len(members)} files, not one")
            digest = hashlib.sha256()
            size = 0
            with zipped.open(members[0]) as src, out.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        # The whole body arrived (its length was checked): the publisher sent a bad zip,
        # and asking again sends the same one.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceRefused(f"not a readable zip: {reason}") from None
    return size, digest.hexdigest()


class TokenCache:
    """OAuth2 client-credentials tokens, cached per process until shortly before expiry.

    The secret goes only into the token request's Basic authorization; neither it
    nor the token is ever logged or put in an error.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    async def token(
        self, client: httpx.AsyncClient, endpoint: TokenEndpoint, settings: Settings
    ) -> str | None:
        """A bearer token, or None when the source's credentials are not set."""
        found = endpoint.credentials(settings)
        if found is None:
            return None
        url, client_id, secret = found
        async with self._lock:
            cached = self._tokens.get((url, client_id))
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            try:
                response = await client.post(
                    url,
                    params={"grant_type": "client_credentials"},
                    auth=httpx.BasicAuth(client_id, secret),
                )
            except httpx.TransportError as exc:
                raise SourceUnavailable(f"{url}: {type(exc).__name__}") from None
            if response.status_code >= 500:
                raise SourceUnavailable(f"{url}: HTTP {response.status_code}")
            if response.status_code != 200:
                raise SourceRefused(
                    f"{url}: the token request was refused (HTTP {response.status_code}); "
                    "check the client id and secret"
                )
            answer = response.json()
            token = str(answer["access_token"])
            lifetime = float(answer.get("expires_in", 300))
            self._tokens[(url, client_id)] = (token, time.monotonic() + max(0.0, lifetime - 30))
            return token


TOKENS = TokenCache()
"""The process's token cache."""
