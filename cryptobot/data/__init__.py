"""Market data: readers for public dumps, normalised frames, the store, resampling, OI lookup.

The engine calls `load_market_data`, `resample_candles`, `CandleAggregator` and
`OpenInterestSeries`; the CLI calls `import_files` and `download_market_data`.
"""

from cryptobot.data.market_data import MarketData, load_market_data
from cryptobot.data.open_interest import OpenInterestSeries
from cryptobot.data.resample import CandleAggregator, candles_from_frame, resample_candles

__all__ = [
    "CandleAggregator",
    "MarketData",
    "OpenInterestSeries",
    "candles_from_frame",
    "load_market_data",
    "resample_candles",
]
