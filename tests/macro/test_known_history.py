"""The gate reproduces known macro history from the bundled real data (STRATEGY.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from cryptobot.clock import datetime_to_ms
from cryptobot.config import MacroSettings
from cryptobot.macro.rules import evaluate, hyg_trend

SETTINGS = MacroSettings()


def _fridays(start: str, end: str) -> list[int]:
    """Each Friday 00:00 UTC in [start, end]: the Thursday WALCL release is public by then."""
    day = datetime.fromisoformat(start).replace(tzinfo=UTC)
    day += timedelta(days=(4 - day.weekday()) % 7)
    last = datetime.fromisoformat(end).replace(tzinfo=UTC)
    moments = []
    while day <= last:
        moments.append(datetime_to_ms(day))
        day += timedelta(days=7)
    return moments


def _weekly(history, start: str, end: str):
    return [evaluate(history.snapshot_at(ms), SETTINGS) for ms in _fridays(start, end)]


def _disagrees(decision) -> bool:
    return any(reason.startswith("QT calendar") for reason in decision.reasons)


def test_qt_active_through_2023_and_2024_except_the_spring_2023_banking_crisis(bundled_history):
    decisions = _weekly(bundled_history, "2023-01-01", "2024-12-31")
    not_active = [d for d in decisions if d.inputs["qt_state"] != "active"]
    assert len(decisions) == 104
    # The data's own story: the March 2023 bank-rescue facilities grew the balance sheet.
    assert not_active, "the spring-2023 balance-sheet growth should show"
    spring = (datetime_to_ms(datetime(2023, 3, 1, tzinfo=UTC)),
              datetime_to_ms(datetime(2023, 7, 31, tzinfo=UTC)))
    for decision in not_active:
        assert spring[0] <= decision.ts_ms <= spring[1]
        assert decision.inputs["qt_calendar"] == "active"
        assert _disagrees(decision), decision.reasons
    for decision in decisions:
        if decision.inputs["qt_state"] == "active":
            assert not _disagrees(decision)


def test_after_qt_ended_the_data_lags_the_calendar_and_the_official_end_decides(
        bundled_history):
    # Issue 17 changed this rule: the data's lagging "active" used to count (REDUCE or BLOCK);
    # now the official end of QT (2025-12-01) decides, and the reasons say so.
    december = _weekly(bundled_history, "2025-12-02", "2026-01-31")
    lagging = [d for d in december if d.inputs["qt_state"] == "active"]
    assert lagging, "WALCL's 13-week change still shows QT for some weeks after 2025-12-01"
    for decision in lagging:
        assert decision.inputs["qt_calendar"] == "not active"
        assert decision.inputs["qt_active"] is False
        assert decision.inputs["qt_decided_by"] == "official dates"
        assert _disagrees(decision)
        assert "QT not active: ended 2025-12-01 (official date)" in decision.reasons[0]
        assert "QT active" not in decision.inputs["drains"]


def test_neutral_or_easing_from_february_2026(bundled_history):
    decisions = _weekly(bundled_history, "2026-02-01", "2026-08-07")
    assert len(decisions) >= 26
    assert {d.inputs["qt_state"] for d in decisions} <= {"neutral", "easing"}


def test_hyg_down_on_about_153_of_the_251_trading_days_of_2022(bundled_history):
    table = bundled_history.hyg
    in_2022 = np.flatnonzero((table.obs.dates >= np.datetime64("2022-01-01"))
                             & (table.obs.dates <= np.datetime64("2022-12-31")))
    trends = []
    for index in in_2022:
        # The decision made the moment that day's close became usable (16:15 New York).
        snapshot = bundled_history.snapshot_at(int(table.published_ms[index]))
        assert snapshot.hyg.observation_date == str(table.obs.dates[index])
        trends.append(hyg_trend(snapshot.hyg))
    assert len(trends) == 251
    assert abs(trends.count("down") - 153) <= 5


def test_spread_is_reported_beside_hyg_every_day(bundled_history):
    for ms in _fridays("2024-01-01", "2024-12-31"):
        decision = evaluate(bundled_history.snapshot_at(ms), SETTINGS)
        assert decision.inputs["credit_source"] == "HYG"
        assert decision.inputs["oas"]["trend"] in ("worsening", "improving", "flat")
        assert any("high-yield spread" in reason for reason in decision.reasons)
