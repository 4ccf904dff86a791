"""Logging: JSON lines in logs/ (one event a line, rotated) plus readable console output.

Every record passes a redaction filter that masks registered secrets, in the message, the
arguments and any exception text.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path
from typing import Any

from cryptobot.secrets import redact

LOG_FILE_NAME = "cryptobot.jsonl"
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                record.__dict__[key] = redact(value)
        return True


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, message and any `extra` fields."""

    def __init__(self, clock_ms=None) -> None:
        super().__init__()
        self._clock_ms = clock_ms

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts_ms": self._clock_ms() if self._clock_ms else int(record.created * 1000),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                event[key] = value
        if record.exc_text:
            event["exception"] = record.exc_text
        return redact(json.dumps(event, default=str, sort_keys=True))


def configure_logging(
    log_dir: str | Path,
    level: str = "INFO",
    max_bytes: int = 10_000_000,
    backup_count: int = 5,
    console: bool = True,
    clock_ms=None,
) -> Path:
    """Set up the root 'cryptobot' logger; returns the JSON-lines file path."""
    directory = Path(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_FILE_NAME
    logger = logging.getLogger("cryptobot")
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    redaction = RedactingFilter()
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
    )
    file_handler.setFormatter(JsonLineFormatter(clock_ms))
    file_handler.addFilter(redaction)
    logger.addHandler(file_handler)
    if console:
        console_handler = logging.StreamHandler()
        console_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        console_handler.addFilter(redaction)
        console_handler.setLevel(logging.WARNING)
        logger.addHandler(console_handler)
    return path
