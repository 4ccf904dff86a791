"""The only place that reads the wall clock. Everything else is handed a Clock."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch, UTC."""
        ...


class LiveClock:
    """Wall-clock time, for paper and live trading."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SimClock:
    """Time that only moves when the feed says so (backtest and replay).

    It never moves backwards: a feed that tries is a bug, and it raises.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance_to(self, ts_ms: int) -> None:
        if ts_ms < self._now_ms:
            raise ValueError(f"SimClock cannot go back from {self._now_ms} to {ts_ms}")
        self._now_ms = ts_ms


def ms_to_datetime(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def datetime_to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: all times must be timezone-aware UTC")
    return int(moment.timestamp() * 1000)


_ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"
_YEAR_10000_MS = 253_402_300_800_000  # where datetime's range ends


def iso_utc(ts_ms: int) -> str:
    """ISO-8601 UTC like 2025-10-10T21:15:00Z (seconds precision)."""
    if 0 <= ts_ms < _YEAR_10000_MS:  # the same text without a datetime (a backtest's thousands)
        day, second = divmod(int(ts_ms) // 1000, 86_400)
        return _day_text(day) + _time_of_day_text(second)
    return ms_to_datetime(ts_ms).strftime(_ISO_UTC)


# A run's times fall on few days and, candles being aligned, few times of day: each part is
# formatted once (a backtest formats thousands of times, ~0.3 us each instead of ~1)
@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))


@functools.lru_cache(maxsize=4096)
def _time_of_day_text(second: int) -> str:
    hours, second = divmod(second, 3600)
    return f"{hours:02d}:{second // 60:02d}:{second % 60:02d}Z"


def parse_utc(text: str) -> int:
    """Parse '2024-08-05', '2024-08-05T06:15', '...Z' or an offset; naive means UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime_to_ms(moment)


MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def utc_day_start_ms(ts_ms: int) -> int:
    return ts_ms - ts_ms % DAY_MS
