"""`cryptobot macro` and `build_gate`, the engine's entry point."""

from __future__ import annotations

import json

from cryptobot.clock import LiveClock, parse_utc
from cryptobot.config import MacroSettings, Settings
from cryptobot.engine.gate import PassThroughGate
from cryptobot.macro import MacroGate, build_gate
from cryptobot.model import GateAction


def test_macro_json_on_the_crash_day(run_cli):
    code, out, err = run_cli("macro", "--asof", "2024-08-05", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["asof"] == "2024-08-05T00:00:00Z"
    assert report["qt_state"] in ("active", "neutral", "easing")
    assert report["hyg_trend"] in ("up", "flat", "down")
    assert report["decision"] in ("ALLOW", "REDUCE", "BLOCK")
    assert report["reasons"] and all(isinstance(r, str) for r in report["reasons"])
    walcl = report["inputs"]["walcl"]
    assert walcl["observation_date"] == "2024-07-31"
    assert walcl["published_utc"] == "2024-08-01T20:30:00Z"
    assert report["inputs"]["hyg"]["observation_date"] == "2024-08-02"
    # Known: QT was running, and HYG had rallied through July 2024 (the crash came after).
    assert (report["qt_state"], report["hyg_trend"], report["decision"]) == \
        ("active", "up", "REDUCE")
    # The table of the decision table: the size factor follows the decision.
    expected = {"ALLOW": 1.0, "REDUCE": 0.5, "BLOCK": 0.0}[report["decision"]]
    assert report["size_factor"] == expected


def test_macro_table(run_cli):
    code, out, _ = run_cli("macro", "--asof", "2023-04-20")
    assert code == 0
    assert "WALCL" in out and "HYG close" in out and "Decision:" in out
    assert "QT calendar" in out  # spring 2023: data easing, calendar active


def test_macro_now_blocks_on_stale_data_and_explains(run_cli):
    code, out, _ = run_cli("macro", "--json")
    assert code == 0
    report = json.loads(out)
    # The bundled snapshot ends mid-2026; long after that, every run is stale by design.
    if parse_utc(report["asof"]) > parse_utc("2026-08-25"):
        assert report["decision"] == "BLOCK" and report["stale"]
        assert report["reasons"][0].startswith("stale macro data")
    code, out, _ = run_cli("macro")
    if report["stale"]:
        assert "does not reach today" in out


def test_asof_after_the_snapshot_blocks_as_stale(run_cli):
    code, out, _ = run_cli("macro", "--asof", "2026-11-02", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["decision"] == "BLOCK" and report["size_factor"] == 0.0
    assert report["reasons"][0].startswith("stale macro data: WALCL last observation 2026-08-05")


def test_bad_asof_is_a_user_error(run_cli):
    code, _, err = run_cli("macro", "--asof", "yesterday")
    assert code == 2
    assert err.startswith("error: --asof")


def test_bad_config_key_is_a_user_error(run_cli, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[macro]\nqt_threshold = 1\n")
    code, _, err = run_cli("macro", "--config", str(path))
    assert code == 2 and "macro.qt_threshold: unknown key" in err


def test_old_qt_calendar_keys_say_where_the_dates_went(run_cli, tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('[macro]\nqt_calendar_start = "2022-06-01"\n')
    code, _, err = run_cli("macro", "--config", str(path))
    assert code == 2
    assert err.startswith(f"error: {path}: macro.qt_calendar_start: the official QT dates "
                          "moved to macro.qt_periods")


def test_bad_qt_periods_are_a_user_error(run_cli, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[macro]\nqt_periods = [["2022-06-01", "2021-01-01"]]\n')
    code, _, err = run_cli("macro", "--config", str(path))
    assert code == 2 and "macro: qt_periods: 2021-01-01 must be after 2022-06-01" in err


def test_unknown_series_through_the_cli(run_cli, tmp_path):
    path = tmp_path / "odd.toml"
    path.write_text('[macro]\nfunding_series = ["NOSUCHSERIES"]\n')
    code, _, err = run_cli("macro", "--asof", "2024-08-05", "--config", str(path))
    assert code == 2 and "unknown series NOSUCHSERIES" in err


def test_build_gate_disabled_is_pass_through():
    gate = build_gate(Settings(macro=MacroSettings(enabled=False)), LiveClock())
    assert isinstance(gate, PassThroughGate)
    assert gate.decide(0).action is GateAction.ALLOW


def test_build_gate_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative data paths fall back to the repository's data/
    gate = build_gate(Settings(), LiveClock())
    assert isinstance(gate, MacroGate)
    now_ms = parse_utc("2024-08-05T06:00:00Z")
    decision = gate.decide(now_ms)
    assert decision.ts_ms == now_ms
    assert decision.action in (GateAction.ALLOW, GateAction.REDUCE, GateAction.BLOCK)
    assert decision.inputs["walcl"]["observation_date"] == "2024-07-31"
