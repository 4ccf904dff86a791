"""When a macro observation became public, in UTC ms, from New York release times (DST-aware).

Delays and ages count business days of a US calendar (cryptobot.macro.calendars): WALCL for the
Wednesday before Thanksgiving is published on Friday, not on the holiday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from cryptobot.clock import DAY_MS, HOUR_MS
from cryptobot.macro.calendars import business_days

NEW_YORK = ZoneInfo("America/New_York")


def ny_moment_ms(day: date, at: time) -> int:
    """`day` at the New York wall time `at`, as UTC epoch ms (EST or EDT as that day had it)."""
    local = datetime.combine(day, at, tzinfo=NEW_YORK)
    return int(local.astimezone(UTC).timestamp() * 1000)


def publication_ms(dates: np.ndarray, delay_business_days: int, at: time,
                   calendar: str) -> np.ndarray:
    """Publication time of each observation date: the `delay`-th business day after it (the
    date itself when the delay is 0) at `at` New York time."""
    days = dates.astype("datetime64[D]")
    if delay_business_days > 0:
        # Rolling back first makes a holiday's observation count from the business day
        # before it: the first business day after Christmas Wednesday is that Thursday.
        days = np.busday_offset(days, delay_business_days, roll="backward",
                                busdaycal=business_days(calendar))
    return _days_at(days, at)


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


@lru_cache(maxsize=4096)
def date_start_ms(observation_date: str) -> int:
    """00:00 UTC of a YYYY-MM-DD observation date (worked out once per date: the gate asks at
    every signal for the same few)."""
    return day_start_ms(np.datetime64(observation_date))


def ny_date(ts_ms: int) -> np.datetime64:
    """The calendar date in New York at `ts_ms`. New York is a whole number of hours behind
    UTC and moves its clocks at whole UTC hours, so one UTC hour lies in one New York date:
    it is worked out once per hour."""
    return _ny_date_of_hour(ts_ms // HOUR_MS)


@lru_cache(maxsize=256)
def _ny_date_of_hour(hour: int) -> np.datetime64:
    local = datetime.fromtimestamp(hour * HOUR_MS / 1000, tz=UTC).astimezone(NEW_YORK)
    return np.datetime64(local.date(), "D")


def trading_days_between(observation_date: str, ts_ms: int, calendar: str) -> int:
    """Business days from an observation date (YYYY-MM-DD) to the New York date of `ts_ms`."""
    return _business_days_between(observation_date, ny_date(ts_ms), calendar)


@lru_cache(maxsize=4096)
def _business_days_between(observation_date: str, until: np.datetime64, calendar: str) -> int:
    return int(np.busday_count(np.datetime64(observation_date, "D"), until,
                               busdaycal=business_days(calendar)))
