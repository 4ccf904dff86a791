"""When a macro observation became public, in UTC ms, from New York release times (DST-aware).

Delays count business days (Monday to Friday; US holidays are not modelled, which can only make
an observation look public a day early around a holiday, never years late).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np

from cryptobot.clock import DAY_MS
from cryptobot.errors import ConfigError

NEW_YORK = ZoneInfo("America/New_York")


def parse_ny_time(text: str, key: str) -> time:
    try:
        hour, minute = (int(part) for part in text.split(":"))
        return time(hour, minute)
    except ValueError:
        raise ConfigError(f"macro.{key}: {text!r} is not a time like 16:30") from None


def ny_moment_ms(day: date, at: time) -> int:
    """`day` at the New York wall time `at`, as UTC epoch ms (EST or EDT as that day had it)."""
    local = datetime.combine(day, at, tzinfo=NEW_YORK)
    return int(local.astimezone(UTC).timestamp() * 1000)


def publication_ms(dates: np.ndarray, delay_business_days: int, at: time) -> np.ndarray:
    """Publication time of each observation date: `delay` business days later at `at` New York."""
    release_days = np.busday_offset(dates.astype("datetime64[D]"), delay_business_days,
                                    roll="forward")
    return _days_at(release_days, at)


def vintage_publication_ms(vintage_days: np.ndarray, at: time) -> np.ndarray:
    """ALFRED vintage dates (the day a value first appeared) at the release time of day."""
    return _days_at(vintage_days.astype("datetime64[D]"), at)


def _days_at(days: np.ndarray, at: time) -> np.ndarray:
    # Convert each distinct day once; zoneinfo is exact about the DST switch days.
    unique_days, inverse = np.unique(days, return_inverse=True)
    converted = np.array(
        [ny_moment_ms(day.astype(object), at) for day in unique_days], dtype=np.int64
    )
    return converted[inverse]


def day_start_ms(day: np.datetime64) -> int:
    """00:00 UTC of an observation date."""
    return int(day.astype("datetime64[D]").astype(np.int64)) * DAY_MS


def ny_date(ts_ms: int) -> np.datetime64:
    """The calendar date in New York at `ts_ms`."""
    local = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(NEW_YORK)
    return np.datetime64(local.date(), "D")


def trading_days_between(earlier: np.datetime64, ts_ms: int) -> int:
    """Business days from an observation date to the New York date of `ts_ms`."""
    return int(np.busday_count(earlier.astype("datetime64[D]"), ny_date(ts_ms)))
