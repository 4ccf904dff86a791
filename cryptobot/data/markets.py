"""Which market a data file says it holds, and which files of a folder serve a symbol.

A file says so in its content (the `symbol` column of Binance metrics dumps), which wins, or in
its name: Binance dumps and our derived files (`BTCUSDT-5m-2024-08.csv`, `binance_um_BTCUSDT_...`)
and freqtrade files (`BTC_USDT_USDT-5m-futures.feather`).

A folder may hold several markets' files. A file that names no market (a plain `candles.csv`)
belongs to the folder's one market, or to any symbol asked when no file names one; in a folder
of several markets it cannot be told apart and is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import Protocol, TypeVar

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


class NamesItsMarket(Protocol):
    @property
    def market(self) -> str | None: ...  # the market id the file says it holds, if it does

    @property
    def where(self) -> str: ...  # the file as the user named it


FileT = TypeVar("FileT", bound=NamesItsMarket)


def files_by_market(files: Sequence[FileT], folder: str) -> dict[str | None, list[FileT]]:
    """A folder's files by the market id they hold (the rule: see the module docstring). The
    key None holds files naming no market, in a folder where no file names one."""
    grouped: dict[str | None, list[FileT]] = {}
    for item in files:
        if item.market is not None:
            grouped.setdefault(market_id(item.market), []).append(item)
    unnamed = [f for f in files if f.market is None]
    if unnamed and len(grouped) > 1:
        held = _held(grouped)
        more = f" (and {len(unnamed) - 1} more such files)" if len(unnamed) > 1 else ""
        raise DataError(f"{unnamed[0].where}: names no market, and {folder} holds several "
                        f"({', '.join(held)}); put the market id in its name "
                        f"(e.g. binance_um_{held[0]}_...){more}")
    if unnamed:
        only = next(iter(grouped), None)
        grouped.setdefault(only, []).extend(unnamed)
    return grouped


def files_of_market(grouped: dict[str | None, list[FileT]], symbol: str,
                    folder: str) -> list[FileT]:
    """The files serving `symbol`; none while the folder holds other markets is a DataError
    listing them."""
    if None in grouped:
        return list(grouped[None])
    wanted = market_id(symbol)
    if wanted not in grouped and grouped:
        held = ", ".join(f"{m} ({_some_files(grouped[m])})" for m in _held(grouped))
        raise DataError(f"{folder}: holds {held} data, not {symbol} ({wanted}); pass the "
                        "matching --symbol")
    return list(grouped.get(wanted, []))


def _some_files(files: list[FileT]) -> str:
    first = PurePath(files[0].where).name
    return first if len(files) == 1 else f"{first} and {len(files) - 1} more"


def _held(grouped: dict[str | None, list[FileT]]) -> list[str]:
    return sorted(m for m in grouped if m is not None)
