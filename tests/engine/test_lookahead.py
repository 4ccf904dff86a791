"""`cryptobot lookahead` and the causality check, on real bundled data: the shipped strategy is
clean, a planted peeking strategy (tests/engine/peeking_strategy.py, SYNTHETIC) is caught, and
the check holds for a second, differently shaped strategy (a Donchian breakout, below)."""

from __future__ import annotations

import importlib
import json
import re

import numpy as np
import pytest

from cryptobot.clock import parse_utc
from cryptobot.data import load_market_data
from cryptobot.data.resample import bucket_arrays
from cryptobot.runners.lookahead import check_causal
from cryptobot.strategy import (
    ATR,
    SMA,
    CandleView,
    Enter,
    Lag,
    Params,
    RollingMax,
    RollingMin,
    Strategy,
    StrategyContext,
    param,
)
from cryptobot.strategy.api import triggered_rows
from cryptobot.strategy.candles import SignalCandles
from cryptobot.strategy.indicators import SeriesCache
from tests.engine.conftest import REPO
from tests.engine.peeking_strategy import Peeking

CRASH = REPO / "data" / "btc_2024-08_crash"
FOURTEEN_MONTHS = REPO / "data" / "btc_5m_2023-11_2024-12"
DEFAULT = REPO / "config" / "default.toml"
SYMBOL = "BTC/USDT:USDT"
COLUMNS = ("ts_open_ms", "open", "high", "low", "close", "volume")


def _config(tmp_path, strategy: str = "") -> str:
    path = tmp_path / "lookahead.toml"
    path.write_text(f'extends = "{DEFAULT}"\n'
                    + (f'[strategy]\npath = "{strategy}"\n' if strategy else "")
                    + "[strategy.params]\noi_confirmation = false\n")
    return str(path)


def _signal_candles(folder, interval_ms: int, start: str | None = None,
                    end: str | None = None) -> dict[str, np.ndarray]:
    market = load_market_data(folder, SYMBOL, start and parse_utc(start), end and parse_utc(end))
    base = {c: np.asarray(market.candles[c], dtype=np.int64 if c == "ts_open_ms" else np.float64)
            for c in COLUMNS}
    return bucket_arrays(base, interval_ms, market.base_interval_ms)[0]


def test_the_shipped_strategy_is_clean_on_the_crash_window(run_cli, tmp_path):
    code, out, err = run_cli("lookahead", "--config", _config(tmp_path), "--data", str(CRASH))
    assert code == 0, out + err
    assert out.startswith("no look-ahead: 12 cuts, ")
    assert out.rstrip().endswith("indicators and trigger causal")
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (signal|order|fill|trade)s", out)}
    assert counts["signal"] >= 10 and counts["trade"] >= 5 and counts["fill"] >= counts["trade"]


def test_a_planted_peeking_strategy_is_caught(run_cli, tmp_path):
    """Peeking keeps only the spikes the price recovered from a day later (np.roll(close, -96)):
    on data cut within a day after a spike that indicator is not known yet."""
    config = _config(tmp_path, "tests.engine.peeking_strategy:Peeking")
    code, out, err = run_cli("lookahead", "--config", config, "--data", str(CRASH))
    assert code == 1, out + err
    assert out.startswith("look-ahead: ")
    code, out, err = run_cli("lookahead", "--config", config, "--data", str(CRASH), "--json")
    assert code == 1, err
    report = json.loads(out)
    kinds = {d["kind"] for d in report["differences"] + report["causal"]}
    assert {"indicator close_later", "trigger", "signal", "trade", "fill", "order"} <= kinds
    entered = [d for d in report["differences"] if d["kind"] == "signal"
               and "entered" in d["short"] and d["where"].startswith("on data cut")]
    assert entered and all(d["whole"] == "absent" for d in entered)


def test_a_strategy_that_keeps_the_whole_history_is_caught_by_the_candle_by_candle_run(
        run_cli, tmp_path):
    config = _config(tmp_path, "tests.engine.peeking_strategy:StashPeeking")
    code, out, err = run_cli("lookahead", "--config", config, "--data", str(CRASH), "--json")
    assert code == 1, err
    report = json.loads(out)
    assert any(d["where"] == "when fed candle by candle" for d in report["differences"])


def test_the_causality_check_sees_a_peek_at_the_next_candle_only():
    """One candle ahead changes only the last row of data cut short: decisions rarely show it
    (a cut must fall right after a spike), the indicator and trigger check always does."""
    signal = _signal_candles(CRASH, 900_000)
    strategy = Peeking(Peeking.Params(oi_confirmation=False), SYMBOL)
    strategy.AHEAD = 1
    cuts = [300, 1400, 2500]
    lines = check_causal(strategy, signal, cuts)
    cut_lines = [line for line in lines if "on data cut after row" in line]
    assert [line.split(" is ")[0] for line in cut_lines] == [
        f"indicator close_later: row {k - 1} ({_iso(signal, k - 1)})" for k in cuts]
    grown = [line for line in lines if "one by one" in line]
    assert any(line.startswith("indicator close_later: row 0 ") for line in grown)
    assert any(line.startswith("trigger: ") for line in grown)
    strategy.AHEAD = 0  # reads its own candle: causal
    assert check_causal(strategy, signal, cuts) == []


@pytest.mark.parametrize("module", sorted(
    p.stem for p in (REPO / "strategies").glob("*.py") if p.stem != "__init__"))
def test_every_shipped_strategy_is_causal(module):
    """Each file in strategies/, with its default parameters, on the crash window's 15m
    candles: what a fast backtest computes at once is what live computes candle by candle."""
    found = vars(importlib.import_module(f"strategies.{module}")).values()
    classes = [c for c in found if isinstance(c, type) and issubclass(c, Strategy)
               and c.__module__ == f"strategies.{module}"]
    assert classes, f"strategies/{module}.py holds no Strategy subclass"
    signal = _signal_candles(CRASH, 900_000)
    for cls in classes:
        assert check_causal(cls(cls.Params(), SYMBOL), signal, [97, 1000, 1490, 2500]) == []


# --- a second, differently shaped strategy: one array as its trigger, other indicators ----------

class BreakoutParams(Params):
    channel_candles: int = param(20, ge=2, le=1000, doc="the channel spans this many candles")
    trend_candles: int = param(50, ge=2, le=1000, doc="the trend filter's SMA")


class DonchianBreakout(Strategy):
    """SYNTHETIC test strategy: buy a close above the previous channel high in an uptrend."""

    Params = BreakoutParams

    def indicators(self):
        p = self.params
        return {"upper": Lag(RollingMax("high", p.channel_candles)),
                "lower": Lag(RollingMin("low", p.channel_candles)),
                "trend": SMA("close", p.trend_candles), "atr": ATR(14)}

    def trigger(self, c: CandleView):
        return (c.close > c.upper) & (c.close > c.trend) & (c.atr > 0)

    def waiting(self) -> bool:
        return False

    def on_candle(self, ctx: StrategyContext):
        ts = ctx.candle.ts_open_ms
        return [Enter(self.signal_id(ts), ts, ctx.ind.lower, {"atr": ctx.ind.atr}, ())]


class PeekingBreakout(DonchianBreakout):
    """SYNTHETIC, PLANTED LOOK-AHEAD: only breakouts the next candle confirms (np.roll)."""

    def trigger(self, c: CandleView):
        return super().trigger(c) & (np.roll(c.close, -1) > c.close)


@pytest.fixture(scope="module")
def hourly():
    """Three months of the bundled 14-month file, as 1h signal candles (2,184 rows)."""
    return _signal_candles(FOURTEEN_MONTHS, 3_600_000, "2024-02-01", "2024-05-01")


def test_a_donchian_breakout_is_causal_on_real_data(hourly):
    strategy = DonchianBreakout(BreakoutParams(), SYMBOL)
    n = len(hourly["ts_open_ms"])
    candles = SignalCandles.known(3_600_000, hourly)
    view = CandleView(candles, SeriesCache(candles), strategy.indicators(), np.arange(n))
    assert len(triggered_rows(strategy, view)) > 50  # it does break out, now and then
    cuts = [10, 49, 50, 51, 700, 1500, n - 1]  # inside the SMA's warm-up, at its edge, later
    assert check_causal(strategy, hourly, cuts, 3_600_000) == []


def test_a_peeking_donchian_breakout_is_caught(hourly):
    strategy = PeekingBreakout(BreakoutParams(), SYMBOL)
    lines = check_causal(strategy, hourly, [700, 1500], 3_600_000)
    assert lines and all(line.startswith("trigger: ") for line in lines)
    assert any("with the candles added one by one" in line for line in lines)


def _iso(signal, row: int) -> str:
    from cryptobot.clock import iso_utc

    return iso_utc(int(signal["ts_open_ms"][row]))
