"""The REST half of a streaming feed: a symbol's missing candles (retried), its open-interest
history and polls, and its settled funding rates, through ccxt. Failures are counted in the
feed's stats and logged; a repair that gives up leaves the hole (said in the log), a failed
poll is tried again at the next one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from cryptobot.errors import ExchangeError
from cryptobot.exchange.backfill import (
    call_venue,
    fetch_closed_candles,
    fetch_funding_history,
    fetch_open_interest_history,
    open_interest_from_ccxt,
)
from cryptobot.exchange.feed import FeedStats
from cryptobot.exchange.funding_intervals import fetch_funding_intervals
from cryptobot.exchange.symbol_track import SymbolTrack
from cryptobot.model import Candle, FundingRate, OpenInterest

log = logging.getLogger("cryptobot.exchange.stream")

REPAIR_ATTEMPTS = 3


class FeedRest:
    def __init__(self, rest: Any, interval_ms: int, stats: FeedStats,
                 backoff_s: Callable[[int], float]) -> None:
        self._rest = rest
        self._interval_ms = interval_ms
        self.stats = stats
        self._backoff_s = backoff_s

    async def poll_open_interest(self, track: SymbolTrack) -> OpenInterest | None:
        """The symbol's open interest now, or None (the first failure of a streak logged)."""
        self.stats.oi_polls += 1
        try:
            row = await call_venue(self._rest.fetch_open_interest(track.symbol),
                                   f"fetch_open_interest {track.symbol}")
            sample = open_interest_from_ccxt(row, track.symbol)
        except ExchangeError as exc:
            self.stats.oi_poll_errors += 1
            track.oi_failures_in_a_row += 1
            if track.oi_failures_in_a_row == 1:
                log.warning("open-interest poll failed: %s (the next failures are counted, not "
                            "logged, until a poll works again)", exc)
            return None
        if track.oi_failures_in_a_row:
            log.info("open-interest poll of %s works again after %d failed polls",
                     track.symbol, track.oi_failures_in_a_row)
            track.oi_failures_in_a_row = 0
        return sample

    async def funding(self, track: SymbolTrack, start_ms: int,
                      until_ms: int) -> list[FundingRate]:
        """Settled rates from `start_ms` (after the last one yielded) to `until_ms`."""
        if track.last_funding_ms is not None:
            start_ms = track.last_funding_ms + 1
        try:
            return await fetch_funding_history(self._rest, track.symbol, start_ms, until_ms)
        except ExchangeError as exc:
            self.stats.funding_poll_errors += 1
            log.warning("funding-rate poll failed: %s", exc)
            return []

    async def funding_intervals(self, symbols: list[str]) -> dict[str, int]:
        """Each symbol's funding interval now (ms); {} when the venue did not answer."""
        try:
            return await fetch_funding_intervals(self._rest, symbols)
        except ExchangeError as exc:
            self.stats.funding_poll_errors += 1
            log.warning("funding-interval look-up failed: %s", exc)
            return {}

    async def candles(self, track: SymbolTrack, start_ms: int,
                      closed_by_ms: int) -> list[Candle]:
        """Closed candles from `start_ms`, closed by `closed_by_ms` (retried, then given up)."""
        for attempt in range(REPAIR_ATTEMPTS):
            try:
                return await fetch_closed_candles(self._rest, track.symbol, self._interval_ms,
                                                  start_ms, closed_by_ms)
            except ExchangeError as exc:
                self.stats.repair_errors += 1
                log.warning("gap repair attempt %d failed: %s", attempt + 1, exc)
                await asyncio.sleep(self._backoff_s(attempt))
        log.error("gap repair gave up: %s candles from %d stay missing", track.symbol, start_ms)
        return []

    async def open_interest_history(self, track: SymbolTrack, start_ms: int,
                                    until_ms: int) -> list[OpenInterest]:
        since_ms = start_ms if track.last_oi_ms is None else track.last_oi_ms + 1
        try:
            return await fetch_open_interest_history(self._rest, track.symbol, since_ms,
                                                     until_ms)
        except ExchangeError as exc:
            self.stats.oi_poll_errors += 1
            log.warning("open-interest history for the gap failed: %s", exc)
            return []
