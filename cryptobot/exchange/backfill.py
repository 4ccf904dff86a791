"""History through ccxt REST: warm-up before the first live candle, gap repair after a reconnect.

Only closed candles are returned (the venue's last row is usually the candle still forming).
Every request stays inside one page the venue documents (`PAGE_LIMITS`, by ccxt id) and names
its own end, so Binance and Bybit are paged the same way. ccxt errors become our ExchangeError
tree (`ccxt_errors`), with one line naming the call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt

from cryptobot.clock import DAY_MS, HOUR_MS, iso_utc
from cryptobot.data.candle_checks import CandleRule, candle_problem, describe
from cryptobot.data.timeframes import ms_to_timeframe, timeframe_to_ms
from cryptobot.errors import ExchangeError
from cryptobot.exchange.ccxt_errors import map_ccxt_error
from cryptobot.model import Candle, FundingRate, OpenInterest

log = logging.getLogger("cryptobot.exchange.backfill")

OI_HISTORY_PERIOD = "5m"  # the finest open-interest period Binance serves (Bybit: "5min")
OI_HISTORY_MAX_DAYS = 30  # Binance keeps only the last 30 days of openInterestHist
# The shortest funding interval either venue uses (Binance moves volatile symbols to 1h): a
# window of one page then never holds more rates than the page, whichever end the venue pages
# from (Bybit pages from the end, and would drop the oldest).
FUNDING_STEP_MS = HOUR_MS


@dataclass(frozen=True)
class PageLimits:
    """The most rows one history request may ask a venue for (its documented maximum)."""

    klines: int
    open_interest: int
    funding: int


# Binance USD-M docs: klines [1, 1500], openInterestHist [1, 500], fundingRate [1, 1000]; ccxt
# sends at most 1000 klines, and a window must fit the limit actually sent, so 1000 here.
# Bybit v5 docs: market/kline [1, 1000], market/open-interest [1, 200], history-fund-rate [1, 200].
PAGE_LIMITS = {"binanceusdm": PageLimits(1000, 500, 1000), "bybit": PageLimits(1000, 200, 200)}
SMALLEST_PAGES = PageLimits(1000, 200, 200)  # a venue not listed: fits both we know

T = TypeVar("T")
Row = TypeVar("Row", Candle, OpenInterest, FundingRate)
# (since_ms, limit, until_ms) -> one page of rows, converted
FetchPage = Callable[[int, int, int], Awaitable[list[Row]]]


def oldest_open_interest_ms(now_ms: int) -> int:
    """The earliest openInterestHist start Binance accepts at `now_ms` (a minute of margin)."""
    return now_ms - OI_HISTORY_MAX_DAYS * DAY_MS + 60_000


def page_limits(rest: Any) -> PageLimits:
    """`rest` is a ccxt client (or a stand-in with the same `id`)."""
    return PAGE_LIMITS.get(rest.id, SMALLEST_PAGES)


def page_end_ms(since_ms: int, last_ms: int, rows_per_page: int, step_ms: int) -> int:
    """Where a request from `since_ms` for `rows_per_page` rows `step_ms` apart must end (not
    after `last_ms`): the whole window then fits in one answer, whichever end the venue pages
    from (Binance from the start, Bybit from the end)."""
    return min(last_ms, since_ms + rows_per_page * step_ms - 1)


async def call_venue(awaitable: Awaitable[T], what: str) -> T:
    """Await a ccxt call (a read); its errors come out as cryptobot errors naming `what`."""
    try:
        return await awaitable
    except ccxt.BaseError as exc:
        raise map_ccxt_error(exc, what) from None


async def fetch_pages(fetch: FetchPage[Row], start_ms: int, until_ms: int, rows_per_page: int,
                      step_ms: int, what: str) -> list[Row]:
    """Rows stamped start_ms..until_ms (inclusive), in order, one window per request.

    Each request asks for at most `rows_per_page` rows and ends at `page_end_ms`. An empty
    window is stepped over (a hole in the venue's history), so the number of requests is
    bounded by the span.
    """
    rows: list[Row] = []
    since_ms = start_ms
    while since_ms <= until_ms:
        page_until_ms = page_end_ms(since_ms, until_ms, rows_per_page, step_ms)
        page = await call_venue(fetch(since_ms, rows_per_page, page_until_ms),
                                f"{what} from {iso_utc(since_ms)}")
        fresh = sorted((row for row in page if since_ms <= _stamp(row) <= page_until_ms),
                       key=_stamp)
        rows.extend(fresh)
        since_ms = _stamp(fresh[-1]) + 1 if fresh else page_until_ms + 1
    return rows


def _stamp(row: Candle | OpenInterest | FundingRate) -> int:
    return row.ts_open_ms if isinstance(row, Candle) else row.ts_ms


async def fetch_closed_candles(rest: Any, symbol: str, interval_ms: int, start_ms: int,
                               closed_by_ms: int) -> list[Candle]:
    """Candles opening at or after `start_ms` and closed by `closed_by_ms`, in order, tagged
    with `symbol` (as every row fetched here is)."""
    timeframe = ms_to_timeframe(interval_ms)

    async def fetch(since_ms: int, limit: int, until_ms: int) -> list[Candle]:
        rows = await rest.fetch_ohlcv(symbol, timeframe, since=since_ms, limit=limit,
                                      params={"until": until_ms})
        return [Candle(int(row[0]), interval_ms, float(row[1]), float(row[2]), float(row[3]),
                       float(row[4]), float(row[5]), symbol) for row in rows]

    return await fetch_pages(fetch, start_ms, closed_by_ms - interval_ms,
                             page_limits(rest).klines, interval_ms,
                             f"fetch_ohlcv {symbol} {timeframe}")


def checked_candles(candles: list[Candle], what: str) -> list[Candle]:
    """The candles that pass the one candle rule set (cryptobot.data.candle_checks); the
    refused ones are counted in one warning naming the first."""
    good, first_problem, refused = [], "", 0
    for candle in candles:
        rule = candle_problem(candle.ts_open_ms, candle.interval_ms, candle.open, candle.high,
                              candle.low, candle.close, candle.volume)
        if rule is CandleRule.OK:
            good.append(candle)
            continue
        refused += 1
        first_problem = first_problem or describe(
            rule, candle.ts_open_ms, candle.interval_ms, candle.open, candle.high, candle.low,
            candle.close, candle.volume)
    if refused:
        log.warning("%s: %d candle(s) from REST refused by the market-data checks, first: %s",
                    what, refused, first_problem)
    return good


def open_interest_from_ccxt(row: dict, symbol: str = "") -> OpenInterest:
    """A ccxt open-interest structure -> our sample, stamped with the venue's own time."""
    timestamp = row.get("timestamp")
    amount = row.get("openInterestAmount")
    if timestamp is None or amount is None:
        raise ExchangeError(f"open interest without time or amount: {row.get('info')!r}")
    value = row.get("openInterestValue")
    return OpenInterest(int(timestamp), float(amount), None if value is None else float(value),
                        symbol)


async def fetch_open_interest_history(rest: Any, symbol: str, start_ms: int,
                                      until_ms: int) -> list[OpenInterest]:
    """5m samples with start_ms <= ts_ms <= until_ms (Binance keeps about 30 days)."""
    start_ms = max(start_ms, oldest_open_interest_ms(until_ms))

    async def fetch(since_ms: int, limit: int, page_until_ms: int) -> list[OpenInterest]:
        rows = await rest.fetch_open_interest_history(symbol, OI_HISTORY_PERIOD, since=since_ms,
                                                      limit=limit,
                                                      params={"until": page_until_ms})
        return [open_interest_from_ccxt(row, symbol) for row in rows]

    return await fetch_pages(fetch, start_ms, until_ms, page_limits(rest).open_interest,
                             timeframe_to_ms(OI_HISTORY_PERIOD),
                             f"fetch_open_interest_history {symbol}")


async def fetch_funding_history(rest: Any, symbol: str, start_ms: int,
                                until_ms: int) -> list[FundingRate]:
    """Settled funding rates with start_ms <= ts_ms <= until_ms, in order, stamped as the venue
    stamps them (Binance: often a few ms after the hour): the engine settles each rate at its
    timestamp's minute (cryptobot.data.funding_times), so nothing is rounded here and nothing
    the venue said is lost."""

    async def fetch(since_ms: int, limit: int, page_until_ms: int) -> list[FundingRate]:
        rows = await rest.fetch_funding_rate_history(symbol, since=since_ms, limit=limit,
                                                     params={"until": page_until_ms})
        return [FundingRate(int(row["timestamp"]), float(row["fundingRate"]), symbol)
                for row in rows
                if row.get("timestamp") is not None and row.get("fundingRate") is not None]

    return await fetch_pages(fetch, start_ms, until_ms, page_limits(rest).funding,
                             FUNDING_STEP_MS, f"fetch_funding_rate_history {symbol}")


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
    candles = checked_candles(await fetch_closed_candles(rest, symbol, interval_ms, start_ms,
                                                         now_ms), f"warm-up {symbol}")
    samples: list[OpenInterest] = []
    if with_open_interest:
        samples = await fetch_open_interest_history(rest, symbol, start_ms, now_ms)
    return WarmUp(candles, samples)
