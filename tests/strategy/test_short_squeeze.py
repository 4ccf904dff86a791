"""The short squeeze (strategies/short_squeeze.py), the long rule's mirror: its rule on SYNTHETIC
scripted 15m candles (hand-checkable), and the whole strategy on the bundled real 14-month file.
It passes the checks every file in strategies/ passes: tests/engine/test_lookahead.py
(`test_every_shipped_strategy_is_causal`) and tests/foundation/test_import_graph.py.
"""

from __future__ import annotations

import bisect
import re
import tomllib

import numpy as np
import pytest

from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.model import Candle, OpenInterest, SignalStatus
from cryptobot.runners.backtest import run_backtest
from cryptobot.strategy import Enter, PositionSide, Reject, Row, StrategyContext
from cryptobot.strategy.api import triggered_rows
from cryptobot.strategy.candles import CandleView, SignalCandles
from cryptobot.strategy.indicators import SeriesCache
from cryptobot.strategy.loading import load_strategy
from strategies.short_squeeze import ShortSqueeze
from tests.conftest import DATA_DIR, REPO_ROOT, backtest_parts

SYMBOL = "BTC/USDT:USDT"
PROFILE = REPO_ROOT / "config" / "short_squeeze.toml"
FOURTEEN_MONTHS = DATA_DIR / "btc_5m_2023-11_2024-12"
T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SIGNAL_MS = 900_000  # 15m
NOT_YET = "short entries are not supported yet"  # the engine's answer until it trades shorts


# --- SYNTHETIC scripted candles, fed as the engine feeds them -------------------------------

class _OpenInterest:
    """SYNTHETIC open-interest samples: (ts_ms, contracts)."""

    def __init__(self, samples: list[tuple[int, float]]) -> None:
        self.samples = sorted(samples)

    def last_at_or_before(self, ts_ms: int) -> OpenInterest | None:
        i = bisect.bisect_right([ts for ts, _ in self.samples], ts_ms)
        return OpenInterest(*self.samples[i - 1]) if i else None


class _Unknown:
    def last_at_or_before(self, ts_ms: int):
        return None

    def between(self, start_ms: int, end_ms: int):
        return None


def _decide(rows, oi: list[tuple[int, float]] | None = None, has_position: bool = False,
            **params) -> list:
    """Every decision of the strategy on SYNTHETIC 15m candles (o, h, l, c, volume), asked as
    live asks it: after each close, on_candle when the trigger holds or a setup waits; the
    trigger on a fresh copy of the strategy."""
    strategy = ShortSqueeze(ShortSqueeze.Params(**params), SYMBOL)
    trigger_copy = ShortSqueeze(ShortSqueeze.Params(**params), SYMBOL)
    candles = SignalCandles(SIGNAL_MS)
    cache = SeriesCache(candles)
    indicators = strategy.indicators()
    open_interest = _OpenInterest(oi or [])
    decisions = []
    for i, (o, h, lo, c, v) in enumerate(rows):
        candle = Candle(T0_MS + i * SIGNAL_MS, SIGNAL_MS, o, h, lo, c, v)
        row = candles.close(candle)
        view = CandleView(candles, cache, indicators, np.array([row]))
        triggered = len(triggered_rows(trigger_copy, view)) == 1
        if not (triggered or strategy.waiting()):
            continue
        ctx = StrategyContext(SYMBOL, candle.ts_close_ms, candle, row,
                              Row(CandleView(candles, cache, indicators, np.array([row]))),
                              triggered, has_position, open_interest, _Unknown(), _Unknown())
        decisions += strategy.on_candle(ctx)
    return decisions


QUIET = [(100.0, 100.5, 99.5, 100.0, 10.0)] * 100  # true range 1: ATR 1; 24h low 99.5
SQUEEZE = (100.0, 107.0, 99.8, 106.0, 50.0)  # body 6 ATR, volume 5x, close 6.5% over the low
NO_SQUEEZE = (100.0, 104.0, 99.8, 103.0, 50.0)  # body 3 ATR, volume 5x, but 3.5% over the low
RALLY_HELD = (106.0, 106.5, 104.0, 105.0, 20.0)  # high under H = 107: a candidate, low 104
BREAKS_IT = (105.0, 105.5, 103.0, 103.5, 20.0)  # closes under 104: the lower high confirmed
SPIKE_ROW = len(QUIET)


def _oi_through_squeeze(change_pct: float) -> list[tuple[int, float]]:
    """SYNTHETIC OI: 1000 contracts at every open, `change_pct` by the squeeze's close."""
    spike_ms = T0_MS + SPIKE_ROW * SIGNAL_MS
    before = [(T0_MS + i * SIGNAL_MS, 1000.0) for i in range(SPIKE_ROW + 1)]
    return before + [(spike_ms + SIGNAL_MS, 1000.0 * (1 + change_pct / 100))]


def _wilder_atr(rows) -> float:
    """Wilder's ATR(14) after the last row, seeded with the first range (by hand)."""
    atr, prev_close = None, None
    for _, h, lo, c, _ in rows:
        tr = h - lo if prev_close is None else max(h - lo, abs(h - prev_close),
                                                   abs(lo - prev_close))
        atr = tr if atr is None else atr + (tr - atr) / 14
        prev_close = c
    return atr


def test_synthetic_squeeze_with_falling_oi_and_a_lower_high_enters_short():
    rows = [*QUIET, SQUEEZE, RALLY_HELD, BREAKS_IT]
    decisions = _decide(rows, _oi_through_squeeze(-3.0))
    assert len(decisions) == 1 and isinstance(decisions[0], Enter)
    enter = decisions[0]
    assert enter.side is PositionSide.SHORT
    assert enter.spike_ms == T0_MS + SPIKE_ROW * SIGNAL_MS
    # H = the squeeze's high 107; the buffer is 0.1 ATR after the confirming candle
    assert enter.stop_price == pytest.approx(107.0 + 0.1 * _wilder_atr(rows))
    assert enter.stop_price > 107.0
    assert [e.kind for e in enter.setup_events] == ["spike", "candidate", "confirmed"]
    assert enter.metrics["oi_change_pct"] == pytest.approx(-3.0)
    assert enter.metrics["body_atr"] == pytest.approx(6.0)
    assert enter.metrics["volume_ratio"] == pytest.approx(5.0)
    assert enter.metrics["rise_from_low_pct"] == pytest.approx((106 / 99.5 - 1) * 100)


def test_synthetic_higher_high_moves_h_and_the_stop_goes_above_it():
    """A new high drops the candidates: the first rally no longer counts."""
    higher = (105.0, 108.0, 104.5, 106.0, 20.0)
    rows = [*QUIET, SQUEEZE, RALLY_HELD, higher, (106.0, 107.0, 105.0, 105.5, 20.0),
            (105.5, 106.0, 104.0, 104.8, 20.0)]
    decisions = _decide(rows, _oi_through_squeeze(-3.0))
    assert [type(d) for d in decisions] == [Enter]
    assert [e.kind for e in decisions[0].setup_events] == [
        "spike", "candidate", "new_high", "candidate", "confirmed"]
    assert decisions[0].stop_price == pytest.approx(108.0 + 0.1 * _wilder_atr(rows))


def test_synthetic_green_candle_not_far_above_the_24h_low_gives_nothing():
    """Body and volume of a squeeze, but only 3.5% over the 24h low: a green candle."""
    rows = [*QUIET, NO_SQUEEZE, (103.0, 103.5, 101.5, 102.5, 20.0),
            (102.5, 103.0, 100.5, 101.0, 20.0)]  # a rally held under 104, then broken
    assert _decide(rows, _oi_through_squeeze(-3.0)) == []
    # The same candles with a 3% threshold: a squeeze, and the same follow-through enters.
    assert [type(d) for d in _decide(rows, _oi_through_squeeze(-3.0),
                                     min_close_to_low=1.03)] == [Enter]


def test_synthetic_squeeze_without_a_lower_high_gives_no_entry():
    """Every candle after the squeeze makes a new high: no rally held under H, and the setup
    expires after 16 candles."""
    grind = [(106.0 + k, 108.0 + k, 105.5 + k, 107.0 + k, 20.0) for k in range(16)]
    decisions = _decide([*QUIET, SQUEEZE, *grind], _oi_through_squeeze(-3.0))
    assert [type(d) for d in decisions] == [Reject]
    assert decisions[0].reason == "setup expired: no confirmed lower high within 16 candles"


def test_synthetic_squeeze_without_falling_oi_is_rejected_with_the_numbers():
    rows = [*QUIET, SQUEEZE, RALLY_HELD, BREAKS_IT]
    decisions = _decide(rows, _oi_through_squeeze(+0.5))
    assert [type(d) for d in decisions] == [Reject]
    assert decisions[0].reason.startswith("open interest did not fall enough: +0.50%")
    no_oi = _decide(rows)
    assert [d.reason for d in no_oi] == ["no open-interest data"]
    assert [type(d) for d in _decide(rows, oi_confirmation=False)] == [Enter]


def test_synthetic_confirmation_while_a_position_is_open_is_rejected():
    rows = [*QUIET, SQUEEZE, RALLY_HELD, BREAKS_IT]
    decisions = _decide(rows, _oi_through_squeeze(-3.0), has_position=True)
    assert [d.reason for d in decisions] == ["position open"]


# --- the profile -------------------------------------------------------------------------------

def test_the_profile_selects_the_short_squeeze_and_shows_its_defaults():
    settings = load_settings(PROFILE)
    assert settings.strategy.path == "strategies.short_squeeze:ShortSqueeze"
    assert settings.strategy.params == {}  # the long rule's parameters are not inherited
    assert load_settings(REPO_ROOT / "config" / "default.toml").strategy.path == \
        "strategies.liquidation_rebound:LiquidationRebound"
    shown = dict(re.findall(r"^# (\w+) = (\S+)", PROFILE.read_text().split(
        "[strategy.params]")[1], flags=re.M))
    declared = {name: default for name, default, _ in ShortSqueeze.Params.documented()}
    assert shown.keys() == declared.keys()
    for name, default in declared.items():
        assert tomllib.loads(f"v = {shown[name]}")["v"] == default, name


def test_defaults_mirror_the_long_rule():
    from strategies.liquidation_rebound import LiquidationRebound

    long = dict((n, d) for n, d, _ in LiquidationRebound.Params.documented())
    short = dict((n, d) for n, d, _ in ShortSqueeze.Params.documented())
    mirrored = {"high_lookback_candles": "low_lookback_candles",
                "max_close_to_high": "min_close_to_low"}
    assert {mirrored.get(n, n) for n in long} == short.keys()
    for name, default in long.items():
        if name == "max_close_to_high":  # close <= 96% of the 24h high: down >= 4%
            assert short["min_close_to_low"] == pytest.approx(2 - default)  # up >= 4%
        else:
            assert short[mirrored.get(name, name)] == default, name


# --- the whole strategy on the real 14-month file ----------------------------------------------

@pytest.mark.slow
def test_real_14_months_without_oi_make_short_entry_decisions(tmp_path):
    """The bundled real BTCUSDT 5m file (2023-11 .. 2024-12, no OI): the profile with
    `oi_confirmation = false`. Each `Enter` the strategy returns is one signal that reached
    the entry decision: ENTERED, or REJECTED by the engine while it does not trade shorts."""
    config = tmp_path / "short_no_oi.toml"
    config.write_text(f'extends = "{PROFILE}"\n[strategy.params]\noi_confirmation = false\n')
    settings = load_settings(config)
    strategy = load_strategy(settings, SYMBOL)
    result = run_backtest(settings, load_market_data(FOURTEEN_MONTHS, SYMBOL), strategy,
                          PassThroughGate(), MemoryRecorder(), *backtest_parts(settings),
                          skip_quiet=True)
    signals = result.engine.signals
    entries = [s for s in signals if s.status is SignalStatus.ENTERED
               or (s.status is SignalStatus.REJECTED and s.reason == NOT_YET)]
    assert len(entries) >= 5, [(s.signal_id, s.status, s.reason) for s in signals]
    assert all(s.setup_events[-1].kind == "confirmed" for s in entries)
    for signal in entries:
        if signal.status is SignalStatus.ENTERED:  # the stop above the price it sold at
            assert signal.metrics["stop_price"] > signal.metrics["reference_price"]
