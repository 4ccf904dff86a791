"""Issue 17 on the bundled real data: the three liquidity points, point in time, through the
CLI, and the official QT dates deciding where the WALCL data lags them."""

from __future__ import annotations

import json

import pytest

from cryptobot.clock import parse_utc
from cryptobot.config import MacroSettings
from cryptobot.macro.rules import evaluate

SETTINGS = MacroSettings()


def _report(run_cli, asof: str) -> dict:
    code, out, err = run_cli("macro", "--asof", asof, "--json")
    assert code == 0, err
    return json.loads(out)


def test_2022_06_14_is_not_allowed_the_official_start_of_runoff_decides(run_cli):
    report = _report(run_cli, "2022-06-14")
    assert report["decision"] != "ALLOW"
    assert report["qt_state"] == "neutral"  # the 13-week WALCL change still lagged
    assert (report["qt_active"], report["qt_decided_by"]) == (True, "official dates")
    first = report["reasons"][0]
    for named in ("QT active: running since 2022-06-01 (official dates)", "TGA releasing",
                  "repo calm", "credit not worsening (HYG trend flat)"):
        assert named in first
    assert any(r.endswith("the WALCL data says neutral: the official dates decide")
               for r in report["reasons"])
    # HYG's close of 2022-06-13 under every close of the 20 trading days before it.
    closes = _hyg_closes()
    days = sorted(day for day in closes if day < "2022-06-13")[-20:]
    assert closes["2022-06-13"] < min(closes[day] for day in days)
    assert report["credit_holding"] is False


def _hyg_closes() -> dict[str, float]:
    import csv

    from tests.macro.conftest import MACRO_DIR

    with (MACRO_DIR / "HYG_daily_adjusted.csv").open(newline="") as handle:
        return {row["Date"][:10]: float(row["Close"]) for row in csv.DictReader(handle)}


def test_2022_09_30_blocks_qt_running_and_credit_falling(run_cli):
    report = _report(run_cli, "2022-09-30")
    assert (report["decision"], report["size_factor"]) == ("BLOCK", 0.0)
    first = report["reasons"][0]
    assert first.startswith("BLOCK (size x0): credit worsening while liquidity drains")
    for named in ("QT active", "TGA neutral", "repo calm", "credit worsening (HYG trend down)"):
        assert named in first
    assert report["qt_decided_by"] == "official dates and WALCL data (they agree)"


def test_2026_01_15_does_not_block_and_names_the_end_of_qt(run_cli):
    report = _report(run_cli, "2026-01-15")
    assert report["decision"] != "BLOCK" and not report["stale"]
    assert "QT not active: ended 2025-12-01 (official date)" in report["reasons"][0]
    # The bundled TGA ends 2025-11-19: unused, named, and the gate decides without it.
    assert report["tga_state"] == "unused" and report["unused"] == ["TGA"]
    assert any(r.startswith("TGA unused: WTREGEN last observation 2025-11-19 is 57.0 days old")
               for r in report["reasons"])
    assert report["repo_calm"] is True and report["credit_holding"] is True


def test_json_carries_every_input_with_value_observation_and_publication(run_cli):
    report = _report(run_cli, "2024-08-05")
    inputs = report["inputs"]
    items = {"walcl": inputs["walcl"], "hyg": inputs["hyg"], "oas": inputs["oas"],
             "tga": inputs["tga"], "sofr": inputs["repo"]["sofr"],
             "iorb": inputs["repo"]["iorb"], "rrp": inputs["rrp"]}
    for name, item in items.items():
        assert {"value", "observation_date", "published_utc"} <= item.keys(), name
    assert inputs["tga"]["observation_date"] == "2024-07-31"
    assert inputs["tga"]["published_utc"] == "2024-08-01T20:30:00Z"
    repo = inputs["repo"]
    assert repo["spread_bps"] == round((repo["sofr"]["value"] - repo["iorb"]["value"]) * 100, 6)
    assert {"observation_date", "published_utc", "range_median_bps"} <= repo.keys()
    assert isinstance(report["credit_holding"], bool) and isinstance(report["repo_calm"], bool)


def test_terminal_view_shows_the_three_points(run_cli):
    code, out, _ = run_cli("macro", "--asof", "2025-11-03T22:00")
    assert code == 0
    for label in ("WALCL", "HYG close", "TGA WTREGEN", "SOFR (%)", "IORB (%)", "SOFR-IORB",
                  "RRP ($B)", "TGA: absorbing", "repo stress: on"):
        assert label in out, label
    # Late October 2025: runoff, the TGA refilling and SOFR 32 bps over IORB at month-end.
    assert "all three liquidity points drain" in out


def test_tga_invisible_before_its_h41_release(bundled_history):
    # WTREGEN for Wednesday 2024-07-31 comes with the H.4.1: Thursday 16:30 New York (EDT).
    release_ms = parse_utc("2024-08-01T20:30:00Z")
    before = evaluate(bundled_history.snapshot_at(release_ms - 1), SETTINGS)
    at = evaluate(bundled_history.snapshot_at(release_ms), SETTINGS)
    assert before.inputs["tga"]["observation_date"] == "2024-07-24"
    assert at.inputs["tga"]["observation_date"] == "2024-07-31"


@pytest.mark.parametrize("series", ["sofr", "iorb"])
def test_sofr_and_iorb_of_a_friday_are_used_from_monday_1630(bundled_history, series):
    monday_release_ms = parse_utc("2024-08-05T20:30:00Z")
    before = evaluate(bundled_history.snapshot_at(monday_release_ms - 1), SETTINGS)
    at = evaluate(bundled_history.snapshot_at(monday_release_ms), SETTINGS)
    assert before.inputs["repo"][series]["observation_date"] == "2024-08-01"
    assert at.inputs["repo"][series]["observation_date"] == "2024-08-02"
    assert at.inputs["repo"]["published_utc"] == "2024-08-05T20:30:00Z"


def test_repo_stress_is_unused_before_iorb_existed(run_cli):
    # The September 2019 repo spike: IORB starts 2021-07-29 (IOER before it is not bundled).
    report = _report(run_cli, "2019-09-19")
    assert report["repo_stress"] == "unused" and report["repo_calm"] is None
    assert "repo stress unused" in report["reasons"][0]
    assert report["decision"] == "ALLOW"  # QT1 ended 2019-08-01, credit up, TGA neutral
