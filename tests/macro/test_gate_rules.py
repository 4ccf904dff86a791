"""The decision table and the stale-data rule, on tiny hand-made readings (not market data)."""

from __future__ import annotations

import pytest

from cryptobot.clock import parse_utc
from cryptobot.config import MacroSettings
from cryptobot.macro.rules import STALE, evaluate, hyg_trend, oas_trend, qt_state
from cryptobot.macro.snapshot import MacroSnapshot, TrendReading, WalclReading
from cryptobot.model import GateAction

NOW_MS = parse_utc("2024-08-09T00:00:00Z")  # a Friday, inside the QT calendar
# These cases test the WALCL and credit rules: the data decides QT, not the official dates
# (tests/macro/test_decision_table.py covers the dates, the TGA and repo stress).
SETTINGS = MacroSettings(qt_dates_decide=False)


def walcl(avg_change_musd: float | None, day: str = "2024-08-07") -> WalclReading:
    return WalclReading("WALCL", day, parse_utc(day), 7_000_000.0, "hand-made",
                        change_musd=avg_change_musd, avg_change_musd=avg_change_musd)


def trend(series: str, value: float, sma_slow: float, slope: float,
          day: str = "2024-08-08") -> TrendReading:
    return TrendReading(series, day, parse_utc(day), value, "hand-made", sma_fast=value,
                        sma_slow=sma_slow, sma_fast_change=slope, value_change=slope)


HYG_DOWN = trend("HYG", 70.0, 72.0, -0.5)
HYG_UP = trend("HYG", 74.0, 72.0, +0.5)
OAS_CALM = trend("BAMLH0A0HYM2", 3.0, 3.2, -0.05)
OAS_WORSE = trend("BAMLH0A0HYM2", 4.0, 3.2, +0.1)


QT_ACTIVE = walcl(-60_000.0)


def snapshot(w=QT_ACTIVE, hyg=HYG_UP, oas=OAS_CALM, now_ms=NOW_MS) -> MacroSnapshot:
    return MacroSnapshot(now_ms, w, hyg, oas)


@pytest.mark.parametrize(("avg", "state"), [(-25_001.0, "active"), (-25_000.0, "neutral"),
                                            (0.0, "neutral"), (25_000.0, "neutral"),
                                            (25_001.0, "easing"), (None, None)])
def test_qt_thresholds(avg, state):
    assert qt_state(walcl(avg), SETTINGS) == state


def test_trend_rules():
    assert hyg_trend(HYG_DOWN) == "down"
    assert hyg_trend(HYG_UP) == "up"
    assert hyg_trend(trend("HYG", 70.0, 72.0, +0.5)) == "flat"  # below SMA50, SMA20 rising
    assert oas_trend(OAS_WORSE) == "worsening"
    assert oas_trend(OAS_CALM) == "improving"


@pytest.mark.parametrize(
    ("avg", "hyg", "action", "factor"),
    [(-60_000.0, HYG_DOWN, GateAction.BLOCK, 0.0),
     (-60_000.0, HYG_UP, GateAction.REDUCE, 0.5),
     (0.0, HYG_DOWN, GateAction.REDUCE, 0.5),
     (60_000.0, HYG_UP, GateAction.ALLOW, 1.0)],
)
def test_decision_table(avg, hyg, action, factor):
    decision = evaluate(snapshot(w=walcl(avg), hyg=hyg), SETTINGS)
    assert (decision.action, decision.size_factor) == (action, factor)
    assert decision.reasons[0].startswith(action.value)


def test_reduce_factor_comes_from_config():
    decision = evaluate(snapshot(), MacroSettings(reduce_size_factor=0.25,
                                                  qt_dates_decide=False))
    assert decision.size_factor == 0.25


def test_stale_walcl_blocks_even_when_everything_else_allows():
    old = walcl(60_000.0, day="2024-07-24")  # 16 days before NOW
    decision = evaluate(snapshot(w=old), SETTINGS)
    assert decision.action is GateAction.BLOCK
    assert decision.reasons[0].startswith(STALE)
    assert "WALCL last observation 2024-07-24" in decision.reasons[0]


def test_missing_walcl_blocks():
    decision = evaluate(snapshot(w=None), SETTINGS)
    assert decision.action is GateAction.BLOCK and STALE in decision.reasons[0]


def test_stale_hyg_hands_over_to_the_spread_and_says_so():
    old_hyg = trend("HYG", 74.0, 72.0, +0.5, day="2024-07-31")  # 7 trading days before NOW
    decision = evaluate(snapshot(w=walcl(60_000.0), hyg=old_hyg, oas=OAS_WORSE), SETTINGS)
    assert decision.inputs["credit_source"] == "BAMLH0A0HYM2"
    assert decision.action is GateAction.REDUCE  # spread worsening decides, not HYG's "up"
    assert any("stands in for HYG" in reason for reason in decision.reasons)


def test_missing_hyg_uses_the_spread():
    decision = evaluate(snapshot(w=walcl(60_000.0), hyg=None, oas=OAS_CALM), SETTINGS)
    assert decision.action is GateAction.ALLOW
    assert decision.inputs["hyg_trend"] == "up"  # the spread's mirror: improving
    assert any("stands in for HYG" in reason for reason in decision.reasons)


def test_no_fresh_credit_at_all_blocks():
    old_hyg = trend("HYG", 74.0, 72.0, +0.5, day="2024-07-31")
    old_oas = trend("BAMLH0A0HYM2", 3.0, 3.2, -0.05, day="2024-07-30")
    decision = evaluate(snapshot(w=walcl(60_000.0), hyg=old_hyg, oas=old_oas), SETTINGS)
    assert decision.action is GateAction.BLOCK
    assert decision.reasons[0].startswith(STALE)
    assert "HYG" in decision.reasons[0] and "BAMLH0A0HYM2" in decision.reasons[0]


def test_hyg_needs_enough_history_for_its_sma():
    young = TrendReading("HYG", "2024-08-08", NOW_MS, 70.0, "hand-made", None, None, None, None)
    decision = evaluate(snapshot(w=walcl(60_000.0), hyg=young, oas=None), SETTINGS)
    assert decision.action is GateAction.BLOCK
    assert "history too short" in decision.reasons[0]


def test_every_decision_carries_its_inputs():
    decision = evaluate(snapshot(), SETTINGS)
    for key in ("walcl", "hyg", "oas"):
        assert {"value", "observation_date", "published_utc"} <= decision.inputs[key].keys()
    assert decision.inputs["walcl"]["age_days"] == 2.0
    # NOW is still Thursday 2024-08-08 evening in New York: zero trading days old.
    assert decision.inputs["hyg"]["age_trading_days"] == 0
