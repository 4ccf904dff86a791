"""A venue's websocket stream turned into a MarketFeed that survives the real world.

- reconnects with jittered exponential backoff; websockets' keepalive pings catch dead sockets;
- rotates the connection before the venue's 24h forced disconnect (measured on the injected
  clock, so a replay rotates in simulated time);
- after every (re)connect, and whenever a closed candle arrives past a hole, fetches the missing
  closed candles (and open-interest history) through ccxt and yields them in time order first;
- never yields a closed candle twice, nor an open-interest sample older than the last one;
- polls open interest through ccxt where the venue has no stream for it, stamped with the
  venue's own time, and fetches each settled funding rate once its 8h boundary has passed;
- checks every candle, streamed or fetched, against the one candle rule set
  (cryptobot.data.candle_checks) and refuses another market's message, or a candle from the
  future: closing more than one interval after the stream's time (see `stream_checks`);
- counts and logs malformed, unexpected or refused messages (a few lines, then one in a
  thousand; a summary line at the end) and carries on: the candles around them are kept.

Ordering rule, the same in the stream and in a repair: everything stamped at or before a candle's
close (open-interest samples, funding rates) is yielded before that candle.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from cryptobot.clock import HOUR_MS, Clock
from cryptobot.config import FeedSettings
from cryptobot.errors import ConfigError, ExchangeError
from cryptobot.exchange.backfill import (
    call_venue,
    fetch_closed_candles,
    fetch_funding_history,
    fetch_open_interest_history,
    open_interest_from_ccxt,
)
from cryptobot.exchange.feed import (
    ExchangeTimeHook,
    FeedEvent,
    FeedStats,
    MalformedMessageError,
    VenueStream,
    ignore_exchange_time,
)
from cryptobot.exchange.stream_checks import StreamChecks, log_bad_message
from cryptobot.model import Candle, FundingRate, OpenInterest

log = logging.getLogger("cryptobot.exchange.stream")

# A live clock may run a little ahead of the venue's: a candle "closed" by our clock only this
# recently may still be forming on the venue, so the after-connect repair leaves it to the stream.
CLOCK_SKEW_MARGIN_MS = 2_000
REPAIR_ATTEMPTS = 3
FUNDING_INTERVAL_MS = 8 * HOUR_MS  # Binance and Bybit settle at 00:00, 08:00 and 16:00 UTC
MAX_HELD_EVENTS = 10_000  # a stream without candles must not hold samples back forever
WAITING_CHECK_S = 0.5  # how soon a candle waiting for the next one is looked at again


class StreamingFeed:
    """MarketFeed over a venue websocket plus ccxt REST (history, open interest)."""

    def __init__(self, venue: VenueStream, rest: Any, clock: Clock, settings: FeedSettings,
                 on_exchange_time: ExchangeTimeHook = ignore_exchange_time,
                 last_closed_open_ms: int | None = None, last_oi_ms: int | None = None,
                 last_funding_ms: int | None = None, rng: random.Random | None = None) -> None:
        self.venue = venue
        self.stats = FeedStats()
        self._rest = rest
        self._clock = clock
        self._settings = settings
        self._on_exchange_time = on_exchange_time
        self._interval_ms = venue.interval_ms
        self._last_open_ms = last_closed_open_ms
        self._last_oi_ms = last_oi_ms
        self._next_poll_ms: int | None = None
        self._oi_failures_in_a_row = 0  # one warning per streak of failed polls
        self._last_funding_ms = last_funding_ms
        since_ms = clock.now_ms() if last_funding_ms is None else last_funding_ms
        self._next_funding_ms = since_ms - since_ms % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS
        self._rotate_after_ms = int(settings.rotate_after_hours * HOUR_MS)
        self._poll_ms = int(settings.oi_poll_seconds * 1000)
        self._idle_check_s = min(settings.oi_poll_seconds, 5.0)
        self._rng = rng or random.Random()
        self._ws: ClientConnection | None = None
        self._held: list[FeedEvent] | None = None  # events waiting for the first candle
        self._closing = False
        self._checks = StreamChecks(venue.symbol, venue.interval_ms, clock, on_exchange_time,
                                    self.stats)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()

    async def events(self) -> AsyncIterator[FeedEvent]:
        try:
            async for event in self._events():
                yield event
        finally:
            self._checks.report()

    async def _events(self) -> AsyncIterator[FeedEvent]:
        failures = 0
        url = self.venue.url()
        loopback = urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")
        while not self._closing:
            rotated = False
            try:
                async with connect(url, proxy=None if loopback else True,
                                   close_timeout=2) as ws:
                    self._ws = ws
                    self.stats.connects += 1
                    self._held = []
                    self._checks.connected()
                    failures = 0
                    connected_ms = self._clock.now_ms()
                    log.info("connected to %s", url)
                    for message in self.venue.subscribe_messages():
                        await ws.send(message)
                    async for event in self._repair(self._clock.now_ms() - CLOCK_SKEW_MARGIN_MS):
                        yield event
                    beat = _Heartbeat(self.venue)
                    while not self._closing:
                        if self._clock.now_ms() - connected_ms >= self._rotate_after_ms:
                            self.stats.rotations += 1
                            rotated = True
                            log.info("rotating the connection before the 24h forced disconnect")
                            break
                        await beat.send_if_due(ws)
                        idle_s = WAITING_CHECK_S if self._checks.waiting else self._idle_check_s
                        try:
                            raw = await asyncio.wait_for(ws.recv(), beat.wait_s(idle_s))
                        except TimeoutError:
                            async for event in self._take(self._checks.idle()):
                                yield event
                            continue
                        async for event in self._on_message(raw):
                            yield event
            except InvalidURI as exc:
                raise ConfigError(f"feed.ws_url: not a websocket URL: {exc}") from None
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                self.stats.disconnects += 1
                log.warning("stream disconnected: %s: %s", type(exc).__name__, exc)
            finally:
                self._ws = None
            if self._closing:
                return
            if not rotated:
                await asyncio.sleep(self._backoff_s(failures))
                failures += 1

    def _backoff_s(self, failures: int) -> float:
        ceiling = min(self._settings.reconnect_max_backoff_s,
                      self._settings.reconnect_min_backoff_s * 2**failures)
        return ceiling * self._rng.uniform(0.5, 1.0)

    async def _on_message(self, raw: str | bytes) -> AsyncIterator[FeedEvent]:
        self.stats.messages += 1
        try:
            parsed = self.venue.parse(raw)
        except MalformedMessageError as exc:
            self.stats.malformed += 1
            log_bad_message("malformed", self.stats.malformed, exc, raw)
            return
        if parsed.unexpected:
            self.stats.unexpected += 1
            log_bad_message("unexpected", self.stats.unexpected, None, raw)
        if parsed.open_update:
            self.stats.open_kline_updates += 1
        async for event in self._take(self._checks.vet(parsed, raw)):
            yield event

    async def _take(self, events: tuple[FeedEvent, ...]) -> AsyncIterator[FeedEvent]:
        """Vetted events out: after any repair their first candle shows is due, and after
        polls that are due; then de-duplicated."""
        first_candle = next((e for e in events if isinstance(e, Candle)), None)
        oi_until_ms = None
        if self._held is not None and first_candle is not None and \
                not self.venue.poll_open_interest:
            # OI samples lost with the connection are not a candle hole: fetch them regardless.
            oi_until_ms = first_candle.ts_close_ms
        if self._held is not None:
            # Just (re)connected: a hole may lie before these events, and only the next closed
            # candle shows where it ends. Stream-carried samples (Bybit's open interest in the
            # ticker) would otherwise pass before the repair and hide the older ones REST brings.
            if first_candle is None and len(self._held) < MAX_HELD_EVENTS:
                self._held.extend(events)
                events = ()
            else:
                events, self._held = (*self._held, *events), None
        if first_candle is not None:
            async for event in self._repair(first_candle.ts_open_ms, oi_until_ms):
                yield event
        async for event in self._poll_if_due():
            yield event
        for event in events:
            accepted = self._accept(event)
            if accepted is not None:
                if isinstance(accepted, Candle):
                    self._checks.stream_candle_taken()
                yield accepted

    def _accept(self, event: FeedEvent) -> FeedEvent | None:
        """The de-duplicating gate every event passes on its way out."""
        if isinstance(event, Candle):
            if self._last_open_ms is not None and event.ts_open_ms <= self._last_open_ms:
                self.stats.duplicates_dropped += 1
                return None
            self._last_open_ms = event.ts_open_ms
            self.stats.candles += 1
        elif isinstance(event, OpenInterest):
            if self._last_oi_ms is not None and event.ts_ms <= self._last_oi_ms:
                return None
            self._last_oi_ms = event.ts_ms
            self.stats.oi_samples += 1
        elif isinstance(event, FundingRate):
            if self._last_funding_ms is not None and event.ts_ms <= self._last_funding_ms:
                return None
            self._last_funding_ms = event.ts_ms
            self._next_funding_ms = max(self._next_funding_ms, event.ts_ms + FUNDING_INTERVAL_MS)
            self.stats.funding_rates += 1
        else:
            self.stats.liquidations += 1
        return event

    async def _poll_if_due(self) -> AsyncIterator[FeedEvent]:
        async for event in self._poll_funding_if_due():
            yield event
        if not self.venue.poll_open_interest:
            return
        now_ms = self._clock.now_ms()
        if self._next_poll_ms is not None and now_ms < self._next_poll_ms:
            return
        self._next_poll_ms = now_ms + self._poll_ms
        self.stats.oi_polls += 1
        try:
            row = await call_venue(self._rest.fetch_open_interest(self.venue.symbol),
                                   f"fetch_open_interest {self.venue.symbol}")
            sample = open_interest_from_ccxt(row)
        except ExchangeError as exc:
            self.stats.oi_poll_errors += 1
            self._oi_failures_in_a_row += 1
            if self._oi_failures_in_a_row == 1:
                log.warning("open-interest poll failed: %s (the next failures are counted, not "
                            "logged, until a poll works again)", exc)
            return
        if self._oi_failures_in_a_row:
            log.info("open-interest poll works again after %d failed polls",
                     self._oi_failures_in_a_row)
            self._oi_failures_in_a_row = 0
        accepted = self._accept(sample)
        if accepted is not None:
            yield accepted

    async def _poll_funding_if_due(self) -> AsyncIterator[FeedEvent]:
        now_ms = self._clock.now_ms()
        if now_ms < self._next_funding_ms:
            return
        due_ms = self._next_funding_ms
        # Until the venue publishes the settled rate, ask again at the open-interest cadence.
        self._next_funding_ms = now_ms + min(self._poll_ms, FUNDING_INTERVAL_MS)
        for rate in await self._fetch_funding(due_ms - FUNDING_INTERVAL_MS + 1, now_ms):
            accepted = self._accept(rate)
            if accepted is not None:
                yield accepted
        if self._last_funding_ms is not None and self._last_funding_ms >= due_ms:
            self._next_funding_ms = due_ms + FUNDING_INTERVAL_MS

    async def _fetch_funding(self, start_ms: int, until_ms: int) -> list[FundingRate]:
        if self._last_funding_ms is not None:
            start_ms = self._last_funding_ms + 1
        try:
            return await fetch_funding_history(self._rest, self.venue.symbol, start_ms, until_ms)
        except ExchangeError as exc:
            self.stats.funding_poll_errors += 1
            log.warning("funding-rate poll failed: %s", exc)
            return []

    async def _repair(self, closed_by_ms: int,
                      oi_until_ms: int | None = None) -> AsyncIterator[FeedEvent]:
        """Closed candles missing between the last one yielded and `closed_by_ms`, in order,
        with open-interest history up to `oi_until_ms` (default `closed_by_ms`)."""
        if self._last_open_ms is None:
            return  # nothing to anchor on: warm-up is the caller's job
        start_ms = self._last_open_ms + self._interval_ms
        candle_gap = start_ms + self._interval_ms <= closed_by_ms
        if not candle_gap and oi_until_ms is None:
            return
        candles = await self._fetch_with_retries(start_ms, closed_by_ms) if candle_gap else []
        samples = await self._fetch_oi_history(start_ms, oi_until_ms or closed_by_ms)
        merged: list[tuple[int, int, FeedEvent]] = [(s.ts_ms, 0, s) for s in samples]
        if self._next_funding_ms <= closed_by_ms:
            rates = await self._fetch_funding(self._next_funding_ms - FUNDING_INTERVAL_MS + 1,
                                              closed_by_ms)
            merged += [(rate.ts_ms, 0, rate) for rate in rates]
        merged += [(c.ts_close_ms, 1, c) for c in self._checks.vet_fetched(candles,
                                                                           "REST candle")]
        merged.sort(key=lambda item: (item[0], item[1]))
        if candles:
            log.info("gap repaired: %d closed candles from REST", len(candles))
        for _, _, event in merged:
            accepted = self._accept(event)
            if accepted is not None:
                if isinstance(accepted, Candle):
                    self.stats.repaired_candles += 1
                yield accepted

    async def _fetch_with_retries(self, start_ms: int, closed_by_ms: int) -> list[Candle]:
        for attempt in range(REPAIR_ATTEMPTS):
            try:
                return await fetch_closed_candles(self._rest, self.venue.symbol,
                                                  self._interval_ms, start_ms, closed_by_ms)
            except ExchangeError as exc:
                self.stats.repair_errors += 1
                log.warning("gap repair attempt %d failed: %s", attempt + 1, exc)
                await asyncio.sleep(self._backoff_s(attempt))
        log.error("gap repair gave up: candles from %d stay missing", start_ms)
        return []

    async def _fetch_oi_history(self, start_ms: int, until_ms: int) -> list[OpenInterest]:
        since_ms = start_ms if self._last_oi_ms is None else self._last_oi_ms + 1
        try:
            return await fetch_open_interest_history(self._rest, self.venue.symbol, since_ms,
                                                     until_ms)
        except ExchangeError as exc:
            self.stats.oi_poll_errors += 1
            log.warning("open-interest history for the gap failed: %s", exc)
            return []

class _Heartbeat:
    """A venue's application-level ping, on the event loop's time (a network concern, not the
    market's: a replay at full speed still pings every 20 real seconds)."""

    def __init__(self, venue: VenueStream) -> None:
        beat = venue.heartbeat()
        self._interval_s, self._message = beat if beat is not None else (None, "")
        self._due_s = asyncio.get_running_loop().time() + (self._interval_s or 0.0)

    async def send_if_due(self, ws: ClientConnection) -> None:
        if self._interval_s is None:
            return
        now_s = asyncio.get_running_loop().time()
        if now_s >= self._due_s:
            await ws.send(self._message)
            self._due_s = now_s + self._interval_s

    def wait_s(self, idle_check_s: float) -> float:
        """How long to wait for a message before the next heartbeat or idle check is due."""
        if self._interval_s is None:
            return idle_check_s
        return max(0.0, min(idle_check_s, self._due_s - asyncio.get_running_loop().time()))
