"""Binance USD-M futures market streams: closed klines and forceOrder liquidations.

Speaks the routed market endpoint (`/market/stream?streams=a/b`, the combined-stream envelope
`{"stream": ..., "data": ...}`). Binance has no open-interest stream, so `poll_open_interest`
is on and the streaming feed polls REST `openInterest` through ccxt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptobot.data.timeframes import ms_to_timeframe
from cryptobot.exchange.feed import MalformedMessageError, ParsedMessage
from cryptobot.exchange.symbols import market_id
from cryptobot.model import Candle, Liquidation

BINANCE_MARKET_WS = "wss://fstream.binance.com/market/stream"


def stream_symbol(symbol: str) -> str:
    """ccxt unified 'BTC/USDT:USDT' (or 'BTCUSDT') -> Binance stream name 'btcusdt'."""
    return market_id(symbol).lower()


def parse_kline(data: dict, interval_ms: int) -> Candle | None:
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
    )


def parse_force_order(data: dict) -> Liquidation:
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
    )


@dataclass
class BinanceUsdmStream:
    """The Binance half of a streaming feed: which URL, how to read a message."""

    symbol: str
    interval_ms: int
    base_url: str = BINANCE_MARKET_WS
    name: str = "binanceusdm"
    poll_open_interest: bool = True

    def url(self) -> str:
        market = stream_symbol(self.symbol)
        timeframe = ms_to_timeframe(self.interval_ms)
        return f"{self.base_url}?streams={market}@kline_{timeframe}/{market}@forceOrder"

    def subscribe_messages(self) -> list[str]:
        return []  # the streams are in the URL

    def heartbeat(self) -> None:
        return None  # Binance answers websocket-level pings; it wants no application ping

    def parse(self, raw: str | bytes) -> ParsedMessage:
        """MalformedMessageError for anything unreadable; unknown streams are `unexpected`."""
        try:
            envelope = json.loads(raw)
            data = envelope["data"]
            event_type = data["e"]
            event_time_ms = int(data["E"])
            if event_type == "kline":
                candle = parse_kline(data, self.interval_ms)
                market = data["k"].get("s") or data.get("s")
                if candle is None:
                    return ParsedMessage(event_time_ms, (), open_update=True, market=market)
                return ParsedMessage(event_time_ms, (candle,), market=market)
            if event_type == "forceOrder":
                return ParsedMessage(event_time_ms, (parse_force_order(data),),
                                     market=data["o"].get("s"))
        except MalformedMessageError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessageError(f"unreadable Binance message: {exc!r}") from None
        return ParsedMessage(event_time_ms, (), unexpected=True)
