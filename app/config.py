"""Settings, read once from the environment (and `.env` when present).

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

__all__ = ["ConfigError", "Settings", "get_settings", "load_settings", "setting_docs"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(Exception):
    """A setting has a value the service cannot start with."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Typed configuration; field names are the environment variables."""

    database_url: Annotated[
        str | None,
        msgspec.Meta(
            description="PostgreSQL URL. Unset: an embedded server under SPINE_STATE_DIR is used."
        ),
    ] = msgspec.field(default=None, name="DATABASE_URL")
    data_dir: Annotated[
        Path,
        msgspec.Meta(description="Directory that input files (otc_ingest's `file`) must live in."),
    ] = msgspec.field(default=Path("./data"), name="SPINE_DATA_DIR")
    state_dir: Annotated[
        Path,
        msgspec.Meta(
            description="Directory for local state: the embedded PostgreSQL data directory."
        ),
    ] = msgspec.field(default=Path("./.spine"), name="SPINE_STATE_DIR")
    backend_type: Annotated[
        Literal["local"],
        msgspec.Meta(description="Orchestrator backend; `local` is the worker pool."),
    ] = msgspec.field(default="local", name="BACKEND_TYPE")
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
    api_token: Annotated[
        str | None,
        msgspec.Meta(
            description="When set, mutating API calls need `Authorization: Bearer <token>`."
        ),
    ] = msgspec.field(default=None, name="SPINE_API_TOKEN")
    api_token_reads: Annotated[
        bool, msgspec.Meta(description="With SPINE_API_TOKEN set, require the token for reads too.")
    ] = msgspec.field(default=False, name="SPINE_API_TOKEN_READS")
    max_body_bytes: Annotated[
        int, msgspec.Meta(description="Largest request body the API accepts (bytes).", ge=1024)
    ] = msgspec.field(default=1_048_576, name="SPINE_MAX_BODY_BYTES")
    market_tz: Annotated[
        str, msgspec.Meta(description="Time zone whose calendar date is a trade's trade date.")
    ] = msgspec.field(default="America/New_York", name="SPINE_MARKET_TZ")
    log_level: Annotated[LogLevel, msgspec.Meta(description="Log level for every process.")] = (
        msgspec.field(default="INFO", name="SPINE_LOG_LEVEL")
    )


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


def load_settings(environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Build Settings from `environ` (default: os.environ, with `.env` filling gaps)."""
    if environ is None:
        environ = {**_read_dotenv(dotenv or Path(".env")), **os.environ}
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
    try:
        zoneinfo.ZoneInfo(settings.market_tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"SPINE_MARKET_TZ: {settings.market_tz!r} is not an IANA time zone "
            "(like America/New_York)"
        ) from None
    return settings


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
