"""When a funding rate settles, whatever its interval, and what a series of rates says about it.

Binance and Bybit settle funding every 8h by default (00:00, 08:00, 16:00 UTC); Binance moves a
symbol to 4h or 1h when its market is volatile, and stamps a settled rate a few milliseconds
(sometimes seconds) after the hour. So a rate is never looked for at an expected time: its own
timestamp says when it settled.

The rule (one for backtest, paper, live and a restart's replay):
- a rate settles at its timestamp floored to the minute (`settlement_ms`); two rates of the
  same settlement minute are one settlement, the first one counts;
- it is charged on the base candle whose span [open, close) contains that settlement time (a
  rate exactly on a candle boundary belongs to the candle that opens there), on the position
  held when that candle closes; the candle's close is at or after the rate's own timestamp, so
  it is never used before it was published (`due_ms`: the first moment it is both);
- a rate that reaches the engine after that candle (a live poll that came late) is charged at
  the next candle, as it would have been on time: at its own candle's open, on what was held
  then (FundingDue.held_when_due); if the trade closed before it arrived, it is not charged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptobot.clock import HOUR_MS, MINUTE_MS

DEFAULT_INTERVAL_MS = 8 * HOUR_MS  # both venues' default; Binance lists the exceptions


def settlement_ms(ts_ms: int) -> int:
    """The settlement a rate stamped `ts_ms` belongs to: its minute."""
    return ts_ms - ts_ms % MINUTE_MS


def due_ms(ts_ms: int) -> int:
    """The first millisecond at which the rate is both settled and published: it falls in the
    base candle (open, close] that the rate is charged on."""
    return max(settlement_ms(ts_ms) + 1, ts_ms)


def distinct_settlements(stamps_ms: Iterable[int]) -> list[int]:
    """The stamps that count (sorted input): the first of each settlement minute."""
    kept: list[int] = []
    last = None
    for ts_ms in stamps_ms:
        settled = settlement_ms(ts_ms)
        if last is None or settled > last:
            kept.append(ts_ms)
            last = settled
    return kept


def intervals_ms(stamps_ms: Sequence[int]) -> tuple[int, ...]:
    """The intervals between consecutive settlements (sorted stamps of one symbol), longest
    first (gaps longer than 8h, holes in the data, are not intervals)."""
    settled = [settlement_ms(ts) for ts in distinct_settlements(stamps_ms)]
    gaps = {b - a for a, b in zip(settled, settled[1:], strict=False)
            if b - a <= DEFAULT_INTERVAL_MS}
    return tuple(sorted(gaps, reverse=True))


def intervals_text(intervals: Iterable[int]) -> str:
    """e.g. "8h/4h"."""
    return "/".join(_duration(gap) for gap in sorted(set(intervals), reverse=True))


def off_hour_count(stamps_ms: Iterable[int]) -> int:
    """Rates stamped off the whole hour (milliseconds or seconds late, or off the grid)."""
    return sum(1 for ts in stamps_ms if ts % HOUR_MS)


def _duration(ms: int) -> str:
    if ms % HOUR_MS == 0:
        return f"{ms // HOUR_MS}h"
    return f"{ms // MINUTE_MS}m"
