"""A venue's websocket stream, for one or several symbols, turned into a MarketFeed that
survives the real world.

- one connection carries every symbol given (the venue adapter knows how many fit: Binance's
  stream limit, Bybit's args limit; the CLI opens more connections only beyond it, see
  `merged_feed`); every event is tagged with its ccxt symbol;
- reconnects with jittered exponential backoff; websockets' keepalive pings catch dead sockets;
  tells `on_listening`'s hook each connection's span, from its first message after subscribing
  to its last one (a stream's liquidations are known only inside those spans);
- rotates the connection before the venue's 24h forced disconnect (measured on the injected
  clock, so a replay rotates in simulated time);
- after every (re)connect, and whenever a closed candle of a symbol arrives past a hole, fetches
  the missing closed candles (and open-interest history) of each symbol through ccxt and yields
  them in time order first;
- never yields a closed candle of a symbol twice, nor an open-interest sample older than its last;
- polls open interest through ccxt where the venue has no stream for it, each symbol in turn
  (staggered over the interval), stamped with the venue's own time, inside the venue's request
  budget (`oi_budget`, said in the log at start), and fetches each symbol's settled funding rate
  once its settlement has passed, on the symbol's own interval (8h, or 4h / 1h where the venue
  says so: `funding_intervals`, asked once an hour);
- checks every candle, streamed or fetched, against the one candle rule set
  (cryptobot.data.candle_checks) and refuses another market's message on a symbol's stream, or
  a candle from the future: closing more than one interval after the stream's time (see
  `stream_checks`; one checker per symbol, on the connection's one clock);
- counts and logs malformed, unexpected or refused messages (a few lines, then one in a
  thousand; a summary line at the end) and carries on: the candles around them are kept.

Ordering rule, the same in the stream and in a repair: everything stamped at or before a candle's
close (open-interest samples, funding rates) is yielded before that candle; an open-interest poll
sent after its close (live: the frame comes after it), whose answer that candle must not see, is
sent once the candle is handled (a replay's frame comes at the close: the poll, which may bring
the close's sample, goes first); events of several
symbols stamped alike go in the symbols' order (the order the backtest merges them in). After a
(re)connect, the first candle streamed shows where the hole ends for every symbol: every
symbol's candles before it (in that order) come from REST first, merged in time order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlparse

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from cryptobot.clock import HOUR_MS, Clock
from cryptobot.config import FeedSettings
from cryptobot.data.funding_times import settlement_ms
from cryptobot.errors import ConfigError
from cryptobot.exchange.feed import (
    ExchangeTimeHook,
    FeedEvent,
    FeedStats,
    ListeningHook,
    MalformedMessageError,
    VenueStream,
    ignore_exchange_time,
)
from cryptobot.exchange.feed_rest import FeedRest
from cryptobot.exchange.oi_budget import PollBudget, plan_open_interest_polls
from cryptobot.exchange.stream_checks import StreamChecks, log_bad_message, report_refused
from cryptobot.exchange.symbol_track import SymbolTrack, next_funding_after
from cryptobot.exchange.venue_heartbeat import VenueHeartbeat
from cryptobot.model import Candle

log = logging.getLogger("cryptobot.exchange.stream")

# A live clock may run a little ahead of the venue's: a candle "closed" by our clock only this
# recently may still be forming on the venue, so the after-connect repair leaves it to the stream.
CLOCK_SKEW_MARGIN_MS = 2_000
MAX_HELD_EVENTS = 10_000  # a stream without candles must not hold samples back forever
WAITING_CHECK_S = 0.5  # how soon a candle waiting for the next one is looked at again

# Where the feed takes over, per symbol: one value for every symbol, or one per symbol.
Resume = int | Mapping[str, int | None] | None
# symbol -> (candles closed by then, open-interest history until then or None)
Bounds = dict[str, tuple[int, int | None]]


def _of(value: Resume, symbol: str) -> int | None:
    return value.get(symbol) if isinstance(value, Mapping) else value


class StreamingFeed:
    """MarketFeed over a venue websocket plus ccxt REST (history, open interest)."""

    def __init__(self, venue: VenueStream, rest: Any, clock: Clock, settings: FeedSettings,
                 on_exchange_time: ExchangeTimeHook = ignore_exchange_time,
                 last_closed_open_ms: Resume = None, last_oi_ms: Resume = None,
                 last_funding_ms: Resume = None, rng: random.Random | None = None,
                 poll_budget: PollBudget | None = None) -> None:
        """`poll_budget`: how open interest is polled (a venue without an OI stream); None:
        planned here for this feed's symbols and logged. Give it when several feeds share
        one budget (`merged_feed`)."""
        self.venue = venue
        self.stats = FeedStats()
        self._clock = clock
        self._settings = settings
        self._on_exchange_time = on_exchange_time
        self._interval_ms = venue.interval_ms
        now_ms = clock.now_ms()
        self._tracks: dict[str, SymbolTrack] = {}
        for index, symbol in enumerate(venue.symbols):
            funding_ms = _of(last_funding_ms, symbol)
            checks = StreamChecks(symbol, venue.interval_ms, clock, on_exchange_time, self.stats)
            self._tracks[symbol] = SymbolTrack(
                symbol, index, checks, _of(last_closed_open_ms, symbol), _of(last_oi_ms, symbol),
                funding_ms, next_funding_after(now_ms if funding_ms is None else funding_ms))
        self.poll_budget = None
        poll_s = settings.oi_poll_seconds
        if venue.poll_open_interest:
            self.poll_budget = poll_budget or plan_open_interest_polls(len(self._tracks), poll_s)
            if poll_budget is None:
                log.info(self.poll_budget.describe(), extra={"event": "oi_poll_budget"})
            poll_s = self.poll_budget.interval_s
        self._poll_ms = int(poll_s * 1000)
        self._rotate_after_ms = int(settings.rotate_after_hours * HOUR_MS)
        self._idle_check_s = min(settings.oi_poll_seconds, 5.0)
        self._rng = rng or random.Random()
        self._fetch = FeedRest(rest, venue.interval_ms, self.stats, self._backoff_s)
        self._ws: ClientConnection | None = None
        self._held: list[FeedEvent] | None = None  # events waiting for the first candle
        self._intervals_due_ms = 0  # when to ask the venue for the funding intervals again
        self._closing = False
        self._listening: ListeningHook | None = None
        self._heard: tuple[int, int] | None = None  # this connection's (first, last) message

    def on_listening(self, hook: ListeningHook) -> None:
        self._listening = hook

    def _message_heard(self) -> None:
        now_ms = self._clock.now_ms()
        if self._heard is None and self._listening is not None:
            self._listening(self.symbols, now_ms, None)
        self._heard = (now_ms if self._heard is None else self._heard[0], now_ms)

    def _connection_ended(self) -> None:
        if self._heard is not None and self._listening is not None:
            self._listening(self.symbols, self._heard[0], self._heard[1] + 1)
        self._heard = None

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._tracks)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()

    async def events(self) -> AsyncIterator[FeedEvent]:
        try:
            async for event in self._events():
                yield event
        finally:
            self._report_refused()

    def _report_refused(self) -> None:
        refused: Counter[str] = Counter()
        by_market = {}
        for track in self._tracks.values():
            taken = track.checks.take_refused()
            refused.update(taken)
            by_market[track.checks.market_id] = sum(taken.values())
        report_refused(refused, by_market if len(by_market) > 1 else None)

    async def _events(self) -> AsyncIterator[FeedEvent]:
        failures = 0
        url = self.venue.url()
        loopback = urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")
        shown = url if len(url) <= 160 else f"{url[:160]}... ({len(self._tracks)} symbols)"
        while not self._closing:
            rotated = False
            try:
                async with connect(url, proxy=None if loopback else True,
                                   close_timeout=2) as ws:
                    self._ws = ws
                    self.stats.connects += 1
                    self._held = []
                    for track in self._tracks.values():
                        track.checks.connected()
                    failures = 0
                    connected_ms = self._clock.now_ms()
                    log.info("connected to %s", shown)
                    for message in self.venue.subscribe_messages():
                        await ws.send(message)
                    closed_by_ms = self._clock.now_ms() - CLOCK_SKEW_MARGIN_MS
                    async for event in self._repair({s: (closed_by_ms, None)
                                                     for s in self._tracks}):
                        yield event
                    beat = VenueHeartbeat(self.venue)
                    while not self._closing:
                        if self._clock.now_ms() - connected_ms >= self._rotate_after_ms:
                            self.stats.rotations += 1
                            rotated = True
                            log.info("rotating the connection before the 24h forced disconnect")
                            break
                        await beat.send_if_due(ws)
                        waiting = any(t.checks.waiting for t in self._tracks.values())
                        idle_s = WAITING_CHECK_S if waiting else self._idle_check_s
                        try:
                            raw = await asyncio.wait_for(ws.recv(), beat.wait_s(idle_s))
                        except TimeoutError:
                            async for event in self._take(self._idle()):
                                yield event
                            continue
                        async for event in self._on_message(raw):
                            yield event
                        self._message_heard()
            except InvalidURI as exc:
                raise ConfigError(f"feed.ws_url: not a websocket URL: {exc}") from None
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                self.stats.disconnects += 1
                log.warning("stream disconnected: %s: %s", type(exc).__name__, exc)
            finally:
                self._ws = None
                self._connection_ended()
            if self._closing:
                return
            if not rotated:
                await asyncio.sleep(self._backoff_s(failures))
                failures += 1

    def _backoff_s(self, failures: int) -> float:
        ceiling = min(self._settings.reconnect_max_backoff_s,
                      self._settings.reconnect_min_backoff_s * 2**failures)
        return ceiling * self._rng.uniform(0.5, 1.0)

    def _idle(self) -> tuple[FeedEvent, ...]:
        """Waiting candles the quiet confirms, in the symbols' order (see StreamChecks.idle)."""
        return tuple(c for track in self._tracks.values() for c in track.checks.idle())

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
        track = self._tracks.get(parsed.symbol) if parsed.symbol is not None else None
        # a reply, or a stream not asked for: no events, and its time moves nothing
        events = track.checks.vet(parsed, raw) if track is not None else ()
        async for event in self._take(events):
            yield event

    async def _take(self, events: tuple[FeedEvent, ...]) -> AsyncIterator[FeedEvent]:
        """Vetted events out: after any repair their first candle shows is due, and after
        polls that are due (open interest after a candle whose close has passed); then
        de-duplicated."""
        first_candle = next((e for e in events if isinstance(e, Candle)), None)
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
                    async for event in self._repair(self._bounds_before(first_candle)):
                        yield event
        if first_candle is not None:  # on an unbroken stream, a symbol's hole shows here
            bounds: Bounds = {}
            for event in events:
                if isinstance(event, Candle) and event.symbol not in bounds:
                    bounds[event.symbol] = (event.ts_open_ms, None)
            async for event in self._repair(bounds):
                yield event
        async for event in self._poll_funding_if_due():
            yield event
        # the ordering rule (module docstring): a poll sent after the candle's close, whose
        # answer that candle must not see, goes once the candle is handled
        after_close = first_candle is not None and \
            self._clock.now_ms() > first_candle.ts_close_ms
        if not after_close:
            async for event in self._poll_open_interest_if_due():
                yield event
        for event in events:
            track = self._tracks[event.symbol]
            accepted = track.accept(event, self.stats)
            if accepted is not None:
                if isinstance(accepted, Candle):
                    track.checks.stream_candle_taken()
                yield accepted
        if after_close:
            async for event in self._poll_open_interest_if_due():
                yield event
        # the hourly refresh of the intervals moves no poll before its candle: it goes last
        await self._learn_funding_intervals_if_due(self._clock.now_ms())

    def _bounds_before(self, candle: Candle) -> Bounds:
        """What must come before the first candle streamed after a (re)connect: each symbol's
        candles ahead of it in the stream's order (closed by its close for the symbols before
        it, by its open for itself and the ones after), and, where open interest streams, the
        samples lost with the connection (a symbol's OI is not a candle hole)."""
        first = self._tracks[candle.symbol].index
        oi_until_ms = None if self.venue.poll_open_interest else candle.ts_close_ms
        return {track.symbol: (candle.ts_close_ms if track.index < first else candle.ts_open_ms,
                               oi_until_ms) for track in self._tracks.values()}

    async def _poll_open_interest_if_due(self) -> AsyncIterator[FeedEvent]:
        if not self.venue.poll_open_interest:
            return
        now_ms = self._clock.now_ms()
        for track in self._tracks.values():
            if track.next_poll_ms is None:  # the symbols' polls spread over the interval
                track.next_poll_ms = now_ms + track.index * self._poll_ms // len(self._tracks)
            if now_ms < track.next_poll_ms:
                continue
            track.next_poll_ms = now_ms + self._poll_ms
            sample = await self._fetch.poll_open_interest(track)
            accepted = None if sample is None else track.accept(sample, self.stats)
            if accepted is not None:
                yield accepted

    def funding_intervals_ms(self) -> dict[str, int]:
        """Each symbol's funding interval, as the venue said it last (8h until it said)."""
        return {symbol: track.funding_interval_ms for symbol, track in self._tracks.items()}

    async def _learn_funding_intervals_if_due(self, now_ms: int) -> None:
        """Once an hour (the shortest interval a venue uses): each symbol's interval, so its
        rate is polled right after each settlement, however often it settles. Asked before
        the first poll, then after a frame's events: a REST call an hourly candle's orders
        need not wait for (a changed interval re-plans from the last settlement seen, so the
        next frame polls what the new grid says is due)."""
        if now_ms < self._intervals_due_ms:
            return
        self._intervals_due_ms = now_ms - now_ms % HOUR_MS + HOUR_MS
        for symbol, interval_ms in (await self._fetch.funding_intervals(list(self._tracks))
                                    ).items():
            if interval_ms != self._tracks[symbol].funding_interval_ms:
                log.info("%s settles funding every %gh now", symbol, interval_ms / HOUR_MS)
            self._tracks[symbol].learn_funding_interval(interval_ms)

    async def _poll_funding_if_due(self) -> AsyncIterator[FeedEvent]:
        """Each symbol's settled rate once its settlement time has passed (on the symbol's
        own interval, learned from the venue). Symbols settling at once have their requests go
        together (ccxt's rate limiter spaces them), not one after the other while the stream
        waits; the rates come out in the symbols' order."""
        now_ms = self._clock.now_ms()
        if not self._intervals_due_ms:  # known before the first poll; refreshed after events
            await self._learn_funding_intervals_if_due(now_ms)
        due = {track: track.next_funding_ms for track in self._tracks.values()
               if now_ms >= track.next_funding_ms}
        if not due:
            return
        for track in due:
            # Until the venue publishes the settled rate, ask again at the open-interest cadence.
            track.next_funding_ms = now_ms + min(self._poll_ms, track.funding_interval_ms)
        fetched = await asyncio.gather(*(
            self._fetch.funding(track, due_ms - track.funding_interval_ms + 1, now_ms)
            for track, due_ms in due.items()))
        for (track, due_ms), rates in zip(due.items(), fetched, strict=True):
            for rate in rates:
                accepted = track.accept(rate, self.stats)
                if accepted is not None:
                    yield accepted
            if (track.last_funding_ms is not None
                    and settlement_ms(track.last_funding_ms) >= due_ms):
                track.next_funding_ms = next_funding_after(due_ms, track.funding_interval_ms)

    async def _repair(self, bounds: Bounds) -> AsyncIterator[FeedEvent]:
        """For each symbol of `bounds`: the closed candles missing between the last one yielded
        and its bound, with open-interest history (up to its own bound where given, else the
        candles' one) and funding; all symbols' merged in time order (ties: symbol order). The
        symbols' requests go together (ccxt's rate limiter spaces them), not one symbol after
        the other while nobody reads the socket."""
        wanted = [(self._tracks[symbol], closed_by_ms, oi_until_ms)
                  for symbol, (closed_by_ms, oi_until_ms) in bounds.items()
                  if self._gap_to_fetch(self._tracks[symbol], closed_by_ms, oi_until_ms)]
        if not wanted:  # an unbroken stream: no task made, no turn of the loop before the candle
            return
        fetched = await asyncio.gather(*(self._fetch_gap(*item) for item in wanted))
        merged: list[tuple[int, int, int, FeedEvent]] = []
        for (track, _, _), (candles, others) in zip(wanted, fetched, strict=True):
            index = track.index
            merged += [(event.ts_ms, index, 0, event) for event in others]
            merged += [(c.ts_close_ms, index, 1, c)
                       for c in track.checks.vet_fetched(candles, "REST candle")]
            if candles:
                log.info("gap repaired: %d closed candles from REST (%s)", len(candles),
                         track.symbol)
        merged.sort(key=lambda item: item[:3])
        for _, index, _, event in merged:
            track = self._tracks[self.symbols[index]]
            accepted = track.accept(event, self.stats)
            if accepted is not None:
                if isinstance(accepted, Candle):
                    self.stats.repaired_candles += 1
                yield accepted

    def _gap_to_fetch(self, track: SymbolTrack, closed_by_ms: int, oi_until_ms: int | None
                      ) -> bool:
        """Candles missing before `closed_by_ms`, or open interest asked up to `oi_until_ms`
        (none before a symbol's first candle: warm-up is the caller's job)."""
        return track.last_open_ms is not None and (
            oi_until_ms is not None or track.last_open_ms + 2 * self._interval_ms <= closed_by_ms)

    async def _fetch_gap(self, track: SymbolTrack, closed_by_ms: int, oi_until_ms: int | None,
                         ) -> tuple[list[Candle], list[FeedEvent]]:
        """One symbol's missing candles, and its open interest and funding over the gap (one
        `_gap_to_fetch` found)."""
        start_ms = (track.last_open_ms or 0) + self._interval_ms
        candle_gap = start_ms + self._interval_ms <= closed_by_ms
        candles = await self._fetch.candles(track, start_ms, closed_by_ms) if candle_gap else []
        others: list[FeedEvent] = list(await self._fetch.open_interest_history(
            track, start_ms, oi_until_ms or closed_by_ms))
        if track.next_funding_ms <= closed_by_ms:
            others += await self._fetch.funding(
                track, track.next_funding_ms - track.funding_interval_ms + 1, closed_by_ms)
        return candles, others

