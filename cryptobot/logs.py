"""Logging: JSON lines in logs/ (one event a line, rotated) plus readable console output.

The layout of a log folder, which several processes share (backtests, paper and live bots side
by side): each process writes its own file and no other process ever touches it, so no line is
lost however many run at once.

    logs/cryptobot-<UTC start>-<pid>.jsonl      e.g. cryptobot-20240805T061500Z-4242.jsonl
    logs/cryptobot-<UTC start>-<pid>.jsonl.1    its rotated parts, .1 the newest (per file,
    ...                                         `logging.max_bytes` and `backup_count`)

<UTC start> is when the process first set up logging (wall clock, to the second), so names sort
by start; one process keeps one name for its whole life, whatever folder it logs to. A
`cryptobot.jsonl` left by an older version is read like one more process's file. Rotation drops
only a process's own oldest parts; finished processes' files stay until removed by hand.
`cryptobot logs tail` (report/logs_view.py) reads every file merged in the
order lines were written (`wall_ms`). A run is found by its `run_start` line (event, run_id,
mode), which every line after it in the same file belongs to until the next `run_start`.

Every line is one JSON object: `ts_ms` (the run's clock: simulated in a backtest or replay),
`wall_ms` (the wall-clock time it was written), `level`, `logger`, `message`, and the record's
`extra` fields (`event`, `run_id`, ...); a simulated run's lines also get `wall_time` (ISO).
Every record passes a redaction filter that masks registered secrets, in the message, the
arguments and any exception text. A backtest holds its event lines and hands them to
`write_held_lines` when its run ends: the same lines, formatted and written in one go.
"""

from __future__ import annotations

import functools
import logging
import logging.handlers
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from cryptobot.clock import Clock, LiveClock, iso_utc, ms_to_datetime
from cryptobot.errors import ConfigError
from cryptobot.json_text import json_encoder
from cryptobot.secrets import redact, registered_secrets

LOG_PREFIX = "cryptobot"
LOG_SUFFIX = ".jsonl"
LEGACY_LOG_FILE_NAME = "cryptobot.jsonl"  # the one shared file of older versions
# Loggers whose records are for the file only: the command's own console output shows them.
FILE_ONLY_LOGGERS = ("cryptobot.events",)
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# `json.dumps(event, default=str, sort_keys=True)`, one encoder for the process, without the
# circular-reference check: a line's fields are plain data made for it (a cycle would end in
# RecursionError rather than ValueError, caught alike)
_encode_line = json_encoder(default=str, sort_keys=True, check_circular=False)


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

    def __init__(self, clock_ms: Callable[[], int] | None = None,
                 wall_clock: Clock | None = None) -> None:
        super().__init__()
        self._clock_ms = clock_ms
        self._wall_clock = wall_clock
        self._wall_time: tuple[int, str] = (-1, "")  # the last written_ms and its ISO text

    def written_ms(self, record: logging.LogRecord | None = None) -> int:
        """The wall-clock time a line is written (a record's own time without `wall_clock`)."""
        if self._wall_clock is not None or record is None:
            return (self._wall_clock or LiveClock()).now_ms()
        return int(record.created * 1000)

    def format(self, record: logging.LogRecord) -> str:
        written_ms = self.written_ms(record)
        fields = {key: value for key, value in record.__dict__.items()
                  if key not in _STANDARD_ATTRS and not key.startswith("_")}
        return self.line(self._clock_ms() if self._clock_ms else written_ms, written_ms,
                         record.levelname, record.name, record.getMessage(), fields,
                         record.exc_text)

    def line(self, ts_ms: int, written_ms: int, level_name: str, logger_name: str,
             message: str, fields: dict[str, Any], exception: str | None = None) -> str:
        """The JSON line of one event (`fields`: its `extra`), redacted."""
        event: dict[str, Any] = {"ts_ms": ts_ms, "wall_ms": written_ms, "level": level_name,
                                 "logger": logger_name, "message": message}
        if self._wall_clock is not None:
            event["wall_time"] = self._wall_time_text(written_ms)
        event.update(fields)
        if exception:
            event["exception"] = exception
        return redact(_encode_line(event))

    def held_lines(self, logger_name: str, lines: list[HeldLine]) -> list[str]:
        """`line` of each held line, all written at once (now), not redacted: the lines a
        backtest held, in one pass."""
        written_ms = self.written_ms()
        head: dict[str, Any] = {"wall_ms": written_ms, "logger": logger_name}
        if self._wall_clock is not None:
            head["wall_time"] = self._wall_time_text(written_ms)
        names = {level: logging.getLevelName(level) for level in {line.level for line in lines}}
        encode = _encode_line
        # a fixed-shape line's own text: its fields, then `"ts_ms": ...` and this tail
        tail = "".join(f", {encode(key)}: {encode(head[key])}" for key in sorted(head)
                       if key != "logger") + "}"
        logger_text = encode(logger_name)
        texts = []
        for ts_ms, level, message, fields, text in lines:
            line = None if text is None else text(ts_ms, names[level], message, fields,
                                                  logger_text, tail)
            texts.append(line if line is not None else encode(
                {"ts_ms": ts_ms, "level": names[level], "message": message, **head, **fields}))
        return texts

    def _wall_time_text(self, written_ms: int) -> str:
        if self._wall_time[0] != written_ms:
            self._wall_time = (written_ms, iso_utc(written_ms))
        return self._wall_time[1]


# (ts_ms, level name, message, fields, logger name as JSON, tail) -> the line, or None
LineText = Callable[[int, str, str, dict[str, Any], str, str], str | None]


class HeldLine(NamedTuple):
    """An event line held in memory until `write_held_lines` (its time taken when it happened).

    `text`, for a line of a fixed shape, writes its JSON itself: the same bytes as the encoder
    gives the whole line (keys sorted), from the line's parts, the logger's name as JSON text
    and the tail that follows its `"ts_ms": ...` (the written time, `}`); None where a value
    is not of the shape's type (the line is then encoded whole)."""

    ts_ms: int
    level: int
    message: str
    fields: dict[str, Any]
    text: LineText | None = None


def write_held_lines(logger: logging.Logger, lines: list[HeldLine]) -> None:
    """Write lines held back (a backtest's event log, kept until the run ends) as if each had
    been logged to `logger` when it happened: the same JSON lines, in order, stamped with their
    own `ts_ms`. The JSON-lines file formats and writes them in one go (one write, rotation
    still at its size); any other handler gets them as log records."""
    lines = [line for line in lines if logger.isEnabledFor(line.level)]
    if not lines:
        return
    for handler in _handlers_of(logger):
        if isinstance(handler, _JsonLinesFileHandler):
            handler.write_held(logger.name, lines)
            continue
        for line in lines:
            if line.level >= handler.level:
                handler.handle(logger.makeRecord(logger.name, line.level, "(held)", 0,
                                                 line.message, None, None, extra=line.fields))


def _handlers_of(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of `logger` reaches, as `Logger.callHandlers` walks them."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers += current.handlers
        current = current.parent if current.propagate else None
    return handlers


class _JsonLinesFileHandler(logging.handlers.RotatingFileHandler):
    """Formats each record once and keeps count of the file's size itself: the base class
    formats a record to decide on rotating and again to write it, and asks the file for its
    position (a flush) each time (a backtest logs thousands of events)."""

    _last: tuple[logging.LogRecord, str] | None = None
    _size: int | None = None  # bytes in the file; None until first asked

    def format(self, record: logging.LogRecord) -> str:
        if self._last is None or self._last[0] is not record:
            self._last = (record, super().format(record))
        return self._last[1]

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return self._rolls_over(len(self.format(record)) + 1)

    def _rolls_over(self, line_bytes: int) -> bool:
        if self.stream is None:
            self.stream = self._open()
        if self._size is None:
            self._size = self.stream.tell()
        if self.maxBytes <= 0 or not self._size:
            return False
        if self._size + line_bytes < self.maxBytes:
            return False
        return not (os.path.exists(self.baseFilename) and not os.path.isfile(self.baseFilename))

    def doRollover(self) -> None:
        super().doRollover()
        self._size = 0

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if self._size is not None:  # JSON lines are ASCII: characters are bytes
            self._size += len(self.format(record)) + 1

    def write_held(self, logger_name: str, lines: list[HeldLine]) -> None:
        """`lines` redacted as RedactingFilter does, formatted, written and flushed at once."""
        formatter = self.formatter
        assert isinstance(formatter, JsonLineFormatter)
        if registered_secrets():  # none registered: nothing to mask
            lines = [HeldLine(line.ts_ms, line.level, redact(line.message),
                              _redacted(line.fields)) for line in lines]  # encoded whole
            texts = [redact(text) for text in formatter.held_lines(logger_name, lines)]
        else:
            texts = formatter.held_lines(logger_name, lines)
        with self.lock:
            try:
                size = sum(map(len, texts)) + len(texts)  # ASCII and a newline each
                if self._fits(size):  # the common case: no rotation on the way
                    self._write(texts)
                    self._size = (self._size or 0) + size
                    return
                pending: list[str] = []
                for text in texts:
                    if self._rolls_over(len(text) + 1):
                        self._write(pending)
                        self.doRollover()
                    pending.append(text)
                    self._size = (self._size or 0) + len(text) + 1
                self._write(pending)
            except Exception:  # as `emit` does: said on stderr, the run goes on
                self.handleError(logging.makeLogRecord({"msg": "held event lines",
                                                        "name": logger_name}))

    def _fits(self, more_bytes: int) -> bool:
        """The file takes `more_bytes` without rotating, line by line (`_rolls_over`)."""
        if self.stream is None:
            self.stream = self._open()
        if self._size is None:
            self._size = self.stream.tell()
        return self.maxBytes <= 0 or self._size + more_bytes < self.maxBytes

    def _write(self, texts: list[str]) -> None:
        if texts:
            self.stream.write(self.terminator.join(texts) + self.terminator)
            self.flush()
            texts.clear()


def _redacted(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: redact(value) if isinstance(value, str) else value
            for key, value in fields.items()}


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (not the one at set-up, maybe closed)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _not_file_only(record: logging.LogRecord) -> bool:
    return not record.name.startswith(FILE_ONLY_LOGGERS) and not getattr(record, "_file_only",
                                                                         False)


@functools.cache
def _process_start_stamp() -> str:
    """When this process first set up logging, UTC to the second: one name for its life."""
    return ms_to_datetime(LiveClock().now_ms()).strftime("%Y%m%dT%H%M%SZ")


def process_log_path(directory: str | Path) -> Path:
    """The file this process writes in `directory` (see the module's docstring)."""
    return Path(directory) / f"{LOG_PREFIX}-{_process_start_stamp()}-{os.getpid()}{LOG_SUFFIX}"


def configure_logging(
    log_dir: str | Path,
    level: str = "INFO",
    max_bytes: int = 10_000_000,
    backup_count: int = 5,
    console: bool = True,
    clock_ms: Callable[[], int] | None = None,
    wall_clock: Clock | None = None,
) -> Path:
    """Set up the root 'cryptobot' logger; returns the JSON-lines file path (this process's own
    file in `log_dir`, rotated on its own; see the module's docstring).

    `clock_ms` stamps each line (default: the record's own time); `wall_clock`, given for a
    simulated run, adds the real time each line was written. Warnings and errors also go to
    stderr, one readable line each, except the event log's (the command prints those itself) and
    records logged with `extra={"_file_only": True}`.
    """
    directory = Path(log_dir)
    path = process_log_path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        file_handler = _JsonLinesFileHandler(
            path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot write the log there (logging.dir): "
                          f"{exc.strerror or exc}") from None
    logger = logging.getLogger("cryptobot")
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    redaction = RedactingFilter()
    file_handler.setFormatter(JsonLineFormatter(clock_ms, wall_clock))
    file_handler.addFilter(redaction)
    logger.addHandler(file_handler)
    if console:
        console_handler = _CurrentStderrHandler()
        console_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        console_handler.addFilter(_not_file_only)
        console_handler.addFilter(redaction)
        console_handler.setLevel(logging.WARNING)
        logger.addHandler(console_handler)
    return path


def configure_run_logging(settings: Any, clock_ms: Callable[[], int] | None = None,
                          wall_clock: Clock | None = None) -> Path:
    """`configure_logging` with a run's `[logging]` settings (dir, level, rotation)."""
    section = settings.logging
    return configure_logging(section.dir, section.level, section.max_bytes,
                             section.backup_count, clock_ms=clock_ms, wall_clock=wall_clock)
