"""Stored market data of one or several symbols served as a Binance venue on 127.0.0.1, for
`paper --replay`.

The candles become Binance combined-stream kline messages at the data's own base interval
(5m data as `kline_5m`), one closed kline per candle, stamped `E` = the candle's close; several
symbols' messages go on the one stream in time order, those closing at the same time in the
run's symbol order (the order the backtest merges them in). The loopback REST server
(cryptobot.exchange.loopback_rest) serves each symbol's klines, funding and open interest, but
only what is closed by the simulated time, which the stream's event times drive.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from cryptobot.clock import SimClock
from cryptobot.data.market_data import MarketData
from cryptobot.data.timeframes import ms_to_timeframe
from cryptobot.exchange.binance import stream_symbol
from cryptobot.exchange.feed import ExchangeTimeHook
from cryptobot.model import Candle, Liquidation


def stream_time_driver(clock: SimClock,
                       on_progress: Callable[[], None] | None = None) -> ExchangeTimeHook:
    """The hook that lets a replayed stream move the simulated clock (never backwards)."""

    def advance(ts_ms: int) -> None:
        if ts_ms > clock.now_ms():
            clock.advance_to(ts_ms)
            if on_progress is not None:
                on_progress()

    return advance


def binance_kline_message(symbol: str, candle: Candle, closed: bool = True,
                          event_time_ms: int | None = None) -> str:
    """A combined-stream kline message as Binance USD-M sends it (fields we do not use zeroed)."""
    market = stream_symbol(symbol)
    timeframe = ms_to_timeframe(candle.interval_ms)
    data = {
        "e": "kline",
        "E": candle.ts_close_ms if event_time_ms is None else event_time_ms,
        "s": market.upper(),
        "k": {
            "t": candle.ts_open_ms, "T": candle.ts_close_ms - 1, "s": market.upper(),
            "i": timeframe, "f": 0, "L": 0,
            "o": repr(candle.open), "c": repr(candle.close),
            "h": repr(candle.high), "l": repr(candle.low), "v": repr(candle.volume),
            "n": 0, "x": closed, "q": "0", "V": "0", "Q": "0", "B": "0",
        },
    }
    return json.dumps({"stream": f"{market}@kline_{timeframe}", "data": data},
                      separators=(",", ":"))


def binance_force_order_message(symbol: str, liquidation: Liquidation) -> str:
    market = stream_symbol(symbol)
    data = {
        "e": "forceOrder", "E": liquidation.ts_ms,
        "o": {"s": market.upper(), "S": liquidation.side.upper(), "o": "LIMIT", "f": "IOC",
              "q": repr(liquidation.qty_base), "p": repr(liquidation.price),
              "ap": repr(liquidation.price), "X": "FILLED", "l": repr(liquidation.qty_base),
              "z": repr(liquidation.qty_base), "T": liquidation.ts_ms},
    }
    return json.dumps({"stream": f"{market}@forceOrder", "data": data}, separators=(",", ":"))


@dataclass(frozen=True)
class CandleColumns:
    """Plain arrays of a candle frame, so building 10^6 messages stays cheap."""

    ts_open_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    interval_ms: int

    @classmethod
    def from_frame(cls, frame, interval_ms: int) -> CandleColumns:
        return cls(*(frame[name] for name in
                     ("ts_open_ms", "open", "high", "low", "close", "volume")), interval_ms)

    def __len__(self) -> int:
        return len(self.ts_open_ms)

    def candle(self, index: int) -> Candle:
        return Candle(int(self.ts_open_ms[index]), self.interval_ms, float(self.open[index]),
                      float(self.high[index]), float(self.low[index]),
                      float(self.close[index]), float(self.volume[index]))

    def __iter__(self) -> Iterator[Candle]:
        return (self.candle(i) for i in range(len(self)))


def kline_messages(symbol: str, candles: CandleColumns, frame_delay_ms: int = 0
                   ) -> list[tuple[int, str]]:
    """(event time, message) for every candle, closed, in order; each sent at its close, or
    `frame_delay_ms` after it."""
    if not frame_delay_ms:
        return [(candle.ts_close_ms, binance_kline_message(symbol, candle)) for candle in candles]
    return [(candle.ts_close_ms + frame_delay_ms, binance_kline_message(
        symbol, candle, event_time_ms=candle.ts_close_ms + frame_delay_ms)) for candle in candles]


def merged_messages(streams: Sequence[list[tuple[int, str]]]) -> list[tuple[int, str]]:
    """Several symbols' (event time, message) lists as one stream: in time order, ties in the
    order the lists are given."""
    keyed = ([(ts, order, text) for ts, text in messages]
             for order, messages in enumerate(streams))
    return [(ts, text) for ts, _, text in heapq.merge(*keyed)]


def replay_span(first_open_ms: int, last_open_ms: int, base_interval_ms: int,
                signal_interval_ms: int, start_ms: int | None,
                end_ms: int | None) -> tuple[int, int]:
    """[start, end) traded, exactly as the backtest runner cuts it (whole signal buckets)."""
    first_bucket_ms = -(-first_open_ms // signal_interval_ms) * signal_interval_ms
    start = max(first_bucket_ms, start_ms if start_ms is not None else first_bucket_ms)
    start = -(-start // signal_interval_ms) * signal_interval_ms
    end = end_ms if end_ms is not None else last_open_ms + base_interval_ms
    return start, end


class ReplayVenue:
    """A websocket stream and a REST API on 127.0.0.1, both serving the same MarketData (one,
    or several symbols' in the run's order).

    `clock` is the venue's time: the stream's event times move it (through the feed's hook),
    and REST serves only what is closed by it. Start with `async with`.
    """

    def __init__(self, markets: MarketData | Sequence[MarketData], start_ms: int, end_ms: int,
                 speed: float = 0.0, clock_ms: int | None = None,
                 frame_delay_ms: int = 0) -> None:
        """Streams the candles opening in [start_ms, end_ms). `clock_ms`: the venue's time at
        start (default `start_ms`); later for a resumed run whose symbols got unequally far,
        so that REST serves each one's history up to where it got. `frame_delay_ms`: each
        candle's closing frame that long after its close, as a live venue sends it (0: at the
        close, where a replay's open-interest poll may still bring the close's own sample)."""
        from cryptobot.exchange.loopback_rest import LoopbackRestServer
        from cryptobot.exchange.loopback_ws import LoopbackStreamServer

        self.markets = [markets] if isinstance(markets, MarketData) else list(markets)
        self.clock = SimClock(start_ms if clock_ms is None else max(start_ms, clock_ms))
        streams, self.streamed_candles = [], 0
        for market in self.markets:
            streamed = _streamed(market, start_ms, end_ms)
            self.streamed_candles += len(streamed)
            streams.append(kline_messages(market.symbol, streamed, frame_delay_ms))
        # A few candles of lead per symbol: enough to keep the pipe busy, little to lose at a
        # reconnect.
        self.ws = LoopbackStreamServer(merged_messages(streams), speed=speed,
                                       consumer_clock=self.clock,
                                       max_lead_messages=4 * len(self.markets))
        self.rest = LoopbackRestServer(self.markets, clock=self.clock, closed_only=True)
        self.ws_url = ""
        self.rest_url = ""

    @property
    def market(self) -> MarketData:
        """The market of a one-symbol replay."""
        (market,) = self.markets
        return market

    def time_driver(self) -> ExchangeTimeHook:
        """The feed's hook: moves the venue clock and lets the stream go on."""
        return stream_time_driver(self.clock, self.ws.notify_progress)

    async def __aenter__(self) -> ReplayVenue:
        self.ws_url = await self.ws.start()
        self.rest_url = await self.rest.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.ws.stop()
        await self.rest.stop()


def _streamed(market: MarketData, start_ms: int, end_ms: int) -> CandleColumns:
    """The market's candles opening in [start_ms, end_ms)."""
    columns = CandleColumns.from_frame(market.candles, market.base_interval_ms)
    keep = (columns.ts_open_ms >= start_ms) & (columns.ts_open_ms < end_ms)
    return CandleColumns(*(array[keep] for array in (
        columns.ts_open_ms, columns.open, columns.high, columns.low, columns.close,
        columns.volume)), market.base_interval_ms)
