"""Binance USD-M futures market streams: closed klines and forceOrder liquidations.

Speaks the routed market endpoint (`/market/stream?streams=a/b`, the combined-stream envelope
`{"stream": ..., "data": ...}`). One connection carries every symbol of a run: two streams per
symbol (`<symbol>@kline_<interval>`, `<symbol>@forceOrder`), so up to 512 symbols fit in
Binance's 1024 streams per connection; `stream_groups` splits a longer list over several
connections. A message is routed by its stream name: one we did not subscribe to is
`unexpected`; on one of ours, a payload naming another market is left to the stream checks
(`ParsedMessage.market`), which refuse it. Binance has no open-interest stream, so
`poll_open_interest` is on and the streaming feed polls REST `openInterest` through ccxt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptobot.data.timeframes import ms_to_timeframe
from cryptobot.exchange.feed import MalformedMessageError, ParsedMessage
from cryptobot.exchange.symbols import market_id
from cryptobot.model import Candle, Liquidation

BINANCE_MARKET_WS = "wss://fstream.binance.com/market/stream"
# Binance USD-M "Websocket Market Streams" (developers.binance.com/docs/derivatives/
# usds-margined-futures/websocket-market-streams): "A single connection can listen to a maximum
# of 1024 streams."
MAX_STREAMS_PER_CONNECTION = 1024
STREAMS_PER_SYMBOL = 2  # the closed klines and the liquidations (forceOrder)


def stream_groups(symbols: Sequence[str],
                  max_streams: int = MAX_STREAMS_PER_CONNECTION) -> list[tuple[str, ...]]:
    """The symbols of each connection, in order: all on one while they fit, more beyond."""
    per_connection = max(1, max_streams // STREAMS_PER_SYMBOL)
    return [tuple(symbols[i:i + per_connection])
            for i in range(0, len(symbols), per_connection)]


def stream_symbol(symbol: str) -> str:
    """ccxt unified 'BTC/USDT:USDT' (or 'BTCUSDT') -> Binance stream name 'btcusdt'."""
    return market_id(symbol).lower()


def parse_kline(data: dict, interval_ms: int, symbol: str = "") -> Candle | None:
    """A kline event's candle, or None while the candle is still open (`x` false)."""
    kline = data["k"]
    if not kline["x"]:
        return None
    ts_open_ms = int(kline["t"])
    candle_interval_ms = int(kline["T"]) + 1 - ts_open_ms
    if candle_interval_ms != interval_ms:
        raise MalformedMessageError(
            f"kline interval {kline.get('i')!r} is {candle_interval_ms} ms, expected {interval_ms}"
        )
    return Candle(
        ts_open_ms=ts_open_ms,
        interval_ms=interval_ms,
        open=float(kline["o"]),
        high=float(kline["h"]),
        low=float(kline["l"]),
        close=float(kline["c"]),
        volume=float(kline["v"]),
        symbol=symbol,
    )


def parse_force_order(data: dict, symbol: str = "") -> Liquidation:
    order = data["o"]
    side = order["S"].lower()
    if side not in ("buy", "sell"):
        raise MalformedMessageError(f"forceOrder side {order['S']!r}")
    # `ap` is the average fill price; `p` the (bankruptcy) order price. The fill is what traded.
    price = float(order.get("ap") or order["p"])
    return Liquidation(
        ts_ms=int(order["T"]),
        side=side,
        price=price,
        qty_base=float(order.get("z") or order["q"]),
        symbol=symbol,
    )


@dataclass
class BinanceUsdmStream:
    """The Binance half of a streaming feed: which URL, how to read a message.

    `symbols`: the ccxt symbols of this connection (one symbol may be given as a string)."""

    symbols: tuple[str, ...]
    interval_ms: int
    base_url: str = BINANCE_MARKET_WS
    name: str = "binanceusdm"
    poll_open_interest: bool = True
    _klines: dict[str, str] = field(init=False, repr=False)  # stream name -> symbol
    _liquidations: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        symbols = (self.symbols,) if isinstance(self.symbols, str) else tuple(self.symbols)
        if not symbols:
            raise ValueError("a Binance stream needs at least one symbol")
        self.symbols = symbols
        timeframe = ms_to_timeframe(self.interval_ms)
        self._klines = {f"{stream_symbol(s)}@kline_{timeframe}": s for s in symbols}
        self._liquidations = {f"{stream_symbol(s)}@forceOrder": s for s in symbols}
        if len(self.streams()) > MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"{len(self.streams())} streams on one connection: Binance takes "
                             f"{MAX_STREAMS_PER_CONNECTION} (split with stream_groups)")

    def streams(self) -> list[str]:
        """Each symbol's kline and liquidation stream, in the symbols' order."""
        kline, force = list(self._klines), list(self._liquidations)
        return [name for pair in zip(kline, force, strict=True) for name in pair]

    def url(self) -> str:
        return f"{self.base_url}?streams={'/'.join(self.streams())}"

    def subscribe_messages(self) -> list[str]:
        return []  # the streams are in the URL

    def heartbeat(self) -> None:
        return None  # Binance answers websocket-level pings; it wants no application ping

    def parse(self, raw: str | bytes) -> ParsedMessage:
        """MalformedMessageError for anything unreadable; unknown streams are `unexpected`."""
        try:
            envelope = json.loads(raw)
            stream = envelope["stream"]
            data = envelope["data"]
            event_type = data["e"]
            event_time_ms = int(data["E"])
            symbol = self._klines.get(stream)
            if symbol is not None and event_type == "kline":
                candle = parse_kline(data, self.interval_ms, symbol)
                market = data["k"].get("s") or data.get("s")
                if candle is None:
                    return ParsedMessage(event_time_ms, (), open_update=True, market=market,
                                         symbol=symbol)
                return ParsedMessage(event_time_ms, (candle,), market=market, symbol=symbol)
            symbol = self._liquidations.get(stream)
            if symbol is not None and event_type == "forceOrder":
                return ParsedMessage(event_time_ms, (parse_force_order(data, symbol),),
                                     market=data["o"].get("s"), symbol=symbol)
        except MalformedMessageError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessageError(f"unreadable Binance message: {exc!r}") from None
        return ParsedMessage(event_time_ms, (), unexpected=True)
