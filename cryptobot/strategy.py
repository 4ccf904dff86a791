"""The strategy API: small verbs, closed candles in, decisions out. A strategy never trades.

A strategy sees only closed signal candles (aggregated from base candles) and open interest
published by then, through `StrategyContext`. It returns decisions: `EnterLong` (the engine
sizes it, asks the gate and risk, and places the orders) or `Rejected` (a candidate that will not
be traded, with its reason and numbers). Exits are the strategy's too: `exit_targets` when an
entry fills and `trailing_stop` at each signal candle close while a position is open.

Strategies are loaded by import path ("package.module:Class") with `load_strategy`, and every
call into user code goes through `guarded`, so a bug there ends in one clear error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cryptobot.config import Settings
from cryptobot.errors import CryptobotError, StrategyError, StrategyLoadError
from cryptobot.indicators import CandleFeatures
from cryptobot.model import Candle, OpenInterest, SetupEvent


@dataclass(frozen=True, slots=True)
class EnterLong:
    signal_id: str
    spike_ms: int
    stop_price: float
    atr: float  # the ATR the stop was measured with (after the confirming candle)
    metrics: dict[str, float | None]
    setup_events: tuple[SetupEvent, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    signal_id: str
    spike_ms: int
    reason: str
    metrics: dict[str, float | None]
    setup_events: tuple[SetupEvent, ...] = ()


Decision = EnterLong | Rejected


class OpenInterestView(Protocol):
    def last_at_or_before(self, ts_ms: int) -> OpenInterest | None: ...


@dataclass(slots=True)
class StrategyContext:
    """What a strategy may look at: everything here was known at `now_ms`."""

    symbol: str
    now_ms: int
    candle_index: int  # how many signal candles have closed, this one included
    features: CandleFeatures
    open_interest: OpenInterestView
    has_position: bool
    day_vwap: float = float("nan")  # current UTC day's VWAP from base candles
    prev_day_close: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OpenTradeView:
    """The open position as the strategy sees it when managing exits."""

    entry_price: float
    stop_price: float
    breakeven_price: float
    tp1_done: bool
    highest_close: float
    atr: float | None


class Strategy:
    """Base class. Override `on_candle`; the rest has sensible defaults."""

    def __init__(self, settings: Settings, symbol: str) -> None:
        self.settings = settings
        self.symbol = symbol

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> list[Decision]:
        return []

    def is_idle(self) -> bool:
        """True while no setup is pending: an idle strategy ignores non-candidate candles."""
        return True

    def candidate_mask(self, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                       close: np.ndarray, volume: np.ndarray,
                       atr_after: np.ndarray) -> np.ndarray:
        """Signal candles that might start something (a superset). All True: never skip."""
        return np.ones(len(open_), dtype=bool)

    def exit_targets(self, ctx: StrategyContext, entry_price: float,
                     stop_price: float) -> tuple[float, ...]:
        return ()

    def trailing_stop(self, ctx: StrategyContext, trade: OpenTradeView) -> float | None:
        return None

    def trails(self, trade: OpenTradeView) -> bool:
        """Whether `trailing_stop` may move this trade's stop now, answered from the trade's
        order state (tp1_done, stop_price), not from prices. True (the safe default) makes
        every signal candle close count; False lets a backtest skip quiet ones."""
        return True


def load_strategy(path: str, settings: Settings, symbol: str) -> Strategy:
    """Import "module:Class" and build it; any failure is one StrategyLoadError line."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise StrategyLoadError(f"strategy.path {path!r}: expected 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise StrategyLoadError(
            f"strategy.path {path!r}: cannot import {module_name!r}: "
            f"{type(exc).__name__}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(
            f"strategy.path {path!r}: {module_name} has no Strategy subclass {class_name!r}")
    return guarded(cls.__name__, "__init__", cls, settings, symbol)


def guarded(name: str, call: str, func: Callable[..., Any], *args: Any) -> Any:
    """Call user strategy code; its exceptions become one StrategyError line."""
    try:
        return func(*args)
    except CryptobotError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code may raise anything
        raise StrategyError(f"strategy {name}.{call} failed: {type(exc).__name__}: {exc}") from exc
