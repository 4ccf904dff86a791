"""The decision table, one row at a time, on small SYNTHETIC scripted histories.

Each case writes a folder of scripted series (FRED's CSV layout, a HYG file with date and
close) and loads it through the real loader, so publication times, derived columns and the
rules are the ones the engine uses. The values are made up (straight lines), never market data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryptobot.clock import LiveClock, parse_utc
from cryptobot.config import MacroSettings
from cryptobot.macro.loader import load_history
from cryptobot.macro.rules import evaluate
from cryptobot.model import GateAction

ASOF_MS = parse_utc("2024-07-03T00:00:00Z")  # Wednesday: the 2024-06-26 H.4.1 is public
FIRST, LAST = np.datetime64("2023-07-03"), np.datetime64("2024-07-02")


def _days(weekly: bool, last: np.datetime64 = LAST) -> np.ndarray:
    days = np.arange(FIRST, last + 1)
    if weekly:
        return days[(days.astype("datetime64[D]").view("int64") - 4) % 7 == 2]  # Wednesdays
    return days[np.is_busday(days)]


def _line(days: np.ndarray, start: float, per_row: float) -> np.ndarray:
    return start + per_row * np.arange(len(days))


def _write(folder: Path, series: str, days: np.ndarray, values: np.ndarray,
           header: str | None = None) -> None:
    rows = "".join(f"{day},{value!r}\n" for day, value in zip(days, values.tolist(),
                                                                 strict=True))
    (folder / f"{series}.csv").write_text(f"{header or f'observation_date,{series}'}\n{rows}")


def scripted(folder: Path, *, qt: bool, credit_down: bool, tga: str = "neutral",
             repo_stress: bool = False, tga_last: np.datetime64 = LAST) -> MacroSettings:
    """A SYNTHETIC history whose last published values put each input in the asked state."""
    weekly, daily = _days(True), _days(False)
    _write(folder, "WALCL", weekly, _line(weekly, 7.5e6, -20_000.0 if qt else 0.0))
    hyg_step = -0.05 if credit_down else 0.05
    _write(folder, "HYG", daily, _line(daily, 75.0, hyg_step), header="date,close")
    _write(folder, "BAMLH0A0HYM2", daily, _line(daily, 3.5, -hyg_step / 10))
    tga_days = _days(True, tga_last)
    per_week = {"absorbing": 50_000.0, "releasing": -50_000.0, "neutral": 0.0}[tga]
    _write(folder, "WTREGEN", tga_days, _line(tga_days, 700_000.0, per_week))
    sofr = np.full(len(daily), 5.30)
    if repo_stress:
        sofr[-3:] = 5.45  # the last published SOFR (2024-07-01) 15 bps over IORB
    _write(folder, "SOFR", daily, sofr)
    _write(folder, "IORB", daily, np.full(len(daily), 5.40))
    _write(folder, "RRPONTSYD", daily, _line(daily, 900.0, -2.0))
    return MacroSettings(snapshot_dir=str(folder), hyg_csv=str(folder / "HYG.csv"),
                         qt_periods=())  # no official dates: the data decides QT here


def decide(settings: MacroSettings):
    return evaluate(load_history(settings, LiveClock()).snapshot_at(ASOF_MS), settings)


@pytest.mark.parametrize(
    ("case", "action", "drains"),
    [
        (dict(qt=True, credit_down=True), "BLOCK", ["QT active"]),
        (dict(qt=False, credit_down=True, tga="absorbing"), "BLOCK", ["TGA absorbing"]),
        (dict(qt=False, credit_down=True, repo_stress=True), "BLOCK", ["repo stress on"]),
        (dict(qt=True, credit_down=False, tga="absorbing", repo_stress=True), "BLOCK",
         ["QT active", "TGA absorbing", "repo stress on"]),
        (dict(qt=True, credit_down=False, tga="absorbing"), "REDUCE",
         ["QT active", "TGA absorbing"]),
        (dict(qt=False, credit_down=False, repo_stress=True), "REDUCE", ["repo stress on"]),
        (dict(qt=False, credit_down=True), "REDUCE", []),
        (dict(qt=True, credit_down=False, tga="releasing"), "REDUCE", ["QT active"]),
        (dict(qt=False, credit_down=False, tga="releasing"), "ALLOW", []),
        (dict(qt=False, credit_down=False), "ALLOW", []),
    ],
    ids=["synthetic-qt+credit", "synthetic-tga+credit", "synthetic-repo+credit",
         "synthetic-all-three-drains", "synthetic-two-drains", "synthetic-repo-only",
         "synthetic-credit-only", "synthetic-tga-releasing-removes-no-drain",
         "synthetic-tga-releasing-alone", "synthetic-nothing"],
)
def test_decision_table_row_on_a_synthetic_history(tmp_path, case, action, drains):
    decision = decide(scripted(tmp_path, **case))
    assert decision.action.value == action, decision.reasons
    assert decision.inputs["drains"] == drains
    first = decision.reasons[0]
    assert first.startswith(action)
    # The first reason names every input as the decision used it.
    assert ("QT active" if case["qt"] else "QT not active") in first
    assert f"TGA {case.get('tga', 'neutral')}" in first
    assert ("repo stress on" if case.get("repo_stress") else "repo calm") in first
    assert ("credit worsening" if case["credit_down"] else "credit not worsening") in first
    assert decision.inputs["repo_calm"] is (not case.get("repo_stress", False))
    # A straight falling HYG makes a new low every day; a rising one holds its low.
    assert decision.inputs["credit_holding"] is (not case["credit_down"])


def test_synthetic_stale_tga_and_missing_repo_are_unused_and_never_block(tmp_path):
    settings = scripted(tmp_path, qt=False, credit_down=False, tga="absorbing",
                        tga_last=np.datetime64("2024-05-15"))
    (tmp_path / "SOFR.csv").unlink()
    settings = settings.model_copy(update={"funding_series": ("WTREGEN", "IORB", "RRPONTSYD")})
    decision = decide(settings)
    assert decision.action is GateAction.ALLOW
    assert decision.inputs["unused"] == ["TGA", "repo stress"]
    assert (decision.inputs["tga_state"], decision.inputs["repo_stress"]) == ("unused", "unused")
    assert decision.inputs["repo_calm"] is None
    assert decision.inputs["tga"]["last_state"] == "absorbing"  # old, so not used
    assert "TGA unused: WTREGEN last observation 2024-05-15 is 49.0 days old (max 14)" \
        in decision.reasons
    assert "repo stress unused: SOFR or IORB not loaded (macro.funding_series)" \
        in decision.reasons


def test_synthetic_stale_repo_is_unused(tmp_path):
    settings = scripted(tmp_path, qt=False, credit_down=False, repo_stress=True)
    decision = evaluate(load_history(settings, LiveClock()).snapshot_at(
        parse_utc("2024-07-12T00:00:00Z")), settings.model_copy(update={
            "walcl_max_age_days": 30, "credit_max_age_trading_days": 10}))
    assert decision.inputs["repo_stress"] == "unused"
    assert any(r.startswith("repo stress unused: SOFR-IORB last observation 2024-07-02 is 6 "
                            "business days old") for r in decision.reasons)
    assert decision.action is GateAction.ALLOW


@pytest.mark.parametrize(("dates_decide", "active", "decided_by"),
                         [(True, True, "official dates"), (False, False, "WALCL data")])
def test_synthetic_official_dates_decide_against_flat_data(tmp_path, dates_decide, active,
                                                           decided_by):
    settings = scripted(tmp_path, qt=False, credit_down=False).model_copy(update={
        "qt_periods": (("2024-06-01", "2025-01-01"),), "qt_dates_decide": dates_decide})
    decision = decide(settings)
    assert decision.inputs["qt_state"] == "neutral"  # the data
    assert (decision.inputs["qt_active"], decision.inputs["qt_decided_by"]) == \
        (active, decided_by)
    assert decision.action.value == ("REDUCE" if active else "ALLOW")
    assert any(r.endswith(f"the WALCL data says neutral: the {decided_by} decide")
               for r in decision.reasons)


def test_synthetic_spread_stands_in_for_credit_holding(tmp_path):
    settings = scripted(tmp_path, qt=False, credit_down=True).model_copy(
        update={"hyg_source": "none"})
    decision = decide(settings)
    assert decision.inputs["credit_source"] == "BAMLH0A0HYM2"
    assert decision.inputs["credit_holding"] is False  # the spread made a new 20-day high


def test_synthetic_repo_spread_waits_for_the_later_of_sofr_and_iorb():
    """A spread row is public only once both of its rates are (here IORB a day late)."""
    from cryptobot.macro.history import SeriesTable, repo_table
    from cryptobot.macro.observations import Observations

    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-06"))
    day_ms = days.astype("datetime64[ms]").astype(np.int64)
    sofr = SeriesTable(Observations("SOFR", days, np.full(5, 5.30), "synthetic"), day_ms + 1)
    iorb = SeriesTable(Observations("IORB", days, np.full(5, 5.40), "synthetic"),
                       day_ms + 86_400_000)
    spread = repo_table(sofr, iorb, range_days=2)
    assert spread.index_at(int(day_ms[2]) + 1) == 1  # 2024-01-03: its SOFR is out, IORB not
    assert spread.index_at(int(day_ms[3])) == 2
    assert spread.obs.values.tolist() == [-10.0] * 5
    assert np.isnan(spread.columns["range_median"][:2]).all()  # only rows before count
    assert spread.columns["range_median"][2] == -10.0
