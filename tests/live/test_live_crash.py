"""A real subprocess SIGKILLed at each step of a trade; a restart leaves the position protected
and the stored state matching the exchange, with no order sent twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.engine.risk import KillSwitch
from tests.live.conftest import VenueClock, live_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = ["before_send:entry", "after_send:entry", "after_fill:entry", "before_send:stop",
         "after_send:stop", "before_send:tp1", "after_send:tp2", "after_fill:tp1",
         "stop_replaced_before_cancel", "none"]


@pytest.mark.parametrize("crash_step", STEPS)
def test_sigkill_at_each_step_then_restart(crash_step, venue, tmp_path, keys):
    settings = live_settings(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.live.crash_trader", venue.base_url,
                           settings.live.state_url, crash_step], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    expected = 0 if crash_step == "none" else -9
    assert proc.returncode == expected, proc.stderr[-2000:]

    broker, report = build_live_broker(settings, keys, VenueClock(venue.state),
                                       KillSwitch(settings.risk.kill_switch_file),
                                       rest_url=venue.base_url, sleep=lambda s: None)
    state = venue.state
    venue_qty = float(state.position("BTCUSDT").qty)
    stored = broker.state.positions()
    assert Counter(o["clientOrderId"] for o in state.orders.values())["sigC-entry"] <= 1
    if venue_qty > 0:
        stops = state.open_algo_orders("BTCUSDT")
        assert sum(float(s["quantity"]) for s in stops) >= venue_qty - 1e-9, report
        assert all(float(s["triggerPrice"]) < float(state.prices["BTCUSDT"]) for s in stops)
        # the planned stop (59000) or break-even (60000), never the 2% fallback (58800)
        assert {s["triggerPrice"] for s in stops} <= {"59000", "60000"}, stops
        assert [p.qty_base for p in stored] == [pytest.approx(venue_qty)]
        working = {i.client_id for i in broker.working_orders()}
        assert {s["clientAlgoId"] for s in stops} <= working
    else:
        assert stored == []
    assert report.unknown_positions == []
