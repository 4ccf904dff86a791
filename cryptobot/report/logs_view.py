"""`cryptobot logs tail`: the JSON-lines log (and its rotated files) pretty-printed."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from cryptobot.clock import iso_utc
from cryptobot.errors import DataError
from cryptobot.logs import LOG_FILE_NAME

LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "cyan",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold red",
}
_KNOWN = ("ts_ms", "level", "logger", "message", "exception")


def log_files(directory: Path) -> list[Path]:
    """Oldest first: cryptobot.jsonl.N .. cryptobot.jsonl.1, then cryptobot.jsonl."""
    current = directory / LOG_FILE_NAME
    rotated = []
    for path in directory.glob(f"{LOG_FILE_NAME}.*"):
        suffix = path.name.rsplit(".", 1)[-1]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    files = [path for _, path in sorted(rotated, reverse=True)]
    return files + [current] if current.is_file() else files


def format_event(line: str) -> str:
    """One log line as rich markup; a line that is not a JSON object is shown as it is."""
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
        f"[dim]{escape(str(key))}=[/]{escape(_short(value))}"
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


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _lines(paths: Iterable[Path]) -> Iterable[str]:
    for path in paths:
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                yield from (line for line in handle if line.strip())
        except FileNotFoundError:
            continue  # rotated away while we read


def tail_log(directory: Path, count: int, console: Console) -> None:
    files = log_files(directory)
    if not files:
        raise DataError(
            f"{directory / LOG_FILE_NAME}: no log file (the bot writes it when it runs)"
        )
    for line in deque(_lines(files), maxlen=count) if count else ():
        console.print(format_event(line), highlight=False)


def follow_log(
    directory: Path,
    console: Console,
    *,
    poll_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Print events as they are appended, across rotations, until interrupted (or told to stop)."""
    path = directory / LOG_FILE_NAME
    handle: IO[str] | None = _open(path, at_end=True)
    pending = ""
    while not should_stop():
        if handle is not None:
            pending = _drain(handle, pending, console)
            if _rotated(handle, path):
                pending = _drain(handle, pending, console)
                handle.close()
                handle, pending = _open(path, at_end=False), ""
        elif path.is_file():
            handle = _open(path, at_end=False)
            continue
        sleep(poll_s)
    if handle is not None:
        handle.close()


def _open(path: Path, at_end: bool) -> IO[str] | None:
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    if at_end:
        handle.seek(0, os.SEEK_END)
    return handle


def _rotated(handle: IO[str], path: Path) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False  # between the rename and the new file: wait


def _drain(handle: IO[str], pending: str, console: Console) -> str:
    """Print every complete line; a half-written last line waits for its newline."""
    while True:
        chunk = handle.readline()
        if not chunk:
            return pending
        pending += chunk
        if pending.endswith("\n"):
            if pending.strip():
                console.print(format_event(pending), highlight=False)
            pending = ""
