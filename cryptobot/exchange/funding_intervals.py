"""Each symbol's funding interval, as the venue says it now.

Binance USD-M settles every 8h unless it has adjusted a symbol: GET /fapi/v1/fundingInfo lists
only the adjusted symbols, with `fundingIntervalHours` (4 or 1 during volatility). Bybit v5
instruments-info gives every linear symbol's `fundingInterval` in minutes. A venue we do not
know is taken to settle every 8h. The streaming feed asks once an hour, so it polls a symbol's
settled rate right after each of its settlements, however often they come.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptobot.clock import HOUR_MS, MINUTE_MS
from cryptobot.data.funding_times import DEFAULT_INTERVAL_MS
from cryptobot.errors import ExchangeError
from cryptobot.exchange.backfill import call_venue
from cryptobot.exchange.symbols import market_id


async def fetch_funding_intervals(rest: Any, symbols: Sequence[str]) -> dict[str, int]:
    """symbol -> its funding interval in ms (`rest`: a ccxt client; ExchangeError when the
    venue's answer is unreadable)."""
    if rest.id == "binanceusdm":
        return await _binance(rest, symbols)
    if rest.id == "bybit":
        return {symbol: await _bybit(rest, symbol) for symbol in symbols}
    return dict.fromkeys(symbols, DEFAULT_INTERVAL_MS)


async def _binance(rest: Any, symbols: Sequence[str]) -> dict[str, int]:
    rows = await call_venue(rest.fapiPublicGetFundingInfo(), "fundingInfo")
    try:
        adjusted = {row["symbol"]: int(row["fundingIntervalHours"]) * HOUR_MS for row in rows}
    except (KeyError, TypeError, ValueError) as exc:
        raise ExchangeError(f"fundingInfo: unreadable answer ({exc!r})") from None
    return {symbol: adjusted.get(market_id(symbol), DEFAULT_INTERVAL_MS) for symbol in symbols}


async def _bybit(rest: Any, symbol: str) -> int:
    answer = await call_venue(rest.publicGetV5MarketInstrumentsInfo(
        {"category": "linear", "symbol": market_id(symbol)}), f"instruments-info {symbol}")
    try:
        (item,) = answer["result"]["list"]
        return int(item["fundingInterval"]) * MINUTE_MS
    except (KeyError, TypeError, ValueError) as exc:
        raise ExchangeError(f"instruments-info {symbol}: no fundingInterval ({exc!r})") from None
