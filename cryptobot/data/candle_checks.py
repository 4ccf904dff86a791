"""The rules a candle must pass, whatever brought it: a data file, a REST page, a stream message.

In order (the first rule a candle breaks is the one reported):

1. every price (open, high, low, close) a finite number, 2. and above zero;
3. the volume a finite number, not negative;
4. high not below low; 5. high not below the body (open, close); 6. low not above it:
   open and close lie inside [low, high]. A miss within a relative 1e-9 is float rounding
   (adjusted prices can leave high a few ulps under close), forgiven and repaired (`repaired`);
7. the open time on the timeframe's grid: a 5m candle opens at :00, :05, ...; a day at 00:00
   UTC; a week on Monday, as Binance and Bybit stamp them.

Written twice over the same order, and a test holds them equal: `problem_codes` over a file's
columns (vectorised) and `candle_problem` for one candle (REST pages, stream messages). What only a
stream knows is checked by the feed (cryptobot.exchange.streaming_feed) with `symbol_problem` (the
market a message names) and `time_problem` (a candle closing more than one interval after the
stream's time: a future-dated kline, or one more than an interval past the previous candle of an
unbroken stream).
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np

from cryptobot.clock import DAY_MS, iso_utc
from cryptobot.data.timeframes import format_duration, ms_to_timeframe

PRICE_SLACK = 1e-9  # relative: how far open or close may pass high or low by float rounding
WEEK_MS = 7 * DAY_MS
MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday: weeks open 4 days later


class CandleRule(IntEnum):
    """Why a candle is refused (0 is no problem)."""

    OK = 0
    PRICE_NOT_FINITE = 1
    PRICE_NOT_POSITIVE = 2
    BAD_VOLUME = 3
    HIGH_BELOW_LOW = 4
    HIGH_BELOW_BODY = 5
    LOW_ABOVE_BODY = 6
    OFF_GRID = 7


def grid(interval_ms: int) -> tuple[int, int] | None:
    """(step, offset) of the open times a timeframe's candles may have; None if not known."""
    if interval_ms <= 0:
        return None
    if DAY_MS % interval_ms == 0:
        return interval_ms, 0
    if interval_ms == WEEK_MS:
        return WEEK_MS, MONDAY_OFFSET_MS
    if interval_ms % DAY_MS == 0:
        return DAY_MS, 0  # several days: whole UTC days at least
    return None


def candle_problem(ts_open_ms: int, interval_ms: int | None, open_: float, high: float,
                   low: float, close: float, volume: float) -> CandleRule:
    """The first rule one candle breaks (CandleRule.OK if none); `interval_ms` None: no grid."""
    prices = (open_, high, low, close)
    if not all(math.isfinite(p) for p in prices):
        return CandleRule.PRICE_NOT_FINITE
    if not all(p > 0 for p in prices):
        return CandleRule.PRICE_NOT_POSITIVE
    if not (math.isfinite(volume) and volume >= 0):
        return CandleRule.BAD_VOLUME
    slack = PRICE_SLACK * high
    if high < low - slack:
        return CandleRule.HIGH_BELOW_LOW
    if high < max(open_, close) - slack:
        return CandleRule.HIGH_BELOW_BODY
    if low > min(open_, close) + slack:
        return CandleRule.LOW_ABOVE_BODY
    steps = grid(interval_ms) if interval_ms else None
    if steps is not None and (ts_open_ms - steps[1]) % steps[0]:
        return CandleRule.OFF_GRID
    return CandleRule.OK


def problem_codes(ts_open_ms: np.ndarray, interval_ms: int | None, open_: np.ndarray,
                  high: np.ndarray, low: np.ndarray, close: np.ndarray,
                  volume: np.ndarray) -> np.ndarray:
    """`candle_problem` for every row at once: an int8 CandleRule per row."""
    # a price near the float maximum plus its slack is inf, as in a one-candle check's floats
    with np.errstate(invalid="ignore", over="ignore"):
        slack = PRICE_SLACK * high
        finite = np.isfinite(open_) & np.isfinite(high) & np.isfinite(low) & np.isfinite(close)
        positive = (open_ > 0) & (high > 0) & (low > 0) & (close > 0)
        broken = [
            (CandleRule.PRICE_NOT_FINITE, ~finite),
            (CandleRule.PRICE_NOT_POSITIVE, ~positive),
            (CandleRule.BAD_VOLUME, ~(np.isfinite(volume) & (volume >= 0))),
            (CandleRule.HIGH_BELOW_LOW, high < low - slack),
            (CandleRule.HIGH_BELOW_BODY, high < np.maximum(open_, close) - slack),
            (CandleRule.LOW_ABOVE_BODY, low > np.minimum(open_, close) + slack),
        ]
    steps = grid(interval_ms) if interval_ms else None
    if steps is not None:
        broken.append((CandleRule.OFF_GRID, (ts_open_ms - steps[1]) % steps[0] != 0))
    codes = np.zeros(len(high), dtype=np.int8)
    for rule, bad in reversed(broken):  # the earliest rule a row breaks is written last
        codes[bad] = rule
    return codes


def describe(rule: CandleRule, ts_open_ms: int, interval_ms: int | None, open_: float,
             high: float, low: float, close: float, volume: float) -> str:
    """The broken rule in words, with the values that break it."""
    values = {"open": open_, "high": high, "low": low, "close": close}
    if rule is CandleRule.PRICE_NOT_FINITE:
        name = next(k for k, v in values.items() if not math.isfinite(v))
        return f"{name} {values[name]} is not a finite number"
    if rule is CandleRule.PRICE_NOT_POSITIVE:
        name = next(k for k, v in values.items() if not v > 0)
        return f"{name} {values[name]} is not a positive price"
    if rule is CandleRule.BAD_VOLUME:
        return f"volume {volume} is " + ("negative" if volume < 0 else "not a finite number")
    if rule is CandleRule.HIGH_BELOW_LOW:
        return f"high {high} is below low {low}"
    if rule is CandleRule.HIGH_BELOW_BODY:
        return f"high {high} is below max(open {open_}, close {close})"
    if rule is CandleRule.LOW_ABOVE_BODY:
        return f"low {low} is above min(open {open_}, close {close})"
    if rule is CandleRule.OFF_GRID:
        assert interval_ms is not None
        return (f"open time {ts_open_ms} ({iso_utc(ts_open_ms)}) is not on the "
                f"{ms_to_timeframe(interval_ms)} grid")
    return "no problem"


def repaired(open_: float, high: float, low: float, close: float) -> tuple[float, float]:
    """(high, low) widened to hold the body: only ever a float-rounding miss, after the checks."""
    return max(high, open_, close), min(low, open_, close)


def symbol_problem(said_market: str | None, expected_market: str) -> str | None:
    """A stream message about another market than the one subscribed (venue market ids)."""
    if said_market is None or said_market.upper() == expected_market.upper():
        return None
    return f"{said_market} data on the {expected_market} stream"


def time_problem(ts_open_ms: int, interval_ms: int, now_ms: int) -> str | None:
    """A stream candle from the future: closing more than one interval after `now_ms` (the
    clock; one interval of slack, so a live clock a little behind the venue's loses nothing)."""
    close_ms = ts_open_ms + interval_ms
    if close_ms <= now_ms + interval_ms:
        return None
    return (f"open time {iso_utc(ts_open_ms)} is in the future: it closes "
            f"{format_duration(close_ms - now_ms)} after the clock's {iso_utc(now_ms)}")
