"""Credit, the seed's "credit first": HYG's trend and whether it holds its recent low.

The high-yield spread (BAMLH0A0HYM2) stands in when HYG is missing or stale, with the mirror
rules (a spread rising is credit worsening; a new high of the spread is a new low of credit),
and is always reported beside HYG. With neither fresh, credit is "stale macro data" (BLOCK).
"""

from __future__ import annotations

from typing import Any

from cryptobot.config import MacroSettings
from cryptobot.macro.calendars import MARKETS
from cryptobot.macro.findings import STALE_STATE, Findings
from cryptobot.macro.publication import trading_days_between
from cryptobot.macro.snapshot import MacroSnapshot, TrendReading


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


def holds_low(reading: TrendReading, is_spread: bool) -> bool | None:
    """HYG at or above the lowest close of the rows before (a spread at or under its highest):
    True; a new low (a new high of the spread): False; None without that history."""
    if is_spread:
        return None if reading.prior_high is None else reading.value <= reading.prior_high
    return None if reading.prior_low is None else reading.value >= reading.prior_low


def judge_credit(snapshot: MacroSnapshot, settings: MacroSettings,
                 found: Findings) -> tuple[bool, str | None]:
    """Whether credit is worsening, and the trend reported as hyg_trend (up/flat/down).
    Sets inputs["credit_holding"] from the same source."""
    found.inputs["credit_holding"] = None
    hyg_problem = oas_problem = None
    trend = oas_state = None
    if snapshot.hyg is None:
        hyg_problem = "no HYG close published yet" if not snapshot.notes else "HYG not loaded"
    else:
        trend, hyg_problem = _describe_trend(snapshot.hyg, hyg_trend(snapshot.hyg), settings,
                                             found, "hyg")
    if snapshot.oas is None:
        oas_problem = "no high-yield spread published yet"
    else:
        oas_state, oas_problem = _describe_trend(snapshot.oas, oas_trend(snapshot.oas),
                                                 settings, found, "oas")
        found.reasons.append(_spread_sentence(snapshot.oas, oas_state, oas_problem, settings))
    if hyg_problem is None:
        hyg = snapshot.hyg
        assert hyg is not None and trend is not None
        found.inputs.update(credit_source="HYG", credit_worsening=trend == "down",
                            credit_holding=holds_low(hyg, is_spread=False),
                            credit_low=_against_extreme(hyg, False, settings))
        found.reasons.append(
            f"HYG trend {trend}: close {hyg.value:.2f} on {hyg.observation_date} vs "
            f"SMA{settings.hyg_sma_slow} {hyg.sma_slow:.2f}, SMA{settings.hyg_sma_fast} "
            f"{hyg.sma_fast_change:+.3f} over {settings.hyg_slope_days} trading days; "
            + _low_phrase(hyg.prior_low, found.inputs["credit_holding"], "low", settings)
        )
        return trend == "down", trend
    if oas_problem is None:
        oas = snapshot.oas
        assert oas is not None
        found.inputs.update(credit_source=oas.series_id,
                            credit_worsening=oas_state == "worsening",
                            credit_holding=holds_low(oas, is_spread=True),
                            credit_low=_against_extreme(oas, True, settings))
        found.reasons.append(
            f"{hyg_problem}: the high-yield spread stands in for HYG; "
            + _low_phrase(oas.prior_high, found.inputs["credit_holding"], "high", settings))
        mirrored = {"worsening": "down", "improving": "up", "flat": "flat"}[oas_state or "flat"]
        return oas_state == "worsening", mirrored
    found.inputs["credit_source"] = None
    found.stale.append(f"{hyg_problem}; {oas_problem}")
    return False, trend


def _against_extreme(reading: TrendReading, is_spread: bool,
                     settings: MacroSettings) -> dict[str, Any]:
    """What "credit holding" measured: HYG's close against the lowest close of the days before
    (`margin_pct` above it: >= 0 holds), or the spread against its highest (the mirror: the
    margin is how far under it, in % of it)."""
    extreme = reading.prior_high if is_spread else reading.prior_low
    margin = None
    if extreme:
        margin = (1 - reading.value / extreme if is_spread else reading.value / extreme - 1) * 100
    return {"series": reading.series_id, "value": reading.value,
            "observation_date": reading.observation_date, "extreme": extreme,
            "kind": "high" if is_spread else "low", "days": settings.credit_low_days,
            "margin_pct": margin}


def _low_phrase(extreme: float | None, holding: bool | None, kind: str,
                settings: MacroSettings) -> str:
    days = settings.credit_low_days
    if holding is None:
        return f"its {days}-day {kind} unknown (history too short)"
    verdict = "holding" if holding else f"a new {days}-day {kind}"
    return f"{verdict} (the previous {days} trading days' {kind} {extreme:.2f})"


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


def _describe_trend(reading: TrendReading, trend: str | None, settings: MacroSettings,
                    found: Findings, key: str) -> tuple[str | None, str | None]:
    age = trading_days_between(reading.observation_date, found.now_ms, MARKETS)
    item: dict[str, Any] = {
        **reading.describe(), "sma_fast": reading.sma_fast, "sma_slow": reading.sma_slow,
        "sma_fast_change": reading.sma_fast_change, "value_change": reading.value_change,
        "prior_low": reading.prior_low, "prior_high": reading.prior_high,
        "age_trading_days": age, "trend": trend}
    found.inputs[key] = item
    if age > settings.credit_max_age_trading_days:
        # The trend of old data is not today's trend: report it as stale, keep the last one.
        item.update(trend=STALE_STATE, last_trend=trend)
        return STALE_STATE, (f"{reading.series_id} last observation {reading.observation_date} "
                             f"is {age} trading days old "
                             f"(max {settings.credit_max_age_trading_days})")
    if trend is None:
        return None, f"{reading.series_id} history too short for SMA{settings.hyg_sma_slow}"
    return trend, None
