"""The macro gate: a pure function from a point-in-time snapshot to ALLOW, REDUCE or BLOCK.

QT state comes from WALCL, the credit trend from HYG (the high-yield spread stands in when HYG
is missing or stale, and is always reported beside it). QT active and credit worsening: BLOCK;
exactly one: REDUCE; neither: ALLOW. Missing or stale inputs BLOCK with "stale macro data".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cryptobot.clock import DAY_MS, iso_utc
from cryptobot.config import MacroSettings
from cryptobot.macro.calendars import MARKETS
from cryptobot.macro.history import MacroHistory
from cryptobot.macro.publication import day_start_ms, ny_date, trading_days_between
from cryptobot.macro.snapshot import MacroSnapshot, TrendReading, WalclReading
from cryptobot.model import GateAction, GateDecision

STALE = "stale macro data"
UNKNOWN = "unknown"  # a state or trend without the data to tell it
STALE_STATE = "stale"  # a state or trend from data too old to be current


def qt_state(walcl: WalclReading, settings: MacroSettings) -> str | None:
    """active, easing or neutral from the averaged 13-week change; None without the history."""
    if walcl.avg_change_musd is None:
        return None
    if walcl.avg_change_musd < -settings.qt_threshold_musd:
        return "active"
    if walcl.avg_change_musd > settings.qt_threshold_musd:
        return "easing"
    return "neutral"


def hyg_trend(hyg: TrendReading) -> str | None:
    """down, up or flat (close vs slow SMA and the fast SMA's slope); None without history."""
    if hyg.sma_slow is None or hyg.sma_fast_change is None:
        return None
    if hyg.value < hyg.sma_slow and hyg.sma_fast_change < 0:
        return "down"
    if hyg.value > hyg.sma_slow and hyg.sma_fast_change > 0:
        return "up"
    return "flat"


def oas_trend(oas: TrendReading) -> str | None:
    """worsening, improving or flat: the mirror of the HYG rule for a spread."""
    mirrored = hyg_trend(oas)
    return {"up": "worsening", "down": "improving", "flat": "flat", None: None}[mirrored]


def calendar_qt_active(now_ms: int, settings: MacroSettings) -> bool:
    today = ny_date(now_ms)
    start = np.datetime64(settings.qt_calendar_start, "D")
    end = np.datetime64(settings.qt_calendar_end, "D")
    return bool(start <= today < end)


def evaluate(snapshot: MacroSnapshot, settings: MacroSettings) -> GateDecision:
    now_ms = snapshot.asof_ms
    reasons: list[str] = list(snapshot.notes)
    stale: list[str] = []
    inputs: dict[str, Any] = {"fetch_method": snapshot.fetch_method}

    qt = _judge_walcl(snapshot.walcl, now_ms, settings, reasons, stale, inputs)
    credit_worsening, trend = _judge_credit(snapshot, settings, reasons, stale, inputs)
    inputs["qt_state"], inputs["hyg_trend"] = qt or UNKNOWN, trend or UNKNOWN
    inputs["funding"] = {r.series_id: {**r.describe(), "age_days": _age_days(r.observation_date,
                                                                            now_ms)}
                         for r in snapshot.funding}

    if stale:
        if not (snapshot.walcl or snapshot.hyg or snapshot.oas) and snapshot.first_published_ms:
            first_ms = min(snapshot.first_published_ms.values())
            stale = [f"no macro data before {iso_utc(first_ms)[:10]} (the first publication "
                     "of WALCL, HYG or the high-yield spread)"]
        reasons.insert(0, f"{STALE}: " + "; ".join(stale))
        return GateDecision(now_ms, GateAction.BLOCK, 0.0, tuple(reasons), inputs)
    qt_active = qt == "active"
    if qt_active and credit_worsening:
        action, factor, why = GateAction.BLOCK, 0.0, "QT active and credit worsening"
    elif qt_active or credit_worsening:
        action, factor = GateAction.REDUCE, settings.reduce_size_factor
        why = "QT active, credit not worsening" if qt_active else "credit worsening, QT not active"
    else:
        action, factor, why = GateAction.ALLOW, 1.0, "QT not active and credit not worsening"
    reasons.insert(0, f"{action.value} (size x{factor:g}): {why}")
    return GateDecision(now_ms, action, factor, tuple(reasons), inputs)


def _age_days(observation_date: str, now_ms: int) -> float:
    return round((now_ms - day_start_ms(np.datetime64(observation_date))) / DAY_MS, 2)


def _judge_walcl(walcl: WalclReading | None, now_ms: int, settings: MacroSettings,
                 reasons: list[str], stale: list[str], inputs: dict[str, Any]) -> str | None:
    calendar = "active" if calendar_qt_active(now_ms, settings) else "not active"
    inputs["qt_calendar"] = calendar
    if walcl is None:
        stale.append(f"no WALCL observation published by {iso_utc(now_ms)}")
        return None
    is_stale = False
    age = _age_days(walcl.observation_date, now_ms)
    inputs["walcl"] = {**walcl.describe(), "unit": "millions USD",
                       "change_13w_musd": walcl.change_musd,
                       "avg_change_13w_musd": walcl.avg_change_musd, "age_days": age}
    if age > settings.walcl_max_age_days:
        is_stale = True
        stale.append(f"WALCL last observation {walcl.observation_date} is {age:.1f} days old "
                     f"(max {settings.walcl_max_age_days:g})")
    state = qt_state(walcl, settings)
    if state is None:
        stale.append(f"WALCL history before {walcl.observation_date} too short for the "
                     f"{settings.qt_average_weeks}-week average of the "
                     f"{settings.qt_change_weeks}-week change")
        return None
    limit_busd = settings.qt_threshold_musd / 1000
    # A stale state is the last one known, not the current one: say so, and report "stale".
    reasons.append(
        f"QT {state}{' (stale, last known)' if is_stale else ''}: WALCL "
        f"{settings.qt_average_weeks}-week average "
        f"{settings.qt_change_weeks}-week change {walcl.avg_change_musd / 1000:+.1f}B USD "
        f"(thresholds -{limit_busd:g}B/+{limit_busd:g}B), last observation "
        f"{walcl.observation_date} published {iso_utc(walcl.published_ms)}"
    )
    if (state == "active") != (calendar == "active"):
        reasons.append(
            f"QT calendar ({settings.qt_calendar_start} to {settings.qt_calendar_end}) says "
            f"QT {calendar} but the WALCL data says {state}: the data's state is used"
        )
    return STALE_STATE if is_stale else state


def _judge_credit(snapshot: MacroSnapshot, settings: MacroSettings, reasons: list[str],
                  stale: list[str], inputs: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether credit is worsening, and the trend reported as hyg_trend (up/flat/down)."""
    now_ms = snapshot.asof_ms
    hyg_problem = oas_problem = None
    trend = oas_state = None
    if snapshot.hyg is None:
        hyg_problem = "no HYG close published yet" if not snapshot.notes else "HYG not loaded"
    else:
        trend, hyg_problem = _describe_trend(snapshot.hyg, hyg_trend(snapshot.hyg), now_ms,
                                             settings, inputs, "hyg")
    if snapshot.oas is None:
        oas_problem = "no high-yield spread published yet"
    else:
        oas_state, oas_problem = _describe_trend(snapshot.oas, oas_trend(snapshot.oas), now_ms,
                                                 settings, inputs, "oas")
        reasons.append(_spread_sentence(snapshot.oas, oas_state, oas_problem, settings))
    if hyg_problem is None:
        inputs["credit_source"] = "HYG"
        hyg = snapshot.hyg
        assert hyg is not None and trend is not None
        reasons.append(
            f"HYG trend {trend}: close {hyg.value:.2f} on {hyg.observation_date} vs "
            f"SMA{settings.hyg_sma_slow} {hyg.sma_slow:.2f}, SMA{settings.hyg_sma_fast} "
            f"{hyg.sma_fast_change:+.3f} over {settings.hyg_slope_days} trading days"
        )
        inputs["credit_worsening"] = trend == "down"
        return trend == "down", trend
    if oas_problem is None:
        inputs["credit_source"] = snapshot.oas.series_id if snapshot.oas else None
        reasons.append(f"{hyg_problem}: the high-yield spread stands in for HYG")
        mirrored = {"worsening": "down", "improving": "up", "flat": "flat"}[oas_state or "flat"]
        inputs["credit_worsening"] = oas_state == "worsening"
        return oas_state == "worsening", mirrored
    inputs["credit_source"] = None
    stale.append(f"{hyg_problem}; {oas_problem}")
    return False, trend


def _spread_sentence(oas: TrendReading, state: str | None, problem: str | None,
                     settings: MacroSettings) -> str:
    def signed(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:+.{digits}f}"

    slow = "n/a" if oas.sma_slow is None else f"{oas.sma_slow:.2f}"
    return (
        f"high-yield spread ({oas.series_id}) {state or 'unknown'}: {oas.value:.2f}% on "
        f"{oas.observation_date} ({signed(oas.value_change, 2)} over {settings.hyg_slope_days} "
        f"days) vs SMA{settings.hyg_sma_slow} {slow}, SMA{settings.hyg_sma_fast} "
        f"{signed(oas.sma_fast_change, 3)} over {settings.hyg_slope_days} days"
        + (f" ({problem})" if problem else "")
    )


def _describe_trend(reading: TrendReading, trend: str | None, now_ms: int,
                    settings: MacroSettings, inputs: dict[str, Any],
                    key: str) -> tuple[str | None, str | None]:
    age = trading_days_between(np.datetime64(reading.observation_date), now_ms, MARKETS)
    inputs[key] = {**reading.describe(), "sma_fast": reading.sma_fast,
                   "sma_slow": reading.sma_slow, "sma_fast_change": reading.sma_fast_change,
                   "value_change": reading.value_change, "age_trading_days": age, "trend": trend}
    if age > settings.credit_max_age_trading_days:
        # The trend of old data is not today's trend: report it as stale, keep the last one.
        inputs[key].update(trend=STALE_STATE, last_trend=trend)
        return STALE_STATE, (f"{reading.series_id} last observation {reading.observation_date} "
                             f"is {age} trading days old "
                             f"(max {settings.credit_max_age_trading_days})")
    if trend is None:
        return None, f"{reading.series_id} history too short for SMA{settings.hyg_sma_slow}"
    return trend, None


class MacroGate:
    """The engine's gate: the series are precomputed once; each call is a binary search."""

    def __init__(self, history: MacroHistory, settings: MacroSettings) -> None:
        self.history = history
        self.settings = settings

    def snapshot(self, now_ms: int) -> MacroSnapshot:
        return self.history.snapshot_at(now_ms)

    def decide(self, now_ms: int) -> GateDecision:
        return evaluate(self.history.snapshot_at(now_ms), self.settings)
