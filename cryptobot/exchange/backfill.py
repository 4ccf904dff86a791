"""History through ccxt REST: warm-up before the first live candle, gap repair after a reconnect.

Only closed candles are returned (the venue's last row is usually the candle still forming).
ccxt errors become our ExchangeError tree (`ccxt_errors`), with one line naming the call.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt

from cryptobot.clock import DAY_MS, iso_utc
from cryptobot.data.timeframes import ms_to_timeframe
from cryptobot.errors import ExchangeError
from cryptobot.exchange.ccxt_errors import map_ccxt_error
from cryptobot.model import Candle, FundingRate, OpenInterest

OI_HISTORY_PERIOD = "5m"  # the finest openInterestHist period Binance serves
OI_HISTORY_LIMIT = 500
OI_HISTORY_MAX_DAYS = 30  # Binance keeps only the last 30 days of openInterestHist

T = TypeVar("T")


async def call_venue(awaitable: Awaitable[T], what: str) -> T:
    """Await a ccxt call; its errors come out as cryptobot errors naming `what`."""
    try:
        return await awaitable
    except ccxt.BaseError as exc:
        raise map_ccxt_error(exc, what) from None


async def fetch_closed_candles(rest: Any, symbol: str, interval_ms: int, start_ms: int,
                               closed_by_ms: int, limit: int = 1000) -> list[Candle]:
    """Candles opening at or after `start_ms` and closed by `closed_by_ms`, in order."""
    timeframe = ms_to_timeframe(interval_ms)
    candles: list[Candle] = []
    since_ms = start_ms
    while since_ms + interval_ms <= closed_by_ms:
        rows = await call_venue(rest.fetch_ohlcv(symbol, timeframe, since=since_ms, limit=limit),
                                f"fetch_ohlcv {symbol} {timeframe} from {iso_utc(since_ms)}")
        if not rows:
            break
        for row in rows:
            ts_open_ms = int(row[0])
            if ts_open_ms < since_ms:
                continue
            if ts_open_ms + interval_ms > closed_by_ms:
                return candles
            candles.append(Candle(ts_open_ms, interval_ms, float(row[1]), float(row[2]),
                                  float(row[3]), float(row[4]), float(row[5])))
        next_since_ms = int(rows[-1][0]) + interval_ms
        if next_since_ms <= since_ms:
            break
        since_ms = next_since_ms
    return candles


def open_interest_from_ccxt(row: dict) -> OpenInterest:
    """A ccxt open-interest structure -> our sample, stamped with the venue's own time."""
    timestamp = row.get("timestamp")
    amount = row.get("openInterestAmount")
    if timestamp is None or amount is None:
        raise ExchangeError(f"open interest without time or amount: {row.get('info')!r}")
    value = row.get("openInterestValue")
    return OpenInterest(int(timestamp), float(amount), None if value is None else float(value))


async def fetch_open_interest_history(rest: Any, symbol: str, start_ms: int,
                                      until_ms: int) -> list[OpenInterest]:
    """5m samples with start_ms <= ts_ms <= until_ms (the venue keeps about 30 days)."""
    start_ms = max(start_ms, until_ms - OI_HISTORY_MAX_DAYS * DAY_MS + 60_000)
    samples: list[OpenInterest] = []
    since_ms = start_ms
    while since_ms <= until_ms:
        rows = await call_venue(
            rest.fetch_open_interest_history(symbol, OI_HISTORY_PERIOD, since=since_ms,
                                             limit=OI_HISTORY_LIMIT,
                                             params={"until": until_ms}),
            f"fetch_open_interest_history {symbol} from {iso_utc(since_ms)}")
        fresh = [open_interest_from_ccxt(row) for row in rows]
        fresh = [s for s in fresh if since_ms <= s.ts_ms <= until_ms]
        if not fresh:
            break
        samples.extend(sorted(fresh, key=lambda s: s.ts_ms))
        since_ms = samples[-1].ts_ms + 1
    return samples


async def fetch_funding_history(rest: Any, symbol: str, start_ms: int,
                                until_ms: int) -> list[FundingRate]:
    """Settled funding rates with start_ms <= ts_ms <= until_ms, in order."""
    rates: list[FundingRate] = []
    since_ms = start_ms
    while since_ms <= until_ms:
        rows = await call_venue(
            rest.fetch_funding_rate_history(symbol, since=since_ms, limit=500,
                                            params={"until": until_ms}),
            f"fetch_funding_rate_history {symbol} from {iso_utc(since_ms)}")
        fresh = sorted((FundingRate(int(row["timestamp"]), float(row["fundingRate"]))
                        for row in rows if row.get("timestamp") is not None
                        and row.get("fundingRate") is not None),
                       key=lambda rate: rate.ts_ms)
        fresh = [rate for rate in fresh if since_ms <= rate.ts_ms <= until_ms]
        if not fresh:
            break
        rates.extend(fresh)
        since_ms = rates[-1].ts_ms + 1
    return rates


@dataclass(frozen=True)
class WarmUp:
    """History loaded before the first live candle: base candles and OI samples."""

    candles: list[Candle]
    open_interest: list[OpenInterest]

    @property
    def last_closed_open_ms(self) -> int | None:
        return self.candles[-1].ts_open_ms if self.candles else None


async def load_warm_up(rest: Any, symbol: str, interval_ms: int, now_ms: int, days: int,
                       with_open_interest: bool = True) -> WarmUp:
    """`days` of closed base candles up to `now_ms` (and OI history where the venue keeps it)."""
    start_ms = now_ms - days * DAY_MS
    start_ms -= start_ms % interval_ms
    candles = await fetch_closed_candles(rest, symbol, interval_ms, start_ms, now_ms)
    samples: list[OpenInterest] = []
    if with_open_interest:
        samples = await fetch_open_interest_history(rest, symbol, start_ms, now_ms)
    return WarmUp(candles, samples)
