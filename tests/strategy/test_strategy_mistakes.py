"""Mistakes a strategy author makes end in one clear line naming the strategy (through the
real `cryptobot backtest`), never a traceback and never a silent wrong run."""

from __future__ import annotations

import textwrap

import pytest

from cryptobot.errors import StrategyError
from cryptobot.model import PositionSide
from cryptobot.strategy import Params, Strategy, TargetContext, param
from cryptobot.strategy.loading import targets_of
from tests.conftest import DATA_DIR, REPO_ROOT

CRASH = str(DATA_DIR / "btc_2024-08_crash")

HEADER = '''
import numpy as np
from dataclasses import dataclass
from cryptobot.strategy import (ATR, SMA, Enter, Indicator, Params, PositionSide, Reject,
                                Strategy, TargetContext, param)

class P(Params):
    n: int = param(5, ge=2, le=50, doc="window")

'''

CASES = {
    "on_candle returns None": ('''
class Mine(Strategy):
    Params = P
    def on_candle(self, ctx):
        return None
''', "Mine.on_candle failed: TypeError: on_candle returned NoneType"),
    "on_candle returns a bare Enter": ('''
class Mine(Strategy):
    Params = P
    def on_candle(self, ctx):
        return Enter("X-1", ctx.candle.ts_open_ms, ctx.candle.low * 0.9)
''', "Mine.on_candle failed: TypeError: on_candle returned Enter"),
    "on_candle returns strings": ('''
class Mine(Strategy):
    Params = P
    def on_candle(self, ctx):
        return ["buy"]
''', "Mine.on_candle returned str: it must return a list of Enter and Reject"),
    "a stop from an undefined indicator": ('''
class Mine(Strategy):
    Params = P
    def indicators(self):
        return {"slow": SMA("close", 100_000)}
    def on_candle(self, ctx):
        return [Enter("X-1", ctx.candle.ts_open_ms, ctx.ind.slow)]
''', "Enter X-1 has the stop nan"),
    "an indicator named like a column": ('''
class Mine(Strategy):
    Params = P
    def indicators(self):
        return {"close": SMA("close", 3)}
''', "indicator name 'close' is not allowed"),
    "an indicator that cannot be shared": ('''
@dataclass
class Mutable(Indicator):
    n: int = 3
    def values(self, candles):
        return candles.column("close")

class Mine(Strategy):
    Params = P
    def indicators(self):
        return {"m": Mutable()}
''', "declare it as @dataclass(frozen=True)"),
    "a trigger of numbers": ('''
class Mine(Strategy):
    Params = P
    def trigger(self, c):
        return c.close - c.open
''', "trigger conditions must be booleans, got float64"),
    "a target under the entry": ('''
class Mine(Strategy):
    Params = P
    def waiting(self):
        return False
    def trigger(self, c):
        return c.close < c.open
    def on_candle(self, ctx):
        if ctx.has_position:
            return []
        return [Enter(self.signal_id(ctx.candle.ts_open_ms), ctx.candle.ts_open_ms,
                      ctx.candle.low * 0.97)]
    def exit_targets(self, ctx):
        return (ctx.entry_price * 0.99,)
''', "must return None or one or two prices above the entry"),
    "a target over a short's entry": ('''
class Mine(Strategy):
    Params = P
    def waiting(self):
        return False
    def trigger(self, c):
        return c.close > c.open
    def on_candle(self, ctx):
        if ctx.has_position:
            return []
        return [Enter(self.signal_id(ctx.candle.ts_open_ms), ctx.candle.ts_open_ms,
                      ctx.candle.high * 1.03, side=PositionSide.SHORT)]
    def exit_targets(self, ctx):
        return (ctx.entry_price * 0.98, ctx.entry_price * 1.01)
''', "must return None or one or two prices below the entry"),
    "a parameter without documentation": ('''
class Q(Params):
    n: int = 5

class Mine(Strategy):
    Params = Q
''', "Q.n: declare it with param(default, doc=...)"),
    "a default out of its own bounds": ('''
class Q(Params):
    n: int = param(1, ge=2, doc="window")

class Mine(Strategy):
    Params = Q
''', "strategy.params.n: Input should be greater than or equal to 2 (strategy Mine)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_strategy_mistake_is_one_clear_line(case, run_cli, tmp_path, monkeypatch):
    code_text, expected = CASES[case]
    module = f"mistake_{sorted(CASES).index(case)}"  # a new module each: no import cache
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(HEADER + code_text))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "mine.toml"
    config.write_text(f'extends = "{REPO_ROOT / "config" / "crosscheck.toml"}"\n'
                      f'[strategy]\npath = "{module}:Mine"\n'
                      f'[logging]\ndir = "{tmp_path / "logs"}"\n')
    code, out, err = run_cli("backtest", "--config", str(config), "--data", CRASH,
                             "--from", "2024-08-04", "--to", "2024-08-06",
                             "--db", f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert code == 2, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in out + err


def test_params_are_strict_and_documented():
    class Window(Params):
        n: int = param(5, ge=2, le=50, doc="window")
        on: bool = param(True, doc="switch")

    assert Window.documented() == [("n", 5, "window"), ("on", True, "switch")]
    with pytest.raises(ValueError, match="valid boolean"):
        Window.model_validate({"on": "yes"})
    with pytest.raises(ValueError, match="less than or equal to 50"):
        Window.model_validate({"n": 51})


class _Targets(Strategy):
    """Answers `exit_targets` with whatever the test sets."""

    answer: object = None

    def exit_targets(self, ctx):
        return self.answer


def _targets(answer, side: PositionSide):
    strategy = _Targets(Params(), "BTC/USDT:USDT")
    strategy.answer = answer
    return targets_of(strategy, TargetContext(side, 100.0, 95.0 if side is PositionSide.LONG
                                              else 105.0, float("nan"), float("nan")))


@pytest.mark.parametrize(("side", "answer"), [
    (PositionSide.LONG, (101.0,)), (PositionSide.LONG, [102.5, 110]),
    (PositionSide.SHORT, (99.0,)), (PositionSide.SHORT, [97.5, 90]),
])
def test_targets_beyond_the_entry_in_the_trades_direction(side, answer):
    assert _targets(answer, side) == tuple(float(price) for price in answer)
    assert _targets(None, side) is None


@pytest.mark.parametrize(("side", "answer", "where"), [
    (PositionSide.LONG, (99.0,), "above"), (PositionSide.LONG, (100.0,), "above"),
    (PositionSide.LONG, (101.0, 102.0, 103.0), "above"),
    (PositionSide.SHORT, (101.0,), "below"), (PositionSide.SHORT, (100.0,), "below"),
    (PositionSide.SHORT, (99.0, float("nan")), "below"), (PositionSide.SHORT, (), "below"),
])
def test_targets_on_the_wrong_side_are_one_clear_error(side, answer, where):
    with pytest.raises(StrategyError) as caught:
        _targets(answer, side)
    assert str(caught.value) == (
        f"strategy _Targets.exit_targets returned {answer!r}: it must return None or one or "
        f"two prices {where} the entry 100.0 of a {side}")
