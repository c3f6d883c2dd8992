"""Remote sources: where a dataset's partition is fetched from, declared by its domain.

A `RemoteSource` sits on a `Dataset` beside its landing pattern. It says how
to ask a publisher for one partition, either a URL template under a base URL
(a CDN's or the SEC's files: GET, conditional on the last validators) or a
paged query (an API such as FINRA's: POST of filters, `limit`/`offset` until a
short page, pipe-delimited text), and where the answer lands under
SPINE_DATA_DIR, as the file the dataset's ingest already reads. The base URL
is a setting (a mirror in tests and air-gapped sites).

Templates use the landing pattern's tokens: `{date:%Y%m%d}` (any name, strftime
codes), `{half}` (`a`/`b`), `{key2}` (the name the dataset's files give the
second key, `otc` for `OTC`; or any token without a format, by its own name:
`{market}`) and `{key2_id}` (the key itself). The fetch itself
is `app.engine.fetch`; running it as a step of the materializing execution is
`app.engine.remote`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.engine.datasets import Partition

if TYPE_CHECKING:
    from app.config import Settings

__all__ = ["PagedQuery", "RemoteSource", "TokenEndpoint", "render"]

_TOKEN = re.compile(r"\{(\w+)(?::([^}]*))?\}")


@dataclass(frozen=True)
class TokenEndpoint:
    """OAuth2 client credentials: the settings naming the token URL, client id and secret.

    Used only when both the id and the secret are set; the token is cached until
    it expires and never logged."""

    url_setting: str
    client_id_setting: str
    client_secret_setting: str

    def credentials(self, settings: Settings) -> tuple[str, str, str] | None:
        """(token URL, client id, secret), or None when the credentials are not set."""
        client_id = getattr(settings, self.client_id_setting)
        secret = getattr(settings, self.client_secret_setting)
        if not client_id or not secret:
            return None
        return str(getattr(settings, self.url_setting)), str(client_id), str(secret)


@dataclass(frozen=True)
class PagedQuery:
    """An API's request builder: POST `path` with `body(partition, limit, offset)` as JSON,
    pages of pipe-delimited text with a header line, until a page comes back short.

    The landing file is written with `fields` as its header, each row's values
    picked by the response header's names, so a column the API adds or moves
    changes nothing. An empty first page means "not published".
    """

    path: str
    body: Callable[[Partition, int, int], Mapping[str, Any]]
    fields: tuple[str, ...]
    delimiter: str = "|"


@dataclass(frozen=True)
class RemoteSource:
    """Where a dataset's partitions come from, remotely.

    `name` labels its metrics and its `spine sources check` line; `base_setting`
    names the Settings field holding its base URL; `landing` is the landed file's
    path under SPINE_DATA_DIR (a template); exactly one of `url` (a template under
    the base) and `query` says how to ask. `zipped`: the publisher zips the file
    (one member, unzipped before it lands). `contact_required`: the publisher
    wants a User-Agent naming a contact (the SEC): refused without
    SPINE_HTTP_USER_AGENT. `token`: optional OAuth2 credentials. `calendar`: a day
    the NYSE is closed has no file (`no_data`, not asked). `probe`: what
    `spine sources check` asks for under the base (a HEAD). `recent_periods`: how
    many of the latest due periods the dataset's scan fetches when they are
    missing or late (`app.engine.remote_scans`; older gaps are a backfill's).
    """

    name: str
    base_setting: str
    landing: str
    url: str | None = None
    query: PagedQuery | None = None
    zipped: bool = False
    contact_required: bool = False
    token: TokenEndpoint | None = None
    calendar: bool = False
    probe: str = "/"
    recent_periods: int = 4

    def __post_init__(self) -> None:
        if (self.url is None) == (self.query is None):
            raise ValueError(f"remote source {self.name}: give either a url or a query")
        if self.recent_periods < 0:
            raise ValueError(f"remote source {self.name}: recent_periods must be 0 or more")

    def base(self, settings: Settings) -> str:
        return str(getattr(settings, self.base_setting)).rstrip("/")

    def request_url(self, settings: Settings, partition: Partition, key2_name: str) -> str:
        """The URL asked for a partition: the base, then the template or the query's path."""
        path = self.url if self.url is not None else self.query.path  # type: ignore[union-attr]
        return self.base(settings) + render(path, partition, key2_name)

    def landing_path(self, partition: Partition, key2_name: str) -> str:
        return render(self.landing, partition, key2_name)


def render(template: str, partition: Partition, key2_name: str) -> str:
    """A template's tokens filled in for one partition."""

    def fill(token: re.Match[str]) -> str:
        name, fmt = token[1], token[2]
        if name == "half":
            return partition.half
        if name == "key2_id":
            return partition.key2 or ""
        if name == "key2" or (not fmt and partition.key2 is not None):
            return key2_name  # `{key2}`, or the second key by its own name (`{market}`)
        if not fmt:
            raise ValueError(f"{{{name}}} needs a date format, e.g. {{{name}:%Y%m%d}}")
        return partition.start.strftime(fmt)

    return _TOKEN.sub(fill, template)
