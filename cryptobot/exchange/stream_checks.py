"""The market-data checks a stream's messages pass before the feed may use them.

Every candle, streamed or fetched through REST, must pass the one candle rule set
(cryptobot.data.candle_checks). A stream adds two rules only a stream can check:

- the symbol: a message about another market than the one subscribed is refused whole;
- the time: a candle closing more than one interval after the stream's time is ahead of it.

The stream's time is the clock: a live clock, or in a replay the event times of the messages
taken so far. Right after a (re)connect, messages may have been lost, so the first message's own
event time counts, and a candle ahead even of that is refused. On an unbroken connection it is
the time before the message, so a candle more than one interval past the previous one is ahead.
Ahead of its own event time too: refused (a future-dated kline). Stamped ahead as well, it
waits, its time unused, for the next candle to decide: a later candle confirms it (the market
did move on: a hole, which the feed repairs through REST); an earlier one shows it came from the
future, and it is refused. A replay's clock stops while the stream waits for it; then the wait
itself confirms the candle (a hole in the recorded data). So several klines in a row that agree
on a later time pass as a hole in a replay, whose only clock is the stream; live, the clock
refutes them.

A refused message is dropped, counted (`FeedStats.rejected`), logged in a few lines and then one
in a thousand, and summed up in one line when the stream ends. The candles around it are kept:
its time moves the replay's clock only as far as one interval, so the next good candle is taken.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace

from cryptobot.clock import Clock
from cryptobot.data.candle_checks import (
    CandleRule,
    candle_problem,
    describe,
    repaired,
    symbol_problem,
    time_problem,
)
from cryptobot.exchange.feed import ExchangeTimeHook, FeedEvent, FeedStats, ParsedMessage
from cryptobot.exchange.symbols import market_id
from cryptobot.model import Candle

log = logging.getLogger("cryptobot.exchange.stream")

LOG_FIRST_BAD_MESSAGES = 10  # then one line per 1000, so garbage cannot flood the log


def log_bad_message(kind: str, count: int, detail: object, raw: str | bytes) -> None:
    """The rate-limited warning for a message the feed drops."""
    if count <= LOG_FIRST_BAD_MESSAGES or count % 1000 == 0:
        text = raw[:200] if isinstance(raw, str) else repr(raw[:200])
        log.warning("%s stream message #%d (%s): %s", kind, count, detail or "ignored", text)


@dataclass
class _Waiting:
    """A candle ahead of the stream's time, until the next candle decides."""

    candle: Candle
    event_time_ms: int | None
    raw: str | bytes
    clock_ms: int  # the clock when it arrived: a replay's clock that has not moved is stalled


class StreamChecks:
    """Vets one symbol's messages; `on_exchange_time` is the feed's clock hook (see the feed).
    A feed of several symbols on one connection keeps one per symbol on the shared clock."""

    def __init__(self, symbol: str, interval_ms: int, clock: Clock,
                 on_exchange_time: ExchangeTimeHook, stats: FeedStats) -> None:
        self.market_id = market_id(symbol)
        self._interval_ms = interval_ms
        self._clock = clock
        self._on_exchange_time = on_exchange_time
        self._stats = stats
        self._fresh_connection = True
        self._waiting: _Waiting | None = None
        self._refused: Counter[str] = Counter()

    @property
    def waiting(self) -> bool:
        return self._waiting is not None

    def connected(self) -> None:
        """A new connection: its first message's event time is the stream's time. A candle
        still waiting is forgotten: if it was real, the repair brings it back through REST."""
        self._fresh_connection = True
        if self._waiting is not None:
            self._refuse("unconfirmed", "the connection ended before the next candle",
                         self._waiting.raw)
            self._waiting = None

    def stream_candle_taken(self) -> None:
        """The feed yielded a streamed candle: the connection is running unbroken."""
        self._fresh_connection = False

    def vet(self, parsed: ParsedMessage, raw: str | bytes) -> tuple[FeedEvent, ...]:
        """The events the feed may take now, in order: a waiting candle this message confirms,
        then the message's own events that pass. Moves the clock by what is trusted."""
        fresh, event_time_ms = self._fresh_connection, parsed.event_time_ms
        problem = symbol_problem(parsed.market, self.market_id)
        if problem is not None:
            self._refuse("wrong symbol", problem, raw)
            if not fresh and event_time_ms is not None and \
                    self._moves_the_stream(False, raw, event_time_ms):
                self._on_exchange_time(event_time_ms)
            return ()
        if fresh and event_time_ms is not None:
            self._on_exchange_time(event_time_ms)
        taken: list[FeedEvent] = []
        trusted = True  # no candle of this message refused or waiting
        for event in parsed.events:
            if isinstance(event, Candle):
                candle = self._vetted(event, raw, fresh, event_time_ms, taken)
                trusted = trusted and candle is not None
                if candle is None:
                    continue
                event = candle
            taken.append(event)
        if not fresh and event_time_ms is not None and self._moves_the_stream(
                trusted, raw, event_time_ms):
            self._on_exchange_time(event_time_ms)
        return tuple(taken)

    def _moves_the_stream(self, trusted: bool, raw: str | bytes, event_time_ms: int) -> bool:
        """Whether an unbroken stream's time moves with this message: yes, unless its candle
        waits (its time waits with it) or was refused with a time ahead of the stream too."""
        if trusted:
            return True
        if self._waiting is not None and self._waiting.raw is raw:
            return False
        return event_time_ms <= self._clock.now_ms() + self._interval_ms

    def _vetted(self, candle: Candle, raw: str | bytes, fresh: bool, event_time_ms: int | None,
                taken: list[FeedEvent]) -> Candle | None:
        """The candle to take, or None (refused, or now waiting); a waiting candle it decides
        on goes to `taken` first if confirmed."""
        problem = self._rule_problem(candle)
        if problem is not None:
            self._refuse(*problem, raw)
            return None
        waiting = self._waiting
        if waiting is not None and candle.ts_open_ms == waiting.candle.ts_open_ms:
            return None  # the waiting candle again: it still waits
        if waiting is not None:
            self._waiting = None
            if candle.ts_open_ms > waiting.candle.ts_open_ms:
                taken.append(self._confirm(waiting))
            else:
                self._refuse("future-dated", time_problem(
                    waiting.candle.ts_open_ms, self._interval_ms, waiting.clock_ms), waiting.raw)
        ahead = time_problem(candle.ts_open_ms, self._interval_ms, self._clock.now_ms())
        if ahead is None:
            return _widened(candle)
        if fresh or event_time_ms is None or \
                time_problem(candle.ts_open_ms, self._interval_ms, event_time_ms) is not None:
            self._refuse("future-dated", ahead, raw)  # ahead even of its own event time
        else:
            self._waiting = _Waiting(candle, event_time_ms, raw, self._clock.now_ms())
        return None

    def idle(self) -> tuple[Candle, ...]:
        """No message came for a while: a waiting candle is confirmed if the clock stalled on
        it (a replay's stream waits for the clock, which waits for the candle), or if the
        stream's time has reached it meanwhile (other symbols' messages on the connection)."""
        waiting = self._waiting
        if waiting is None:
            return ()
        now_ms = self._clock.now_ms()
        if now_ms != waiting.clock_ms and time_problem(
                waiting.candle.ts_open_ms, self._interval_ms, now_ms) is not None:
            return ()
        self._waiting = None
        return (self._confirm(waiting),)

    def vet_fetched(self, candles: list[Candle], what: str) -> list[Candle]:
        """Candles fetched through REST that pass the rules (closed ones only: no time rule)."""
        good = []
        for candle in candles:
            problem = self._rule_problem(candle)
            if problem is None:
                good.append(_widened(candle))
            else:
                self._refuse(*problem, f"{what} {candle}")
        return good

    def report(self) -> None:
        """One line at the end of the stream for what was refused, if anything."""
        report_refused(self.take_refused())

    def take_refused(self) -> Counter[str]:
        """What was refused since the last call, by reason (then forgotten)."""
        refused, self._refused = self._refused, Counter()
        return refused

    def _confirm(self, waiting: _Waiting) -> Candle:
        if waiting.event_time_ms is not None:
            self._on_exchange_time(waiting.event_time_ms)
        return _widened(waiting.candle)

    def _rule_problem(self, candle: Candle) -> tuple[str, str] | None:
        rule = candle_problem(candle.ts_open_ms, self._interval_ms, candle.open, candle.high,
                              candle.low, candle.close, candle.volume)
        if rule is CandleRule.OK:
            return None
        return rule.name.lower().replace("_", " "), describe(
            rule, candle.ts_open_ms, self._interval_ms, candle.open, candle.high, candle.low,
            candle.close, candle.volume)

    def _refuse(self, reason: str, problem: str | None, raw: str | bytes) -> None:
        self._stats.rejected += 1
        self._refused[reason] += 1
        log_bad_message("refused", self._stats.rejected, problem, raw)


def report_refused(refused: Counter[str], by_market: dict[str, int] | None = None) -> None:
    """The end-of-stream line for what the checks refused (`by_market`: of several symbols)."""
    if not refused:
        return
    kinds = ", ".join(f"{reason} x{count}" for reason, count in refused.most_common())
    where = "" if not by_market else " (" + ", ".join(
        f"{market} {count}" for market, count in by_market.items() if count) + ")"
    log.warning("stream: %d message(s) refused by the market-data checks (%s)%s; the candles "
                "around them were kept", sum(refused.values()), kinds, where,
                extra={"event": "stream_refused", "refused": dict(refused),
                       **({"by_market": by_market} if by_market else {})})


def _widened(candle: Candle) -> Candle:
    """High and low widened over a float-rounding miss the rules forgive (usually a no-op)."""
    high, low = repaired(candle.open, candle.high, candle.low, candle.close)
    if (high, low) == (candle.high, candle.low):
        return candle
    return replace(candle, high=high, low=low)
