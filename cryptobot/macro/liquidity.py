"""The seed's three liquidity points, each judged from what was published by then.

1. The Fed: QT from WALCL's averaged 13-week change, and from the official runoff dates
   (`macro.qt_periods`); where they disagree the official dates decide (`qt_dates_decide`).
2. The Treasury: the TGA's (WTREGEN) change over `tga_change_weeks`: absorbing, neutral or
   releasing.
3. Funding: repo stress, SOFR minus IORB at least `repo_stress_bps` above the median of its
   previous `repo_range_days` values; the reverse repo (RRPONTSYD) is reported beside it.

WALCL is a core input (too old: "stale macro data", BLOCK); the TGA and repo stress are
optional: too old or missing, they are "unused" and the gate decides without them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cryptobot.clock import iso_utc
from cryptobot.config import MacroSettings
from cryptobot.macro.calendars import FED
from cryptobot.macro.findings import STALE_STATE, UNUSED, Findings
from cryptobot.macro.publication import ny_date, trading_days_between
from cryptobot.macro.snapshot import ChangeReading, MacroSnapshot, WalclReading


def qt_state(walcl: WalclReading, settings: MacroSettings) -> str | None:
    """active, easing or neutral from the averaged 13-week change; None without the history."""
    if walcl.avg_change_musd is None:
        return None
    if walcl.avg_change_musd < -settings.qt_threshold_musd:
        return "active"
    if walcl.avg_change_musd > settings.qt_threshold_musd:
        return "easing"
    return "neutral"


def official_qt(now_ms: int, settings: MacroSettings) -> tuple[bool, str]:
    """Whether an official runoff period holds the New York date of `now_ms`, and a phrase
    that names the period (or the end of the last one)."""
    return _official_qt(ny_date(now_ms), settings.qt_periods)


@lru_cache(maxsize=256)
def _official_qt(today: np.datetime64, periods: tuple[tuple[str, str], ...]) -> tuple[bool, str]:
    ended = None
    for start, end in periods:
        if np.datetime64(start) <= today < np.datetime64(end):
            return True, f"running since {start} (official dates)"
        if np.datetime64(end) <= today:
            ended = end
    return False, (f"ended {ended} (official date)" if ended else "no official period")


def judge_qt(walcl: WalclReading | None, settings: MacroSettings, found: Findings) -> bool:
    """Whether QT is active for the decision; records the WALCL state and who decided."""
    dates_active, dates_phrase = official_qt(found.now_ms, settings)
    calendar = "active" if dates_active else "not active"
    data_state = _judge_walcl(walcl, settings, found)
    data_active = data_state == "active"
    found.inputs["qt_state"] = data_state or "unknown"
    found.inputs["qt_calendar"] = calendar
    found.inputs["qt_official_dates"] = {"periods": [list(p) for p in settings.qt_periods],
                                         "active": dates_active, "detail": dates_phrase}
    data_known = data_state not in (None, STALE_STATE)
    dates_decide = bool(settings.qt_periods) and (settings.qt_dates_decide or not data_known)
    active = dates_active if dates_decide else data_active
    decided_by = "official dates" if dates_decide else "WALCL data"
    if data_known and settings.qt_periods:
        if data_active == dates_active:
            decided_by = "official dates and WALCL data (they agree)"
        else:
            found.reasons.append(
                f"QT calendar ({_periods_text(settings)}) says QT {calendar} but the WALCL "
                f"data says {data_state}: the {decided_by} decide"
            )
    found.inputs.update(qt_active=active, qt_decided_by=decided_by)
    found.inputs["qt_phrase"] = (f"QT {'active' if active else 'not active'}: "
                                 + (dates_phrase if dates_decide else f"WALCL {data_state}"))
    return active


def _periods_text(settings: MacroSettings) -> str:
    return ", ".join(f"{start} to {end}" for start, end in settings.qt_periods)


def _judge_walcl(walcl: WalclReading | None, settings: MacroSettings,
                 found: Findings) -> str | None:
    if walcl is None:
        found.stale.append(f"no WALCL observation published by {iso_utc(found.now_ms)}")
        return None
    age = found.age_days(walcl.observation_date)
    found.inputs["walcl"] = {**walcl.describe(), "unit": "millions USD",
                             "change_13w_musd": walcl.change_musd,
                             "avg_change_13w_musd": walcl.avg_change_musd, "age_days": age}
    is_stale = age > settings.walcl_max_age_days
    if is_stale:
        found.stale.append(f"WALCL last observation {walcl.observation_date} is {age:.1f} days "
                           f"old (max {settings.walcl_max_age_days:g})")
    state = qt_state(walcl, settings)
    if state is None:
        found.stale.append(f"WALCL history before {walcl.observation_date} too short for the "
                           f"{settings.qt_average_weeks}-week average of the "
                           f"{settings.qt_change_weeks}-week change")
        return None
    limit_busd = settings.qt_threshold_musd / 1000
    # A stale state is the last one known, not the current one: say so, and report "stale".
    found.reasons.append(
        f"QT {state}{' (stale, last known)' if is_stale else ''}: WALCL "
        f"{settings.qt_average_weeks}-week average "
        f"{settings.qt_change_weeks}-week change {walcl.avg_change_musd / 1000:+.1f}B USD "
        f"(thresholds -{limit_busd:g}B/+{limit_busd:g}B), last observation "
        f"{walcl.observation_date} published {iso_utc(walcl.published_ms)}"
    )
    return STALE_STATE if is_stale else state


def tga_state(tga: ChangeReading, settings: MacroSettings) -> str | None:
    """absorbing (the Treasury pulls cash in), releasing or neutral; None without history."""
    if tga.change is None:
        return None
    if tga.change > settings.tga_threshold_musd:
        return "absorbing"
    if tga.change < -settings.tga_threshold_musd:
        return "releasing"
    return "neutral"


def judge_tga(snapshot: MacroSnapshot, settings: MacroSettings, loaded: bool,
              found: Findings) -> str:
    """absorbing, neutral, releasing, or "unused" (named in the reasons)."""
    tga = snapshot.tga
    weeks = settings.tga_change_weeks
    if tga is None:
        found.leave_out("TGA", "WTREGEN not loaded (macro.funding_series)" if not loaded
                        else f"no WTREGEN observation published by {iso_utc(found.now_ms)}")
        return UNUSED
    age = found.age_days(tga.observation_date)
    state = tga_state(tga, settings)
    found.inputs["tga"] = {**tga.describe(), "unit": "millions USD",
                           "change_weeks": weeks, "change_musd": tga.change, "age_days": age,
                           "state": state}
    if age > settings.tga_max_age_days:
        found.inputs["tga"].update(state=UNUSED, last_state=state)
        found.leave_out("TGA", f"WTREGEN last observation {tga.observation_date} is {age:.1f} "
                        f"days old (max {settings.tga_max_age_days:g})")
        return UNUSED
    if state is None:
        found.leave_out("TGA", f"WTREGEN history before {tga.observation_date} too short for "
                        f"the {weeks}-week change")
        return UNUSED
    limit_busd = settings.tga_threshold_musd / 1000
    found.reasons.append(
        f"TGA {state}: WTREGEN {tga.value / 1e6:.3f}T USD, {weeks}-week change "
        f"{tga.change / 1000:+.1f}B (thresholds -{limit_busd:g}B/+{limit_busd:g}B), "
        f"observation {tga.observation_date} published {iso_utc(tga.published_ms)}"
    )
    return state


def judge_repo(snapshot: MacroSnapshot, settings: MacroSettings, loaded: bool,
               found: Findings) -> bool | None:
    """Whether repo stress is on; None when the input is unused (named in the reasons)."""
    repo = snapshot.repo
    if repo is None:
        found.leave_out("repo stress", "SOFR or IORB not loaded (macro.funding_series)"
                        if not loaded else "no SOFR and IORB of one date published by "
                        f"{iso_utc(found.now_ms)}")
        return None
    age = trading_days_between(repo.observation_date, found.now_ms, FED)
    found.inputs["repo"] = {
        "spread_bps": repo.value, "observation_date": repo.observation_date,
        "published_utc": iso_utc(repo.published_ms), "range_median_bps": repo.range_median_bps,
        "age_business_days": age, "sofr": repo.sofr.describe(), "iorb": repo.iorb.describe(),
        "stress": None}
    if age > settings.repo_max_age_days:
        found.leave_out("repo stress", f"SOFR-IORB last observation {repo.observation_date} is "
                        f"{age} business days old (max {settings.repo_max_age_days})")
        return None
    if repo.range_median_bps is None:
        found.leave_out("repo stress", f"SOFR-IORB history before {repo.observation_date} "
                        f"shorter than macro.repo_range_days = {settings.repo_range_days}")
        return None
    excess_bps = repo.value - repo.range_median_bps
    stress = excess_bps >= settings.repo_stress_bps
    found.inputs["repo"].update(stress=stress, excess_bps=excess_bps,
                                stress_at_bps=settings.repo_stress_bps,
                                range_days=settings.repo_range_days)
    found.reasons.append(
        f"repo {'stress on' if stress else 'calm'}: SOFR {repo.sofr.value:.2f}% minus IORB "
        f"{repo.iorb.value:.2f}% = {repo.value:+.0f} bps on {repo.observation_date} "
        f"(published {iso_utc(repo.published_ms)}) vs the median {repo.range_median_bps:+.1f} "
        f"bps of the previous {settings.repo_range_days} days (stress at "
        f"+{settings.repo_stress_bps:g} bps above it)"
    )
    return stress


def report_rrp(rrp: ChangeReading | None, settings: MacroSettings, found: Findings) -> None:
    """The reverse repo's drain over the repo range: context for repo stress, never decisive."""
    if rrp is None:
        return
    days = settings.repo_range_days
    found.inputs["rrp"] = {**rrp.describe(), "unit": "billions USD", "change_days": days,
                           "change_busd": rrp.change,
                           "age_days": found.age_days(rrp.observation_date)}
    change = "n/a" if rrp.change is None else f"{rrp.change:+,.1f}B"
    found.reasons.append(f"reverse repo (RRPONTSYD, context only) {rrp.value:,.1f}B USD on "
                         f"{rrp.observation_date}, {change} over {days} days")
