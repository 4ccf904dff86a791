"""Bybit v5 linear (USDT perpetual) public streams: closed klines, open interest, liquidations.

One connection to `/v5/public/linear` for every symbol of a run, three topics per symbol
subscribed by `op: subscribe` messages (at most 10 args each): `kline.{interval}.{symbol}`,
`tickers.{symbol}` and `allLiquidation.{symbol}`; `stream_groups` opens more connections only
when the args would pass Bybit's 21,000 characters per connection. Unlike Binance,
Bybit streams open interest (inside the ticker), so `poll_open_interest` is off; and it keeps a
connection alive only with application-level `{"op": "ping"}` messages (every 20 s advised).

What the docs say (bybit-exchange.github.io/docs/v5/websocket/...; see
tests/fixtures/bybit/README.md for the pages and their commits):
- kline: `confirm: true` marks a closed candle; `start` is its open time in ms.
- tickers (linear): a `snapshot`, then `delta`s carrying only the fields that changed, so the
  last full state is kept here; `openInterest` is in base coin for USDT contracts.
- allLiquidation: `S` is the side of the liquidated *position* ("Buy": a long was liquidated),
  `p` the bankruptcy price, `v` the executed size, `T` the time.
- connect, "Public channel - Args limits": "for one public connection, you cannot have length
  of "args" array over 21,000 characters"; "Spot can input up to 10 args for each subscription
  request"; "No args limit for Futures and Spread for now". Linear is kept to the spot rule:
  what is not documented may change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptobot.errors import ConfigError, ExchangeError
from cryptobot.exchange.feed import FeedEvent, MalformedMessageError, ParsedMessage
from cryptobot.exchange.symbols import market_id
from cryptobot.model import Candle, Liquidation, OpenInterest

BYBIT_LINEAR_WS = "wss://stream.bybit.com/v5/public/linear"
HEARTBEAT_INTERVAL_S = 20.0  # Bybit: "send the ping heartbeat packet every 20 seconds"
PING_MESSAGE = '{"op":"ping"}'
MAX_ARGS_PER_SUBSCRIBE = 10  # the documented spot limit, kept for linear (see above)
MAX_ARGS_CHARS_PER_CONNECTION = 21_000  # "length of "args" array", per public connection

_MINUTE_MS = 60_000
# Bybit's kline interval names (docs v5/enum#interval), by length.
KLINE_INTERVALS: dict[int, str] = {
    **{n * _MINUTE_MS: str(n) for n in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    1_440 * _MINUTE_MS: "D",
    10_080 * _MINUTE_MS: "W",
}

# A Bybit position side -> the side of the order that liquidated it (our Liquidation.side).
_LIQUIDATING_ORDER_SIDE = {"Buy": "sell", "Sell": "buy"}


def kline_interval(interval_ms: int) -> str:
    try:
        return KLINE_INTERVALS[interval_ms]
    except KeyError:
        raise ConfigError(f"market.base_timeframe: Bybit has no {interval_ms // _MINUTE_MS}-minute "
                          "kline stream (1, 3, 5, 15, 30, 60, 120, 240, 360, 720 minutes, D or W)"
                          ) from None


def topics_of(symbol: str, interval_ms: int) -> list[str]:
    """The three topics one symbol is watched on."""
    market = market_id(symbol)
    return [f"kline.{kline_interval(interval_ms)}.{market}", f"tickers.{market}",
            f"allLiquidation.{market}"]


def _args_chars(topics: Sequence[str]) -> int:
    return len(json.dumps(list(topics), separators=(",", ":")))


def stream_groups(symbols: Sequence[str], interval_ms: int,
                  max_chars: int = MAX_ARGS_CHARS_PER_CONNECTION) -> list[tuple[str, ...]]:
    """The symbols of each connection, in order: all on one while their args fit, more
    beyond."""
    groups: list[list[str]] = [[]]
    for symbol in symbols:
        grown = [t for s in (*groups[-1], symbol) for t in topics_of(s, interval_ms)]
        if groups[-1] and _args_chars(grown) > max_chars:
            groups.append([])
        groups[-1].append(symbol)
    return [tuple(group) for group in groups if group]


def parse_kline(item: dict, interval_ms: int, symbol: str = "") -> Candle | None:
    """One entry of a kline message's `data`: a Candle once confirmed, else None."""
    if item["interval"] != kline_interval(interval_ms):
        raise MalformedMessageError(f"kline interval {item['interval']!r}, expected "
                                    f"{kline_interval(interval_ms)!r}")
    if item["confirm"] is not True:
        return None
    return Candle(ts_open_ms=int(item["start"]), interval_ms=interval_ms,
                  open=float(item["open"]), high=float(item["high"]), low=float(item["low"]),
                  close=float(item["close"]), volume=float(item["volume"]), symbol=symbol)


def parse_liquidation(item: dict, symbol: str = "") -> Liquidation:
    """One entry of an allLiquidation message's `data`."""
    side = _LIQUIDATING_ORDER_SIDE.get(item["S"])
    if side is None:
        raise MalformedMessageError(f"allLiquidation position side {item['S']!r}")
    # `p` is the bankruptcy price: Bybit publishes no fill price on this topic.
    return Liquidation(ts_ms=int(item["T"]), side=side, price=float(item["p"]),
                       qty_base=float(item["v"]), symbol=symbol)


@dataclass
class TickerState:
    """The linear ticker rebuilt from snapshot + deltas; open interest out at a bounded rate."""

    min_interval_ms: int
    fields: dict[str, Any] = field(default_factory=dict)
    last_sample: OpenInterest | None = None
    symbol: str = ""  # the tag of the samples it gives

    def apply(self, kind: str, data: dict, ts_ms: int) -> OpenInterest | None:
        """Merge one message; a sample when open interest moved and the interval has passed."""
        if kind == "snapshot":
            merged = dict(data)
        elif kind == "delta":
            merged = {**self.fields, **data}  # absent fields did not change
        else:
            raise MalformedMessageError(f"tickers message type {kind!r}")
        oi_contracts = _optional_float(merged.get("openInterest"))
        oi_value_usdt = _optional_float(merged.get("openInterestValue"))
        self.fields = merged  # only once readable: a bad delta must not poison the state
        last = self.last_sample
        if oi_contracts is None or (last is not None and (
                oi_contracts == last.oi_contracts or ts_ms - last.ts_ms < self.min_interval_ms)):
            return None
        self.last_sample = OpenInterest(ts_ms, oi_contracts, oi_value_usdt, self.symbol)
        return self.last_sample


def _optional_float(text: Any) -> float | None:
    return None if text in (None, "") else float(text)


@dataclass
class BybitLinearStream:
    """The Bybit half of a streaming feed: URL, subscription, heartbeat, message reading.

    `symbols`: the ccxt symbols of this connection (one may be given as a string).
    `oi_min_interval_ms` bounds how often an open-interest sample leaves (tickers push every
    100 ms); use the feed's `oi_poll_seconds` so both venues sample open interest alike.
    """

    symbols: tuple[str, ...]
    interval_ms: int
    base_url: str = BYBIT_LINEAR_WS
    oi_min_interval_ms: int = 30_000
    heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S
    name: str = "bybit"
    poll_open_interest: bool = False
    _topics: dict[str, tuple[str, str]] = field(init=False, repr=False)  # topic: kind, symbol
    _tickers: dict[str, TickerState] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        symbols = (self.symbols,) if isinstance(self.symbols, str) else tuple(self.symbols)
        if not symbols:
            raise ValueError("a Bybit stream needs at least one symbol")
        self.symbols = symbols
        self._topics = {}
        for symbol in symbols:
            kline, ticker, liquidation = topics_of(symbol, self.interval_ms)
            self._topics.update({kline: ("kline", symbol), ticker: ("ticker", symbol),
                                 liquidation: ("liquidation", symbol)})
        self._tickers = {s: TickerState(self.oi_min_interval_ms, symbol=s) for s in symbols}

    def topics(self) -> list[str]:
        """Each symbol's kline, ticker and liquidation topic, in the symbols' order."""
        return list(self._topics)

    def url(self) -> str:
        return self.base_url

    def subscribe_messages(self) -> list[str]:
        topics = self.topics()
        return [json.dumps({"op": "subscribe", "args": topics[i:i + MAX_ARGS_PER_SUBSCRIBE]},
                           separators=(",", ":"))
                for i in range(0, len(topics), MAX_ARGS_PER_SUBSCRIBE)]

    def heartbeat(self) -> tuple[float, str]:
        """(seconds between, message): Bybit wants an application-level ping."""
        return self.heartbeat_interval_s, PING_MESSAGE

    def parse(self, raw: str | bytes) -> ParsedMessage:
        """MalformedMessageError for anything unreadable; other topics are `unexpected`."""
        try:
            message = json.loads(raw)
            if "op" in message:
                return self._control(message)
            topic = message["topic"]
            ts_ms = int(message["ts"])
            kind, symbol = self._topics.get(topic, ("", ""))
            if kind == "kline":
                candles = [parse_kline(item, self.interval_ms, symbol)
                           for item in message["data"]]
                closed = tuple(c for c in candles if c is not None)
                return ParsedMessage(ts_ms, closed, open_update=len(closed) < len(candles),
                                     symbol=symbol)
            if kind == "ticker":
                sample = self._tickers[symbol].apply(message["type"], message["data"], ts_ms)
                return ParsedMessage(ts_ms, () if sample is None else (sample,), symbol=symbol)
            if kind == "liquidation":
                events: tuple[FeedEvent, ...] = tuple(parse_liquidation(item, symbol)
                                                      for item in message["data"])
                return ParsedMessage(ts_ms, events, symbol=symbol)
        except MalformedMessageError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessageError(f"unreadable Bybit message: {exc!r}") from None
        return ParsedMessage(ts_ms, (), unexpected=True)

    def _control(self, message: dict) -> ParsedMessage:
        """A reply to our subscribe or ping: no market time, no events."""
        if message.get("success") is False and message["op"] == "subscribe":
            # Never transient (a wrong symbol): streaming on would wait forever for data.
            topics = self.topics()
            shown = ", ".join(topics[:6]) + (f" and {len(topics) - 6} more"
                                              if len(topics) > 6 else "")
            raise ExchangeError(f"Bybit refused the subscription to {shown}: "
                                f"{message.get('ret_msg')!r}")
        if message.get("success") is False:
            raise MalformedMessageError(f"Bybit {message['op']!r} failed: "
                                        f"{message.get('ret_msg')!r}")
        return ParsedMessage(None, ())
