"""Settings, read once from the environment (and `.env` when present).

Where state lives does not depend on the working directory. The project root
is the nearest directory, from the working directory up, holding
`pyproject.toml` next to a `Procfile` or `migrations/`. Its `.env` is read,
and relative SPINE_DATA_DIR / SPINE_STATE_DIR are taken from it. Outside any
project (an installed package), relative paths are the working directory's and
the state directory defaults to `$XDG_STATE_HOME/market-spine`
(`~/.local/state/market-spine`). So every command, from any directory of a
checkout, finds the same embedded database.

Every setting is a field of `Settings` renamed to its environment variable, so a
bad value is reported by msgspec with the variable's own name, and
`.env.example` and the README's table are checked against this one list.
"""

from __future__ import annotations

import functools
import os
import typing
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

import msgspec

__all__ = [
    "ConfigError",
    "Settings",
    "get_settings",
    "load_settings",
    "project_root",
    "setting_docs",
]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]


class ConfigError(Exception):
    """A setting has a value the service cannot start with."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Typed configuration; field names are the environment variables."""

    database_url: Annotated[
        str | None,
        msgspec.Meta(
            description=(
                "PostgreSQL URL. Unset: an embedded server under SPINE_STATE_DIR is used "
                "(started by the command that needs it, stopped when that command ends)."
            )
        ),
    ] = msgspec.field(default=None, name="DATABASE_URL")
    data_dir: Annotated[
        Path,
        msgspec.Meta(
            description=(
                "Directory that input files (otc_ingest's `file`) must live in; "
                "relative: to the project root."
            )
        ),
    ] = msgspec.field(default=Path("data"), name="SPINE_DATA_DIR")
    state_dir: Annotated[
        Path,
        msgspec.Meta(
            description=(
                "Directory for local state (the embedded PostgreSQL); relative: to the "
                "project root. Outside a checkout: ~/.local/state/market-spine."
            )
        ),
    ] = msgspec.field(default=Path(".spine"), name="SPINE_STATE_DIR")
    backend: Annotated[
        Literal["local", "celery"],
        msgspec.Meta(
            description=(
                "Orchestrator backend: `local` is the worker pool; `celery` runs executions "
                "on Celery workers over RabbitMQ (needs the `celery` extra)."
            )
        ),
    ] = msgspec.field(default="local", name="SPINE_BACKEND")
    celery_broker_url: Annotated[
        str,
        msgspec.Meta(description="The Celery backend's broker (an AMQP URL)."),
    ] = msgspec.field(default="amqp://guest:guest@127.0.0.1:5672//", name="SPINE_CELERY_BROKER_URL")
    celery_queue_prefix: Annotated[
        str,
        msgspec.Meta(
            description=(
                "Prefix of the Celery backend's queue names (one queue per lane: "
                "`<prefix>.<lane>`), so deployments and tests can share a broker."
            ),
            pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        ),
    ] = msgspec.field(default="spine", name="SPINE_CELERY_QUEUE_PREFIX")
    celery_republish_after: Annotated[
        float,
        msgspec.Meta(
            description=(
                "Seconds after which the Celery relay publishes again a pending execution "
                "whose task never started it (a message lost with its node)."
            ),
            gt=0,
        ),
    ] = msgspec.field(default=60.0, name="SPINE_CELERY_REPUBLISH_AFTER")
    celery_requeue_waiting_after: Annotated[
        float,
        msgspec.Meta(
            description=(
                "Seconds a message a Celery node holds for a busy child may wait "
                "unacknowledged before the node gives it back to its queue (keep it well "
                "below RabbitMQ's `consumer_timeout`, 30 minutes by default)."
            ),
            gt=0,
        ),
    ] = msgspec.field(default=60.0, name="SPINE_CELERY_REQUEUE_WAITING_AFTER")
    max_concurrent: Annotated[
        int,
        msgspec.Meta(
            description="Worker processes in the pool (one claim loop each).", ge=1, le=256
        ),
    ] = msgspec.field(default=4, name="SPINE_MAX_CONCURRENT")
    poll_interval: Annotated[
        float,
        msgspec.Meta(description="Seconds between polls when no NOTIFY arrives.", gt=0, le=60),
    ] = msgspec.field(default=0.5, name="SPINE_POLL_INTERVAL")
    claim_batch: Annotated[
        int,
        msgspec.Meta(
            description=(
                "Most executions one worker process claims at once when the queue is deep "
                "and they run quickly (the batch grows from 1 to this); 1 turns batching off."
            ),
            ge=1,
            le=100,
        ),
    ] = msgspec.field(default=64, name="SPINE_CLAIM_BATCH")
    lease_timeout: Annotated[
        float,
        msgspec.Meta(
            description="Seconds without a heartbeat before a worker's executions are recovered.",
            gt=0,
        ),
    ] = msgspec.field(default=30.0, name="SPINE_LEASE_TIMEOUT")
    max_attempts: Annotated[
        int,
        msgspec.Meta(
            description=(
                "Default attempts per execution (a failed attempt or a lost worker counts) "
                "when neither its pipeline nor its submission says."
            ),
            ge=1,
            le=100,
        ),
    ] = msgspec.field(default=3, name="SPINE_MAX_ATTEMPTS")
    retry_max_backoff: Annotated[
        float,
        msgspec.Meta(description="Longest wait before a retry (seconds).", ge=0),
    ] = msgspec.field(default=3600.0, name="SPINE_RETRY_MAX_BACKOFF")
    timeout_grace: Annotated[
        float,
        msgspec.Meta(
            description=(
                "Seconds a timed-out attempt has to stop after its cancel, before its "
                "worker process gives it up and is replaced."
            ),
            ge=0,
        ),
    ] = msgspec.field(default=10.0, name="SPINE_TIMEOUT_GRACE")
    db_pool_min: Annotated[
        int, msgspec.Meta(description="Connections each process keeps open.", ge=0)
    ] = msgspec.field(default=1, name="SPINE_DB_POOL_MIN")
    db_pool_max: Annotated[
        int, msgspec.Meta(description="Most connections one process opens.", ge=1)
    ] = msgspec.field(default=10, name="SPINE_DB_POOL_MAX")
    api_host: Annotated[str, msgspec.Meta(description="Interface the API listens on.")] = (
        msgspec.field(default="127.0.0.1", name="SPINE_API_HOST")
    )
    api_port: Annotated[
        int, msgspec.Meta(description="Port the API listens on.", ge=1, le=65535)
    ] = msgspec.field(default=8000, name="SPINE_API_PORT")
    api_workers: Annotated[
        int, msgspec.Meta(description="uvicorn worker processes for the API.", ge=1)
    ] = msgspec.field(default=1, name="SPINE_API_WORKERS")
    api_max_connections: Annotated[
        int,
        msgspec.Meta(
            description="Connections and requests one API process holds at once; "
            "beyond, new requests get 503 at once.",
            ge=1,
        ),
    ] = msgspec.field(default=256, name="SPINE_API_MAX_CONNECTIONS")
    ui_max_live_streams: Annotated[
        int,
        msgspec.Meta(
            description="Dashboard live-update streams one API process serves at once, at most "
            "half of SPINE_API_MAX_CONNECTIONS; beyond, a tab gets 503 and polls instead.",
            ge=1,
        ),
    ] = msgspec.field(default=32, name="SPINE_UI_MAX_LIVE_STREAMS")
    api_keep_alive: Annotated[
        int,
        msgspec.Meta(description="Seconds an idle keep-alive connection stays open.", ge=1),
    ] = msgspec.field(default=5, name="SPINE_API_KEEP_ALIVE")
    api_token: Annotated[
        str | None,
        msgspec.Meta(
            description="When set, mutating API calls need `Authorization: Bearer <token>`."
        ),
    ] = msgspec.field(default=None, name="SPINE_API_TOKEN")
    api_token_reads: Annotated[
        bool, msgspec.Meta(description="With SPINE_API_TOKEN set, require the token for reads too.")
    ] = msgspec.field(default=False, name="SPINE_API_TOKEN_READS")
    api_public: Annotated[
        bool,
        msgspec.Meta(
            description="Say the API is reachable beyond this host (compose publishes it on "
            "every interface); it then refuses to start without SPINE_API_TOKEN."
        ),
    ] = msgspec.field(default=False, name="SPINE_API_PUBLIC")
    max_body_bytes: Annotated[
        int, msgspec.Meta(description="Largest request body the API accepts (bytes).", ge=1024)
    ] = msgspec.field(default=1_048_576, name="SPINE_MAX_BODY_BYTES")
    market_tz: Annotated[
        str, msgspec.Meta(description="Time zone whose calendar date is a trade's trade date.")
    ] = msgspec.field(default="America/New_York", name="SPINE_MARKET_TZ")
    scheduler_tick: Annotated[
        float,
        msgspec.Meta(
            description="Most seconds a pool's scheduler sleeps between checks for due schedules.",
            gt=0,
            le=60,
        ),
    ] = msgspec.field(default=1.0, name="SPINE_SCHEDULER_TICK")
    raw_retention_days: Annotated[
        int,
        msgspec.Meta(
            description="Days of raw input lines `spine data prune-raw` keeps by default "
            "(0: keep them all).",
            ge=0,
        ),
    ] = msgspec.field(default=0, name="SPINE_RAW_RETENTION_DAYS")
    http_user_agent: Annotated[
        str | None,
        msgspec.Meta(
            description="User-Agent of every request to a publisher; name a contact "
            "(`Example Corp ops@example.com`): the SEC refuses requests without one, and so "
            "does Market Spine for an SEC source."
        ),
    ] = msgspec.field(default=None, name="SPINE_HTTP_USER_AGENT")
    http_timeout: Annotated[
        float,
        msgspec.Meta(
            description="Seconds a request to a publisher may wait to connect, or between "
            "two reads of its body, before it is a transient error (retried).",
            gt=0,
        ),
    ] = msgspec.field(default=60.0, name="SPINE_HTTP_TIMEOUT")
    source_max_per_host: Annotated[
        int,
        msgspec.Meta(
            description="Most requests to one publisher's host at once, across every pool "
            "(PostgreSQL advisory locks).",
            ge=1,
            le=64,
        ),
    ] = msgspec.field(default=2, name="SPINE_SOURCE_MAX_PER_HOST")
    source_page_size: Annotated[
        int,
        msgspec.Meta(
            description="Rows per page asked of a paged API (FINRA's Query API), which is "
            "read until a page comes back short.",
            ge=1,
            le=100_000,
        ),
    ] = msgspec.field(default=5000, name="SPINE_SOURCE_PAGE_SIZE")
    source_recheck: Annotated[
        float,
        msgspec.Meta(
            description="Seconds between two asks for a partition that is due but not yet "
            "published, until its freshness deadline (then it is late).",
            gt=0,
        ),
    ] = msgspec.field(default=3600.0, name="SPINE_SOURCE_RECHECK")
    source_finra_api: Annotated[
        str, msgspec.Meta(description="Base URL of FINRA's Query API (a mirror in tests).")
    ] = msgspec.field(default="https://api.finra.org", name="SPINE_SOURCE_FINRA_API")
    source_finra_cdn: Annotated[
        str, msgspec.Meta(description="Base URL of FINRA's file downloads (CDN).")
    ] = msgspec.field(default="https://cdn.finra.org", name="SPINE_SOURCE_FINRA_CDN")
    source_sec: Annotated[
        str, msgspec.Meta(description="Base URL of the SEC's file downloads.")
    ] = msgspec.field(default="https://www.sec.gov", name="SPINE_SOURCE_SEC")
    finra_token_url: Annotated[
        str,
        msgspec.Meta(
            description="FINRA's OAuth2 token endpoint (client credentials), used when "
            "SPINE_FINRA_API_CLIENT_ID and SPINE_FINRA_API_CLIENT_SECRET are set."
        ),
    ] = msgspec.field(
        default="https://ews.fip.finra.org/fip/rest/ews/oauth2/access_token",
        name="SPINE_FINRA_TOKEN_URL",
    )
    finra_api_client_id: Annotated[
        str | None,
        msgspec.Meta(description="FINRA API client id (optional: public data needs none)."),
    ] = msgspec.field(default=None, name="SPINE_FINRA_API_CLIENT_ID")
    finra_api_client_secret: Annotated[
        str | None,
        msgspec.Meta(description="FINRA API client secret; never logged."),
    ] = msgspec.field(default=None, name="SPINE_FINRA_API_CLIENT_SECRET")
    history_retention_days: Annotated[
        int,
        msgspec.Meta(
            description="Days of finished executions the history keeps: older day segments are "
            "dropped whole by the pools (0: keep them all).",
            ge=0,
        ),
    ] = msgspec.field(default=0, name="SPINE_HISTORY_RETENTION_DAYS")
    history_move_after: Annotated[
        float,
        msgspec.Meta(
            description="Seconds a finished execution stays in the hot table before the pools "
            "move it, with its events, to the history tables (at least an hour: the "
            "dashboard's hour of throughput and its live feed read the hot table).",
            ge=3600,
        ),
    ] = msgspec.field(default=3600.0, name="SPINE_HISTORY_MOVE_AFTER")
    history_interval: Annotated[
        float,
        msgspec.Meta(
            description="Seconds between a pool's history passes (create segments ahead, drop "
            "those past retention, move finished executions).",
            gt=0,
        ),
    ] = msgspec.field(default=30.0, name="SPINE_HISTORY_INTERVAL")
    ftd_due_days: Annotated[
        int,
        msgspec.Meta(
            description="Days after a half-month ends that the SEC's fails-to-deliver file "
            "for it is due (the dataset sec_ftd's freshness).",
            ge=0,
            le=366,
        ),
    ] = msgspec.field(default=14, name="SPINE_FTD_DUE_DAYS")
    log_level: Annotated[LogLevel, msgspec.Meta(description="Log level for every process.")] = (
        msgspec.field(default="INFO", name="SPINE_LOG_LEVEL")
    )
    log_format: Annotated[
        LogFormat,
        msgspec.Meta(description="`text` (one readable line) or `json` (one object per line)."),
    ] = msgspec.field(default="text", name="SPINE_LOG_FORMAT")
    metrics_port: Annotated[
        int,
        msgspec.Meta(
            description="Port a worker pool serves its Prometheus metrics on; 0: not served.",
            ge=0,
            le=65535,
        ),
    ] = msgspec.field(default=0, name="SPINE_METRICS_PORT")
    metrics_host: Annotated[
        str, msgspec.Meta(description="Interface a worker pool's metrics listen on.")
    ] = msgspec.field(default="127.0.0.1", name="SPINE_METRICS_HOST")


def _env_types() -> dict[str, object]:
    """Environment variable -> the field's plain type."""
    hints = typing.get_type_hints(Settings)
    return {f.encode_name: hints[f.name] for f in msgspec.structs.fields(Settings)}


def setting_docs() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, in declaration order."""
    hints = typing.get_type_hints(Settings, include_extras=True)
    rows = []
    for field in msgspec.structs.fields(Settings):
        metas = [
            m for m in getattr(hints[field.name], "__metadata__", ()) if isinstance(m, msgspec.Meta)
        ]
        meaning = next((m.description for m in metas if m.description), "")
        default = field.default
        shown = (
            ""
            if default is None
            else ("1" if default is True else "0" if default is False else str(default))
        )
        rows.append((field.encode_name, shown, meaning))
    return rows


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from honcho.environ import parse  # honcho's own .env parser: the same rules as `honcho start`

    return dict(parse(path.read_text(encoding="utf-8")))


def project_root(start: Path | None = None) -> Path | None:
    """The nearest directory from `start` (default: the cwd) up that holds this project."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (
            (candidate / "Procfile").is_file() or (candidate / "migrations").is_dir()
        ):
            return candidate
    return None


def _user_state_dir(environ: dict[str, str]) -> Path:
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "market-spine"


def load_settings(
    environ: dict[str, str] | None = None,
    dotenv: Path | None = None,
    *,
    root: Path | None = None,
) -> Settings:
    """Build Settings from `environ` (default: os.environ, with `.env` filling gaps).

    `root` is the project root relative paths are taken from (default: found
    from the cwd when `environ` is not given; none when it is).
    """
    outside_project = False
    if environ is None:
        root = root or project_root()
        outside_project = root is None
        environ = {**_read_dotenv(dotenv or (root or Path.cwd()) / ".env"), **os.environ}
    raw: dict[str, object] = {}
    for name, kind in _env_types().items():
        value = environ.get(name)
        if value is None or value == "":
            continue
        raw[name] = _coerce_bool(value) if kind is bool else value
    try:
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc))) from None
    settings = _place(settings, raw, root, environ if outside_project else None)
    if settings.database_url is not None:
        _check_url(settings.database_url)
    try:
        zoneinfo.ZoneInfo(settings.market_tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"SPINE_MARKET_TZ: {settings.market_tz!r} is not an IANA time zone "
            "(like America/New_York)"
        ) from None
    return settings


def _place(
    settings: Settings, raw: dict[str, object], root: Path | None, outside: dict[str, str] | None
) -> Settings:
    """Relative directories against the project root. Outside a project (`outside` is then
    the environment): the cwd's, and the user's state directory by default."""
    data_dir, state_dir = settings.data_dir, settings.state_dir
    if root is not None:
        data_dir, state_dir = root / data_dir, root / state_dir
    elif outside is not None and "SPINE_STATE_DIR" not in raw:
        state_dir = _user_state_dir(outside)
    return msgspec.structs.replace(settings, data_dir=data_dir, state_dir=state_dir)


def _check_url(url: str) -> None:
    """DATABASE_URL must be a libpq URL or key=value string: one line naming it otherwise."""
    from psycopg import conninfo

    try:
        conninfo.conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError: libpq's own reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            "DATABASE_URL: not a PostgreSQL connection string "
            f"(like postgresql://user:password@host:5432/db): {reason}"
        ) from None


def _decode(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(kind)


def _coerce_bool(value: str) -> object:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    return value


def _explain(message: str) -> str:
    # msgspec says "Expected `int` >= 1 - at `$.SPINE_MAX_CONCURRENT`"; lead with the variable.
    if " - at `$." in message:
        what, _, where = message.rpartition(" - at `$.")
        return f"{where.rstrip('`')}: {what[0].lower()}{what[1:]}"
    return message


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read on first use. Tests call `get_settings.cache_clear()`."""
    return load_settings()
