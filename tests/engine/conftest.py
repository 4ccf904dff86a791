"""Engine test helpers: scripted (SYNTHETIC, hand-made) price paths and real-data runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock
from cryptobot.config import Settings
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.loop import Engine
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.engine.risk import NeverEngaged
from cryptobot.model import Candle
from cryptobot.strategy import Enter, Params, Strategy, StrategyContext

T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BASE_MS = 300_000  # 5m
REPO = Path(__file__).resolve().parents[2]
CASCADE_MS = 1_733_430_600_000  # 2024-12-05 20:30 UTC


def settings_with(params: dict | None = None, **sections) -> Settings:
    """Default settings with some keys changed, e.g. exits={"trailing": False}; `params`
    are the strategy's, e.g. params={"oi_confirmation": False}."""
    base = Settings()
    update = {}
    for name, changes in sections.items():
        update[name] = getattr(base, name).model_copy(update=changes)
    if params:
        update["strategy"] = base.strategy.model_copy(update={"params": params})
    return base.model_copy(update=update)


class ScriptedEntries(Strategy):
    """SYNTHETIC: enters at the close of each signal candle whose index (1 = first) is in
    `entry_at` (signal id TEST-<index>), stop `stop_price`; the exits are the engine's."""

    entry_at: tuple[int, ...] = (1,)
    stop_price = 95.0

    def __init__(self, settings: Settings, symbol: str) -> None:
        super().__init__(Params(), symbol)

    def on_candle(self, ctx: StrategyContext):
        index = ctx.index + 1
        if index in self.entry_at:
            return [Enter(f"TEST-{index}", ctx.candle.ts_open_ms, self.stop_price, {}, ())]
        return []


class EnterAtTheCascade(Strategy):
    """SYNTHETIC decision on real data: enters at the close of the 15m candle of 2024-12-05
    20:30 UTC (liquidations 18x those of the same window the day before), stop 1% below."""

    def on_candle(self, ctx: StrategyContext):
        candle = ctx.candle
        if candle.ts_open_ms != CASCADE_MS:
            return []
        return [Enter("CASCADE", candle.ts_open_ms, candle.close * 0.99, {}, ())]


class ScriptedEntry(ScriptedEntries):
    """SYNTHETIC: enters at the close of the first signal candle with a fixed stop."""


def path_candles(rows: list[tuple[float, float, float, float]], start_ms: int = T0_MS,
                 volume: float = 1.0) -> list[Candle]:
    return [Candle(start_ms + i * BASE_MS, BASE_MS, o, h, lo, c, volume)
            for i, (o, h, lo, c) in enumerate(rows)]


def flat(price: float, n: int) -> list[tuple[float, float, float, float]]:
    return [(price, price + 1, price - 1, price)] * n


def make_engine(settings: Settings, strategy=None, gate=None, rules=None, broker=None,
                clock: SimClock | None = None, kill_switch=None):
    """An engine on a SimClock; its kill switch never engages unless one is given."""
    clock = clock or SimClock(T0_MS)
    strategy = strategy or ScriptedEntry(settings, settings.market.symbol)
    broker = broker or PaperBroker(settings.costs, clock)
    recorder = MemoryRecorder()
    engine = Engine(settings, strategy, broker, gate or PassThroughGate(), recorder, clock,
                    rules, kill_switch=kill_switch or NeverEngaged())
    return engine, recorder, clock


def feed(engine: Engine, clock: SimClock, candles: list[Candle]) -> None:
    for candle in candles:
        clock.advance_to(candle.ts_close_ms)
        engine.on_base_candle(candle)


def run_scripted(rows, settings: Settings, stop_price: float = 95.0, **parts):
    engine, recorder, clock = make_engine(settings, **parts)
    engine.strategy.stop_price = stop_price
    feed(engine, clock, path_candles(rows))
    return engine, recorder


@pytest.fixture
def scripted():
    return run_scripted
