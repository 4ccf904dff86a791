"""A run's heartbeat: a small JSON file beside its log that says it is alive.

A process killed with -9 (or stuck) cannot say so: instead a paper or live run rewrites
`logs/cryptobot-<UTC start>-<pid>.heartbeat` (the name of its own log file, cryptobot/logs.py,
with `.heartbeat` for `.jsonl`) as the market stream's events reach it, at most once every
`BEAT_INTERVAL_MS` of the wall clock, and marks it finished when it ends. `cryptobot status
--stale-after 5m` reads every heartbeat in the folder: a running run whose last beat is older
than that is silent. The file is written whole (a temporary file renamed over it), so a reader
never sees half of one.

    {"pid": 4242, "mode": "live", "run_id": "3", "symbols": ["BTC/USDT:USDT"],
     "started_ms": ..., "beat_ms": ..., "last_event_ms": ..., "finished": false}
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptobot.clock import Clock
from cryptobot.logs import LOG_SUFFIX, process_log_path

HEARTBEAT_SUFFIX = ".heartbeat"
BEAT_INTERVAL_MS = 10_000


@dataclass
class HeartbeatRecord:
    pid: int
    mode: str
    run_id: str | None
    symbols: list[str]
    started_ms: int
    beat_ms: int  # the wall-clock time of the last beat
    last_event_ms: int | None = None  # the run clock's time of the last market event
    finished: bool = False
    stop_reason: str = ""
    path: Path | None = field(default=None, compare=False)


def heartbeat_path(log_dir: str | Path) -> Path:
    """This process's heartbeat file in `log_dir`."""
    log_path = process_log_path(log_dir)
    return log_path.with_name(log_path.name.removesuffix(LOG_SUFFIX) + HEARTBEAT_SUFFIX)


class Heartbeat:
    def __init__(self, log_dir: str | Path, clock: Clock, mode: str, symbols: tuple[str, ...],
                 interval_ms: int = BEAT_INTERVAL_MS) -> None:
        self.path = heartbeat_path(log_dir)
        self.clock = clock
        self.interval_ms = interval_ms
        now_ms = clock.now_ms()
        self.record = HeartbeatRecord(os.getpid(), mode, None, list(symbols), now_ms, now_ms)
        self._written_ms: int | None = None

    def beat(self, run_id: str | None = None, event_ms: int | None = None) -> None:
        """Alive now (written if the last write is `interval_ms` old)."""
        now_ms = self.clock.now_ms()
        self.record.beat_ms = now_ms
        self.record.run_id = run_id if run_id is not None else self.record.run_id
        self.record.last_event_ms = event_ms if event_ms is not None else \
            self.record.last_event_ms
        if self._written_ms is None or now_ms - self._written_ms >= self.interval_ms:
            self._write()

    def finish(self, reason: str = "") -> None:
        self.record.beat_ms = self.clock.now_ms()
        self.record.finished, self.record.stop_reason = True, reason
        self._write()

    def _write(self) -> None:
        fields = asdict(self.record)
        fields.pop("path")
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(fields, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            return  # a full disk must not stop trading; `status` will call the run silent
        self._written_ms = self.record.beat_ms


@contextmanager
def beating(heartbeat: Heartbeat, run_id: str) -> Iterator[None]:
    """Beats from a thread every `interval_ms` while the block runs: for a process whose work
    comes in long steps with nothing to beat on between them (a sweep waiting on its cluster).
    The caller says how it ended (`heartbeat.finish`) after the block."""
    stop = threading.Event()

    def beat_until_stopped() -> None:
        while True:
            heartbeat.beat(run_id)
            if stop.wait(heartbeat.interval_ms / 1000):
                return

    thread = threading.Thread(target=beat_until_stopped, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def process_gone(pid: int) -> bool:
    """No process `pid` runs on this machine (a heartbeat's writer was killed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


def read_heartbeats(log_dir: str | Path) -> list[HeartbeatRecord]:
    """Every heartbeat in the folder, oldest start first (unreadable ones left out)."""
    records = []
    for path in sorted(Path(log_dir).glob(f"*{HEARTBEAT_SUFFIX}")):
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))
            records.append(HeartbeatRecord(**fields, path=path))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(records, key=lambda record: record.started_ms)


def latest_runs(records: list[HeartbeatRecord]) -> list[HeartbeatRecord]:
    """The newest heartbeat of each kind of run (mode and symbols): a run started again after a
    crash replaces the crashed one's."""
    latest: dict[tuple[str, tuple[str, ...]], HeartbeatRecord] = {}
    for record in records:
        latest[(record.mode, tuple(record.symbols))] = record
    return list(latest.values())
