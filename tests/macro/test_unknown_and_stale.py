"""Before the data there is no state ("unknown", said plainly); after it, old inputs are
"stale", never reported as the current trend; ages carry their units."""

from __future__ import annotations

import json


def test_asof_before_any_data_says_so_and_states_are_unknown(run_cli):
    code, out, _ = run_cli("macro", "--asof", "1990-01-01", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["decision"] == "BLOCK" and report["stale"]
    assert (report["qt_state"], report["hyg_trend"]) == ("unknown", "unknown")
    assert report["reasons"][0].startswith("stale macro data: no macro data before 1997-01-0")
    code, out, _ = run_cli("macro", "--asof", "1990-01-01")
    assert code == 0 and "None" not in out
    assert "QT state: unknown" in out and "HYG trend: unknown" in out


def test_stale_inputs_are_not_reported_as_current(run_cli):
    code, out, _ = run_cli("macro", "--asof", "2027-01-01", "--json")
    report = json.loads(out)
    assert code == 0 and report["decision"] == "BLOCK"
    assert report["hyg_trend"] == "stale" and report["qt_state"] == "stale"
    hyg = report["inputs"]["hyg"]
    assert hyg["trend"] == "stale" and hyg["last_trend"] in ("up", "down", "flat")
    assert any(reason.startswith("QT easing (stale, last known)") for reason in report["reasons"])


def test_fresh_inputs_keep_their_trend(run_cli):
    code, out, _ = run_cli("macro", "--asof", "2024-08-05", "--json")
    report = json.loads(out)
    assert code == 0 and not report["stale"]
    assert report["hyg_trend"] in ("up", "down", "flat")
    assert report["qt_state"] in ("active", "easing", "neutral")


def test_age_column_says_its_unit(run_cli):
    code, out, _ = run_cli("macro", "--asof", "2024-08-05")
    assert code == 0
    walcl = next(line for line in out.splitlines() if "WALCL" in line)
    hyg = next(line for line in out.splitlines() if "HYG close" in line)
    assert " d " in walcl.replace("│", " ") and "trading d" not in walcl
    assert "trading d" in hyg
