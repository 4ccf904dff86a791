"""Which market a data file says it holds, and the check that it is the one asked for.

A file says so in its content (the `symbol` column of Binance metrics dumps) or in its name:
Binance dumps and our derived files (`BTCUSDT-5m-2024-08.csv`, `binance_um_BTCUSDT_...`) and
freqtrade files (`BTC_USDT_USDT-5m-futures.feather`). A file that names no market is accepted.
"""

from __future__ import annotations

import re

from cryptobot.errors import DataError
from cryptobot.exchange.symbols import market_id

_QUOTE = r"(?:USDT|USDC|BUSD|FDUSD|USD)"
# freqtrade: BASE_QUOTE[_SETTLE]-<timeframe>
_FREQTRADE = re.compile(rf"(?<![A-Za-z0-9])([A-Z0-9]+)_({_QUOTE})(?:_{_QUOTE})?-\d+[mhdwM]")
# a venue market id as its own token: BTCUSDT, 1000PEPEUSDT
_MARKET_ID = re.compile(rf"(?<![A-Za-z0-9])([A-Z0-9]{{1,20}}{_QUOTE})(?![A-Za-z0-9])")


def market_from_name(name: str) -> str | None:
    """'binance_um_BTCUSDT_5m_....csv' -> 'BTCUSDT'; None when the name names no single market."""
    found = {base + quote for base, quote in _FREQTRADE.findall(name)}
    if not found:
        found = set(_MARKET_ID.findall(name))
    return found.pop() if len(found) == 1 else None


def market_from_column(values: list[str], where: str) -> str | None:
    """The one market a `symbol` column holds; a DataError if it holds several."""
    markets = sorted({v.strip().upper() for v in values if v and v.strip()})
    if len(markets) > 1:
        raise DataError(f"{where}: holds several markets ({', '.join(markets[:5])}); "
                        "one market per file")
    return markets[0] if markets else None


def check_market(file_market: str | None, where: str, symbol: str) -> None:
    """Refuse a file whose market is not `symbol` (compared as venue market ids)."""
    if file_market is not None and market_id(file_market) != market_id(symbol):
        raise DataError(f"{where}: holds {file_market} data, not {symbol} "
                        f"({market_id(symbol)}); pass the matching --symbol")
