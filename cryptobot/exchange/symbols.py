"""Symbol names: ccxt's unified 'BTC/USDT:USDT' and the venues' own market id 'BTCUSDT'."""

from __future__ import annotations


def market_id(symbol: str) -> str:
    """ccxt unified 'BTC/USDT:USDT' (or already 'BTCUSDT') -> 'BTCUSDT', as Binance USD-M and
    Bybit linear both name their USDT perpetuals (Binance's stream names are its lower case)."""
    return symbol.split(":")[0].replace("/", "").upper()
