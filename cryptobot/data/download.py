"""`cryptobot data download`: candles and OI history from the exchange into the store via ccxt.

Paginated, resumable (restarts after what is stored), and polite: ccxt's own rate limiter is on,
an HTTP 429 waits for the server's Retry-After and retries, network errors back off (both
through `ccxt_errors.retry_temporary`, bounded). Whatever was fetched before an interruption is
stored, so a rerun carries on. Several symbols go one after the other, reporting one progress
for the whole download.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt
import numpy as np

from cryptobot.clock import Clock, iso_utc
from cryptobot.data.frames import uncovered_edges
from cryptobot.data.importer import ImportResult, write_series
from cryptobot.data.market_store import MarketStore
from cryptobot.data.readers import CANDLES, OPEN_INTEREST, parse_rows
from cryptobot.data.timeframes import format_duration, timeframe_to_ms
from cryptobot.errors import DataError, TemporaryExchangeError
from cryptobot.exchange.backfill import (
    OI_HISTORY_MAX_DAYS,
    OI_HISTORY_PERIOD,
    oldest_open_interest_ms,
    page_end_ms,
    page_limits,
)
from cryptobot.exchange.ccxt_errors import call_ccxt, retry_after_s, retry_temporary
from cryptobot.exchange.symbols import market_id

METRICS_DUMPS_HINT = ("for older OI use Binance's daily metrics dumps "
                      "(https://data.binance.vision/?prefix=data/futures/um/daily/metrics/) "
                      "with `cryptobot data import`")
# (share of the whole download done, 0..1; what is being fetched, e.g. "ETH/USDT:USDT candles
# to 2024-08-03T12:00:00Z"). Each symbol is an equal share, candles and OI half of it each.
Progress = Callable[[float, str], None]
_PHASES = (CANDLES, OPEN_INTEREST)


def download_interval_ms(timeframe: str) -> int:
    """The candle size asked for on the command line, or a DataError naming the option."""
    try:
        return timeframe_to_ms(timeframe)
    except ValueError as exc:
        raise DataError(f"--timeframe: {exc}") from None


def check_exchange_timeframe(exchange: Any, timeframe: str) -> None:
    """Refuse a timeframe the venue does not serve (ccxt's `timeframes`), before any request."""
    served = list(getattr(exchange, "timeframes", None) or {})
    if served and timeframe not in served:
        raise DataError(f"--timeframe: {timeframe!r} is not a {exchange.id} interval "
                        f"(it serves {', '.join(served)})")


@dataclass
class DownloadResult:
    candles: ImportResult | None = None
    open_interest: ImportResult | None = None
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0


@dataclass
class Downloader:
    exchange: Any  # a sync ccxt instance, e.g. from make_exchange
    store: MarketStore
    clock: Clock
    exchange_id: str = "binanceusdm"
    page_limit: int | None = None  # rows per request; None: the venue's documented page
    oi_page_limit: int | None = None
    max_retries: int = 5
    max_backoff_s: float = 30.0
    flush_every_pages: int = 20
    sleep: Callable[[float], None] = time.sleep
    progress: Progress | None = None
    result: DownloadResult = field(default_factory=DownloadResult)  # the symbol at work
    # (the symbol's place, how many symbols): its share of the progress
    _share: tuple[int, int] = field(default=(0, 1), init=False)

    def run(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> DownloadResult:
        return self.run_all([symbol], timeframe, since_ms, until_ms)[symbol]

    def run_all(self, symbols: Sequence[str], timeframe: str, since_ms: int,
                until_ms: int) -> dict[str, DownloadResult]:
        """Each symbol in turn (one result each, in their order), one progress for them all.
        Everything is checked before the first row is fetched: the span, the timeframe, and
        that the exchange lists every symbol."""
        ids = [market_id(s) for s in symbols]
        if not symbols or len(set(ids)) != len(ids):
            raise DataError(f"--symbol: expected distinct symbols, got {', '.join(symbols)}")
        if until_ms <= since_ms:
            raise DataError(f"download span is empty: {iso_utc(since_ms)} .. {iso_utc(until_ms)}")
        interval_ms = download_interval_ms(timeframe)
        check_exchange_timeframe(self.exchange, timeframe)
        until_ms = min(until_ms, self.clock.now_ms())
        pages = page_limits(self.exchange)
        self.page_limit = self.page_limit or pages.klines
        self.oi_page_limit = self.oi_page_limit or pages.open_interest
        results = {symbol: DownloadResult() for symbol in symbols}
        self.result = results[symbols[0]]  # what loading the markets costs counts for the first
        self._call("load markets", self.exchange.load_markets)
        self._check_listed(symbols)
        for index, symbol in enumerate(symbols):
            self.result, self._share = results[symbol], (index, len(symbols))
            self._download(symbol, timeframe, interval_ms, since_ms, until_ms)
        return results

    def _check_listed(self, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            try:
                self.exchange.market(symbol)
            except ccxt.BadSymbol:
                raise DataError(f"--symbol: {symbol} is not a {self.exchange.id} market") from None

    def _download(self, symbol: str, timeframe: str, interval_ms: int, since_ms: int,
                  until_ms: int) -> None:
        self.result.candles = self._candles(symbol, timeframe, interval_ms, since_ms, until_ms)
        self._note_uncovered(symbol, interval_ms, since_ms, until_ms)
        oi_since = self._oi_start(since_ms, until_ms)
        if oi_since is not None:
            self.result.open_interest = self._open_interest(symbol, oi_since, until_ms)
        self._report(symbol, OPEN_INTEREST, since_ms, until_ms, until_ms)  # this symbol's done

    # ---- candles ------------------------------------------------------------------------
    def _candles(self, symbol: str, timeframe: str, interval_ms: int, since_ms: int,
                 until_ms: int) -> ImportResult | None:
        start_ms = self._resume_point(symbol, CANDLES, interval_ms, since_ms, until_ms)
        closed_before_ms = self.clock.now_ms() - interval_ms  # the running candle is not final
        pages: list[list[Any]] = []
        written: ImportResult | None = None
        try:
            while start_ms < until_ms:
                end_ms = page_end_ms(start_ms, until_ms - 1, self.page_limit, interval_ms)
                rows = self._call("fetch candles", lambda s=start_ms, e=end_ms:
                                  self.exchange.fetch_ohlcv(symbol, timeframe, since=s,
                                                            limit=self.page_limit,
                                                            params={"until": e}))
                rows = [r for r in rows if start_ms <= r[0] <= end_ms and r[0] <= closed_before_ms]
                if not rows:
                    break
                pages.append(rows)
                start_ms = int(rows[-1][0]) + interval_ms
                self._report(symbol, CANDLES, since_ms, start_ms, until_ms)
                if len(pages) >= self.flush_every_pages:
                    written = self._flush(symbol, CANDLES, pages, interval_ms) or written
                    pages = []
        finally:
            written = self._flush(symbol, CANDLES, pages, interval_ms) or written
        return written

    def _note_uncovered(self, symbol: str, interval_ms: int, since_ms: int,
                        until_ms: int) -> None:
        """Say where the requested span has no candles at its edges (e.g. before a listing)."""
        now_ms = self.clock.now_ms()
        until_ms = min(until_ms, now_ms - now_ms % interval_ms)  # the running candle is not due
        stored = self.store.read(self.exchange_id, symbol, CANDLES, interval_ms)
        ts = np.empty(0, dtype=np.int64) if stored is None else stored.frame["ts_open_ms"]
        ts = ts[(ts >= since_ms) & (ts < until_ms)]
        if not len(ts):
            self.result.notes.append(f"the exchange has no {symbol} candles from "
                                     f"{iso_utc(since_ms)} to {iso_utc(until_ms)}")
            return
        for from_ms, to_ms in uncovered_edges(ts, interval_ms, since_ms, until_ms):
            self.result.notes.append(f"the exchange has no {symbol} candles from "
                                     f"{iso_utc(from_ms)} to {iso_utc(to_ms)} "
                                     f"({format_duration(to_ms - from_ms)})")

    # ---- open interest ------------------------------------------------------------------
    def _oi_start(self, since_ms: int, until_ms: int) -> int | None:
        oldest_ms = oldest_open_interest_ms(self.clock.now_ms())
        oldest_ms += -oldest_ms % timeframe_to_ms(OI_HISTORY_PERIOD)
        if since_ms >= oldest_ms:
            return since_ms
        covered = "none of it" if until_ms <= oldest_ms else f"only from {iso_utc(oldest_ms)}"
        self.result.notes.append(
            f"Binance serves open-interest history for the last {OI_HISTORY_MAX_DAYS} days only: "
            f"{covered} has OI from the API; {METRICS_DUMPS_HINT}")
        return oldest_ms if until_ms > oldest_ms else None

    def _open_interest(self, symbol: str, since_ms: int, until_ms: int) -> ImportResult | None:
        period_ms = timeframe_to_ms(OI_HISTORY_PERIOD)
        start_ms = self._resume_point(symbol, OPEN_INTEREST, None, since_ms, until_ms, period_ms)
        pages: list[list[Any]] = []
        written: ImportResult | None = None
        try:
            while start_ms < until_ms:
                end_ms = page_end_ms(start_ms, until_ms - 1, self.oi_page_limit, period_ms)
                rows = self._call("fetch open interest", lambda s=start_ms, e=end_ms:
                                  self.exchange.fetch_open_interest_history(
                                      symbol, OI_HISTORY_PERIOD, since=s, limit=self.oi_page_limit,
                                      params={"until": e}))
                rows = [r for r in rows if start_ms <= r["timestamp"] < until_ms]
                if rows:
                    pages.append(rows)
                    start_ms = int(rows[-1]["timestamp"]) + period_ms
                else:
                    start_ms = end_ms + 1  # a hole in Binance's history: step over it
                self._report(symbol, OPEN_INTEREST, since_ms, start_ms, until_ms)
        finally:
            written = self._flush(symbol, OPEN_INTEREST, pages, None) or written
        return written

    # ---- shared -------------------------------------------------------------------------
    def _resume_point(self, symbol: str, kind: str, interval_ms: int | None, since_ms: int,
                      until_ms: int, step_ms: int | None = None) -> int:
        stored = self.store.read(self.exchange_id, symbol, kind, interval_ms)
        if stored is None or stored.frame.empty:
            return since_ms
        ts = stored.frame.time()
        inside = ts[(ts >= since_ms) & (ts < until_ms)]
        if not len(inside) or int(inside[0]) > since_ms + (step_ms or interval_ms or 0):
            return since_ms
        return int(inside[-1]) + (step_ms or interval_ms or 0)

    def _flush(self, symbol: str, kind: str, pages: list[list[Any]],
               interval_ms: int | None) -> ImportResult | None:
        rows = [row for page in pages for row in page]
        if not rows:
            return None
        source = f"ccxt:{self.exchange_id}:{kind}"
        frame = parse_rows(rows, source, interval_ms).frame
        return write_series(self.store, self.exchange_id, symbol, kind, frame, (source,),
                            interval_ms)

    def _report(self, symbol: str, kind: str, since_ms: int, done_ms: int,
                 until_ms: int) -> None:
        if self.progress is None:
            return
        done_ms = min(done_ms, until_ms)
        of_kind = (done_ms - since_ms) / (until_ms - since_ms) if until_ms > since_ms else 1.0
        index, count = self._share
        share = (index + (_PHASES.index(kind) + max(0.0, of_kind)) / len(_PHASES)) / count
        self.progress(min(share, 1.0), f"{symbol} {kind} to {iso_utc(done_ms)}")

    def _call(self, action: str, fn: Callable[[], Any]) -> Any:
        """One request through the shared retry: a 429 waits the server's Retry-After."""
        def attempt() -> Any:
            self.result.requests += 1
            return call_ccxt(action, fn)

        def count_retry(attempt_no: int, exc: TemporaryExchangeError) -> None:
            self.result.retries += 1

        return retry_temporary(attempt, self.max_retries + 1, max_delay_s=self.max_backoff_s,
                               sleep=self.sleep, on_retry=count_retry,
                               server_delay_s=lambda: retry_after_s(self.exchange))
