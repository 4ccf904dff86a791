"""`cryptobot logs tail`: every process's JSON-lines log (rotated parts too) merged in the
order the lines were written, pretty-printed, filtered by level, run and event (`LogFilter`).
The layout is described in cryptobot/logs.py: a line belongs to the run it names (`run_id`),
else to the run whose `run_start` line came last before it in its process's file.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from cryptobot.clock import iso_utc, parse_utc
from cryptobot.errors import DataError
from cryptobot.logs import LOG_PREFIX, LOG_SUFFIX

LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "cyan",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold red",
}
_KNOWN = ("ts_ms", "wall_ms", "level", "logger", "message", "exception")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class LogFilter:
    """Which lines to show: at least `level`, of run `run_id`, with an `event` among `events`
    (None: any). A line that is not JSON passes only a filter that asks nothing."""

    level: str = "DEBUG"
    run_id: str | None = None
    events: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.level.upper() not in LEVELS:
            raise DataError(f"--level {self.level!r}: one of {', '.join(LEVELS)}")
        object.__setattr__(self, "level", self.level.upper())

    @property
    def asks_nothing(self) -> bool:
        return self.level == "DEBUG" and self.run_id is None and self.events is None

    def wants(self, event: dict[str, Any] | None, run_id: str | None) -> bool:
        if self.asks_nothing:
            return True
        if event is None:
            return False
        level = str(event.get("level", "")).upper()
        if level in LEVELS and LEVELS.index(level) < LEVELS.index(self.level):
            return False
        if self.run_id is not None and run_id != self.run_id:
            return False
        return self.events is None or event.get("event") in self.events


class _RunContext:
    """The run the lines of one process's file belong to, as they are read in order."""

    def __init__(self) -> None:
        self.run_id: str | None = None

    def of(self, event: dict[str, Any] | None) -> str | None:
        if event is None:
            return self.run_id
        named = event.get("run_id")
        if event.get("event") == "run_start" and named is not None:
            self.run_id = str(named)
        return str(named) if named is not None else self.run_id


def _parsed(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def process_logs(directory: Path) -> list[list[Path]]:
    """Each process's log as its parts, oldest first (.N .. .1, then the current file); the
    processes in the order they started (their names sort so)."""
    parts: dict[str, list[tuple[int, Path]]] = {}
    for path in directory.glob(f"{LOG_PREFIX}*{LOG_SUFFIX}*"):
        base, _, suffix = path.name.rpartition(".")
        if path.name.endswith(LOG_SUFFIX):
            parts.setdefault(path.name, []).append((0, path))
        elif suffix.isdigit() and base.endswith(LOG_SUFFIX):
            parts.setdefault(base, []).append((int(suffix), path))
    return [[path for _, path in sorted(files, reverse=True)]
            for _, files in sorted(parts.items())]


def current_files(directory: Path) -> list[Path]:
    """The file each process is writing now (not its rotated parts)."""
    return sorted(directory.glob(f"{LOG_PREFIX}*{LOG_SUFFIX}"))


def written_ms(line: str) -> int | None:
    """When a line was written: `wall_ms`, else a simulated run's `wall_time`, else `ts_ms`
    (the run's clock: the wall clock for anything not simulated); None if it has none."""
    try:
        event: Any = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("wall_ms"), int):
        return event["wall_ms"]
    if isinstance(event.get("wall_time"), str):
        with contextlib.suppress(ValueError):
            return parse_utc(event["wall_time"])
    return event["ts_ms"] if isinstance(event.get("ts_ms"), int) else None


def merged_lines(directory: Path, wanted: LogFilter = LogFilter()) -> Iterator[str]:
    """Every line of every process's log that `wanted` asks for, merged by the time it was
    written. A line without a time (not JSON) keeps its place after the line before it in its
    file."""

    def keyed(paths: list[Path]) -> Iterator[tuple[int, str]]:
        last_ms, runs = 0, _RunContext()
        for line in _lines(paths):
            last_ms = written_ms(line) or last_ms
            event = _parsed(line)
            if wanted.wants(event, runs.of(event)):
                yield last_ms, line

    for _, line in heapq.merge(*(keyed(paths) for paths in process_logs(directory)),
                               key=lambda item: item[0]):
        yield line


def format_event(line: str, full: bool = False) -> str:
    """One log line as rich markup: time, level, logger, message, then its fields (a nested one,
    e.g. a signal's or a trade's, as its name and size unless `full`); a line that is not a JSON
    object is shown as it is."""
    try:
        event: Any = json.loads(line)
    except json.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        return f"[dim](not JSON) {escape(line.rstrip())}[/]"
    ts_ms = event.get("ts_ms")
    when = iso_utc(int(ts_ms)) if isinstance(ts_ms, (int, float)) else "?"
    level = str(event.get("level", "?"))
    style = LEVEL_STYLES.get(level, "white")
    extras = "  ".join(
        f"[dim]{escape(str(key))}=[/]{escape(_short(value, full))}"
        for key, value in event.items()
        if key not in _KNOWN
    )
    text = (
        f"{when} [{style}]{level:<7}[/] [magenta]{escape(str(event.get('logger', '')))}[/] "
        f"{escape(str(event.get('message', '')))}" + (f"  {extras}" if extras else "")
    )
    if event.get("exception"):
        text += "\n    " + escape(str(event["exception"])).replace("\n", "\n    ")
    return text


def _short(value: Any, full: bool) -> str:
    if isinstance(value, str):
        return value
    if not full and isinstance(value, dict | list) and value:
        return f"{{{len(value)} fields}}" if isinstance(value, dict) else f"[{len(value)} items]"
    return json.dumps(value, default=str)


def _lines(paths: Iterable[Path]) -> Iterable[str]:
    for path in paths:
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                yield from (line for line in handle if line.strip())
        except FileNotFoundError:
            continue  # rotated away while we read


def tail_log(directory: Path, count: int, console: Console,
             wanted: LogFilter = LogFilter(), full: bool = False) -> None:
    if not process_logs(directory):
        raise DataError(f"{directory}: no log files ({LOG_PREFIX}-*{LOG_SUFFIX}: each process "
                        "writes one when it runs)")
    for line in deque(merged_lines(directory, wanted), maxlen=count) if count else ():
        console.print(format_event(line, full), highlight=False)


@dataclass
class _Position:
    inode: int
    offset: int  # bytes already printed, always just after a newline
    runs: _RunContext = field(default_factory=_RunContext)


def follow_log(
    directory: Path,
    console: Console,
    *,
    poll_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
    wanted: LogFilter = LogFilter(),
    full: bool = False,
) -> None:
    """Print events as any process appends them (a process started later too), across
    rotations, until interrupted (or told to stop). What one poll finds is printed in the order
    it was written. No file is held open between polls, however many the folder holds."""
    positions = {path: position for path in current_files(directory)
                 if (position := _at_end(path)) is not None}
    if wanted.run_id is not None:  # the run each file is in by now, for lines not naming it
        for path, position in positions.items():
            for line in _lines([path]):
                position.runs.of(_parsed(line))
    while not should_stop():
        fresh: list[tuple[int, str]] = []
        for path in current_files(directory):
            fresh.extend(_new_lines(path, positions, wanted))
        for _, line in sorted(fresh, key=lambda item: item[0]):
            console.print(format_event(line, full), highlight=False)
        sleep(poll_s)


def _at_end(path: Path) -> _Position | None:
    """Just after the last complete line of `path`."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - 65536))
            tail = handle.read()
            return _Position(os.fstat(handle.fileno()).st_ino,
                             size - len(tail) + tail.rfind(b"\n") + 1)
    except FileNotFoundError:
        return None


def _new_lines(path: Path, positions: dict[Path, _Position],
               wanted: LogFilter) -> list[tuple[int, str]]:
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        return []  # between a rotation's rename and the new file
    position = positions.get(path)
    lines: list[str] = []
    if position is None:  # a file that appeared since: all of it
        position = positions[path] = _Position(inode, 0)
    elif position.inode != inode:  # rotated: the rest of the old file (now .1), then the new one
        lines += _read_complete_lines(path.with_name(path.name + ".1"), position)
        position = positions[path] = _Position(inode, 0, position.runs)
    lines += _read_complete_lines(path, position)
    keyed, last_ms = [], 0
    for line in lines:
        last_ms = written_ms(line) or last_ms
        event = _parsed(line)
        if wanted.wants(event, position.runs.of(event)):
            keyed.append((last_ms, line))
    return keyed


def _read_complete_lines(path: Path, position: _Position) -> list[str]:
    """The complete lines after `position` if `path` is still the file it points into; moves
    the position past them (a half-written last line waits for its newline)."""
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_ino != position.inode:
                return []
            handle.seek(position.offset)
            data = handle.read()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    position.offset += end
    text = data[:end].decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]
