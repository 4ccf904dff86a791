"""Stored data written as Bybit v5 linear stream messages, for loopback servers and replays.

The shapes follow the documented examples (tests/fixtures/bybit/README.md); fields the adapter
does not read are left out. A closed kline is stamped `ts` = the candle's close.
"""

from __future__ import annotations

import json

from cryptobot.exchange.bybit import kline_interval
from cryptobot.exchange.symbols import market_id
from cryptobot.model import Candle, Liquidation, OpenInterest

_COMPACT = (",", ":")


def kline_message(symbol: str, candle: Candle, closed: bool = True,
                  ts_ms: int | None = None) -> str:
    interval = kline_interval(candle.interval_ms)
    ts = candle.ts_close_ms if ts_ms is None else ts_ms
    item = {"start": candle.ts_open_ms, "end": candle.ts_close_ms - 1, "interval": interval,
            "open": repr(candle.open), "close": repr(candle.close), "high": repr(candle.high),
            "low": repr(candle.low), "volume": repr(candle.volume), "turnover": "0",
            "confirm": closed, "timestamp": ts}
    return json.dumps({"topic": f"kline.{interval}.{market_id(symbol)}", "data": [item],
                       "ts": ts, "type": "snapshot"}, separators=_COMPACT)


def ticker_message(symbol: str, sample: OpenInterest, kind: str = "delta", seq: int = 0) -> str:
    """A tickers message carrying open interest (a delta holds only what changed)."""
    data: dict[str, str] = {"symbol": market_id(symbol), "openInterest": repr(sample.oi_contracts)}
    if sample.oi_value_usdt is not None:
        data["openInterestValue"] = repr(sample.oi_value_usdt)
    return json.dumps({"topic": f"tickers.{market_id(symbol)}", "type": kind, "data": data,
                       "cs": seq, "ts": sample.ts_ms}, separators=_COMPACT)


def liquidation_message(symbol: str, liquidation: Liquidation) -> str:
    # Bybit names the liquidated position's side: a "sell" liquidation closed a long ("Buy").
    position_side = "Buy" if liquidation.side == "sell" else "Sell"
    item = {"T": liquidation.ts_ms, "s": market_id(symbol), "S": position_side,
            "v": repr(liquidation.qty_base), "p": repr(liquidation.price)}
    return json.dumps({"topic": f"allLiquidation.{market_id(symbol)}", "type": "snapshot",
                       "ts": liquidation.ts_ms, "data": [item]}, separators=_COMPACT)
