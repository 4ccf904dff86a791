"""Market data: readers for public dumps, normalised tables, the store, resampling, OI lookup.

The engine calls `load_market_data` (`load_markets` for several symbols), `resample_candles`,
`CandleAggregator` and `OpenInterestSeries`; the CLI calls `import_files` and `Downloader`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Loaded on first use (PEP 562), so `cryptobot --help` and light submodules such as
# `cryptobot.data.timeframes` don't pay for pandas and pyarrow.
_EXPORTS = {
    "CandleAggregator": "cryptobot.data.resample",
    "MarketData": "cryptobot.data.market_data",
    "OpenInterestSeries": "cryptobot.data.open_interest",
    "candles_from_frame": "cryptobot.data.resample",
    "load_market_data": "cryptobot.data.market_data",
    "load_markets": "cryptobot.data.market_data",
    "resample_candles": "cryptobot.data.resample",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cryptobot.data' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
