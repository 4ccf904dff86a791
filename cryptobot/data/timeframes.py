"""Timeframe names ("1m", "15m", "1h", "1d") and their length in milliseconds."""

from __future__ import annotations

import re

from cryptobot.clock import DAY_MS, HOUR_MS, MINUTE_MS

_UNIT_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
_PATTERN = re.compile(r"^(\d+)([mhdw])$")


def timeframe_to_ms(timeframe: str) -> int:
    match = _PATTERN.match(timeframe.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"unknown timeframe {timeframe!r} (expected e.g. 1m, 5m, 15m, 1h, 1d)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def ms_to_timeframe(interval_ms: int) -> str:
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_MS[unit]
        if interval_ms % size == 0 and interval_ms >= size:
            return f"{interval_ms // size}{unit}"
    raise ValueError(f"{interval_ms} ms is not a whole number of minutes")


def format_duration(span_ms: int) -> str:
    """Readable length like '3h05m' or '2d04h'."""
    minutes = span_ms // MINUTE_MS
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{mins:02d}m"
    return f"{mins}m"
