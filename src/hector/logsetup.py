"""Logging: human-readable text or JSON lines, to stderr or a file."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from hector.errors import ConfigError
from hector.observability.tracing import log_fields
from hector.security.redact import RedactingFilter

# color_message: uvicorn's ANSI-coloured copy of the message, noise in a log line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, component, message, the record's extras,
    and ``trace_id`` / ``span_id`` when a span is current."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "component": record.name.removeprefix("hector.").split(".")[0],
            "message": record.getMessage(),
        }
        data.update(_extras(record))
        # Formatting runs in the logging call, so the current span is the one that logged.
        data.update(log_fields())
        if record.exc_info and record.levelno >= logging.ERROR:
            data["error_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        return f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}" + (
            f" {extras}" if extras else ""
        )


def setup_logging(
    level: str = "info", fmt: str = "text", file: str | None = None, secrets: set[str] | None = None
) -> None:
    if level.lower() not in LEVELS:
        # --log-level and LOG_LEVEL are not checked by the config schema; a typo must not
        # silently log at another level.
        raise ConfigError(f"invalid log level {level!r} (debug, info, warn, error)")
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(secrets or set()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level.lower()])
    # Third-party request logs would repeat what Hector logs, sometimes with full URLs.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "a2a"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
