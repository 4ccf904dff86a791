"""The strategy base class, what it is given, and what it answers.

A strategy declares its parameters (`Params`), its indicators (`indicators()`), the candles on
which it may start something (`trigger`) and what it does on a closed signal candle
(`on_candle`). The engine calls `on_candle` on a candle when the trigger holds on it, or when
the strategy is `waiting()` (a setup is pending): in every mode alike, so a backtest may skip
the other candles without changing anything. The engine serves the candles, open interest,
funding and liquidations; it sizes, asks the gate and risk, places the orders and runs the exits
of `[exits]` (a strategy may set its own targets with `exit_targets`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from cryptobot.clock import iso_utc
from cryptobot.model import (
    Candle,
    FundingRate,
    Liquidation,
    OpenInterest,
    PositionSide,
    SetupEvent,
)
from cryptobot.strategy.candles import CandleView, Row
from cryptobot.strategy.indicators import Indicator
from cryptobot.strategy.params import Params


@dataclass(frozen=True, slots=True)
class Enter:
    """Open a position now (market, at the next base candle) with this hard stop."""

    signal_id: str
    spike_ms: int  # when the setup started (the candle that triggered it)
    stop_price: float
    metrics: dict[str, float | None] = field(default_factory=dict)
    setup_events: tuple[SetupEvent, ...] = ()
    side: PositionSide = PositionSide.LONG


@dataclass(frozen=True, slots=True)
class Reject:
    """A candidate that will not be traded, with its reason and numbers (stored)."""

    signal_id: str
    spike_ms: int
    reason: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    setup_events: tuple[SetupEvent, ...] = ()


Decision = Enter | Reject


class PointInTime(Protocol):
    """Samples published by now; a lookup never sees one later than the clock."""

    def last_at_or_before(self, ts_ms: int) -> Any: ...


class OpenInterestView(PointInTime, Protocol):
    def last_at_or_before(self, ts_ms: int) -> OpenInterest | None: ...


class FundingView(PointInTime, Protocol):
    def last_at_or_before(self, ts_ms: int) -> FundingRate | None: ...


class LiquidationView(Protocol):
    def between(self, start_ms: int, end_ms: int) -> list[Liquidation] | None:
        """Liquidations in [start_ms, end_ms); None when no liquidation data covers it."""
        ...


@dataclass(slots=True)
class StrategyContext:
    """What a strategy may look at when a signal candle closes: all known at `now_ms`."""

    symbol: str
    now_ms: int
    candle: Candle
    index: int  # the candle's row among the run's signal candles (0 = first)
    ind: Row  # the declared indicators at this candle: ctx.ind.atr
    triggered: bool  # the strategy's trigger holds on this candle
    has_position: bool
    open_interest: OpenInterestView
    funding: FundingView
    liquidations: LiquidationView


@dataclass(frozen=True, slots=True)
class TargetContext:
    """What `exit_targets` is given when an entry fills."""

    side: PositionSide
    entry_price: float
    stop_price: float
    day_vwap: float  # the current UTC day's VWAP from base candles (NaN before any)
    prev_day_close: float  # the previous UTC day's last close (NaN if unknown)


class Strategy:
    """Base class: a strategy is one file with one subclass of this."""

    Params: ClassVar[type[Params]] = Params
    # The side the strategy trades: its rejected signals' evidence is judged for it (a short's
    # funding is flushed when it is high, not low). Its `Enter`s say their own side.
    side: ClassVar[PositionSide] = PositionSide.LONG

    def __init__(self, params: Params, symbol: str) -> None:
        self.params = params
        self.symbol = symbol

    def indicators(self) -> Mapping[str, Indicator]:
        """The indicators `trigger` and `on_candle` read, by name (from `self.params`)."""
        return {}

    def trigger(self, c: CandleView) -> Iterator[Any] | Any:
        """Where a setup may start: a boolean array over the rows of `c`, or a generator that
        yields conditions in turn (each is evaluated only on the rows the ones before kept,
        so cheap conditions first). Elementwise over rows; anything across candles is an
        indicator. It is asked on a fresh copy of the strategy (same parameters), never on
        the one `on_candle` keeps state in: a backtest asks it once for the whole history,
        live once a candle, and both get the same answers. The default holds everywhere:
        every candle goes to `on_candle`."""
        return np.ones(len(c), dtype=bool)

    def waiting(self) -> bool:
        """True while the strategy needs every signal candle (a setup is pending). The safe
        default is always."""
        return True

    def on_candle(self, ctx: StrategyContext) -> list[Decision]:
        return []

    def setup_candles(self) -> int | None:
        """The most signal candles from a setup's first candle to its decision. Paper and live
        keep the open interest and liquidations published that long before (beyond what the
        evidence and a restored trade need); a backtest keeps everything. None, the safe
        default: all open interest is kept (liquidations: the evidence's own days)."""
        return None

    def exit_targets(self, ctx: TargetContext) -> tuple[float, ...] | None:
        """Take-profit prices for a filled entry, nearest first; None: the `[exits]` rule."""
        return None

    def signal_id(self, ts_ms: int) -> str:
        """A signal id for a setup that started at `ts_ms`, e.g. BTCUSDT-20240805T0600."""
        stamp = iso_utc(ts_ms)[:16].replace("-", "").replace(":", "")
        return f"{self.symbol.split(':')[0].replace('/', '')}-{stamp}"


def triggered_rows(strategy: Strategy, view: CandleView) -> np.ndarray:
    """The rows of `view` where the strategy's trigger holds (narrowing `view`)."""
    answer = strategy.trigger(view)
    conditions = answer if inspect.isgenerator(answer) else iter((answer,))
    for condition in conditions:
        keep = np.asarray(condition)
        if keep.dtype != np.bool_:
            raise TypeError(f"trigger conditions must be booleans, got {keep.dtype} "
                            "(compare, e.g. c.rsi < 30)")
        if keep.shape != (len(view),):
            if keep.ndim:
                raise TypeError(f"a trigger condition has {keep.shape[0]} values for "
                                f"{len(view)} candles")
            keep = np.broadcast_to(keep, (len(view),))
        view.narrow(keep)
        if not len(view):
            if inspect.isgenerator(conditions):
                conditions.close()
            break
    return view.rows
