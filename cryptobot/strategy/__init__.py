"""The whole API a strategy may import: `from cryptobot.strategy import ...`.

A strategy is one file with one `Strategy` subclass: its `Params` (typed, bounded, documented,
filled from the config's `[strategy.params]`), its `indicators()`, its `trigger` (the candles on
which a setup may start) and `on_candle` (decisions: `Enter` or `Reject`). See README.md,
"Writing a strategy", and strategies/ for two complete ones.
"""

from cryptobot.model import Candle, PositionSide, SetupEvent
from cryptobot.strategy.api import (
    Decision,
    Enter,
    Reject,
    Strategy,
    StrategyContext,
    TargetContext,
)
from cryptobot.strategy.candles import CandleView, Row
from cryptobot.strategy.indicators import (
    ATR,
    SMA,
    Columns,
    Indicator,
    Lag,
    RollingMax,
    RollingMedian,
    RollingMin,
    Windowed,
)
from cryptobot.strategy.params import Params, param

__all__ = [
    "ATR", "SMA", "Candle", "CandleView", "Columns", "Decision", "Enter", "Indicator", "Lag",
    "Params", "PositionSide", "Reject", "RollingMax", "RollingMedian", "RollingMin", "Row",
    "SetupEvent", "Strategy", "StrategyContext", "TargetContext", "Windowed", "param",
]
