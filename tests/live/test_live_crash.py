"""The real live stack SIGKILLed inside a trade, then restarted: issue 14's crash cases.

Each bot is a process of tests/live/fault_segment.py (`run_live_session`: Engine, LiveBroker,
SqlRecorder) trading the bundled crash data's 2024-08-04 trade (spike 17:30, entry 18:15, exit
by 22:00; OI confirmation off: the window's OI is SYNTHETIC) against the fake Binance server in
this process. It kills itself at the named step; the venue's price walks on one candle while it
is down; the next process starts at the candle after and must take the position over: no order
sent twice, the position under a full-quantity stop once its first candle is handled, the
take-profits that had not filled working again, and the store's fills equal to the venue's
trades. The same code as benchmarks/live_faults.py, with one chosen kill each.
"""

from __future__ import annotations

import random

import pytest

from benchmarks.live_fault_episodes import (
    Chunk,
    KillPlan,
    VenueOptions,
    audit,
    crash_candles,
    run_episode,
)
from cryptobot.clock import parse_utc
from cryptobot.store import open_store

START, END = "2024-08-04T16:00:00Z", "2024-08-04T22:00:00Z"
SIGNAL = "BTCUSDT-20240804T1730"  # entered 18:15 with TP1 and TP2
# after_send:tp1: the take-profits' batch answered, TP1's row "open", TP2's still "pending"
STEPS = ["after_fill:entry", "before_send:stop", "after_send:tp1", "after_fill:tp1",
         "stop_replaced_before_cancel"]


@pytest.fixture(scope="module")
def candles():
    return crash_candles()


def run_with_kill(step: str, folder, candles, options: VenueOptions | None = None) -> dict:
    chunk = Chunk(SIGNAL, parse_utc(START), parse_utc(END), 0, 0, ("tp1", "tp2"))
    options = options or VenueOptions(segment_timeout_s=180)
    episode = run_episode(chunk, folder, candles, options, 1, KillPlan.at(step),
                          random.Random(14), downtime_candles=(1, 1))
    try:
        return {**audit(episode), "calls": list(episode.venue.faults.trace or [])}
    finally:
        episode.venue.stop()


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_in_a_trade_then_restart_protects_and_restores_it(step, tmp_path, candles):
    result = run_with_kill(step, tmp_path, candles)
    assert result["errors"] == [], result["errors"]
    [kill] = result["kills"]
    assert kill["step"] == step
    assert kill["position_qty"] > 0  # each of these steps comes with a position open
    [restart] = result["restarts"]
    snap = restart["first_candle"]
    assert restart["finished"], "the restarted bot never handled a candle"
    # it took the position over and did not enter again
    assert restart["took_over"] or snap["qty"] == 0, snap
    assert result["entries_on_venue"] == [f"{SIGNAL}-entry"]
    assert result["duplicates"] == {}, result["duplicates"]
    # protected: a stop for all of it, and the take-profits that had not filled are working
    assert not restart["unprotected_at_first_candle"], snap
    assert restart["to_stop_ms"] is not None
    if step == "after_fill:tp1":
        assert restart["needs_tp"], snap  # TP2 was still to fill
    if restart["needs_tp"]:
        assert restart["tp_working"], snap
    if step == "after_send:tp1":  # TP2's pending row was looked up and found: not re-placed
        placed = [cid for _, method, route, cid, _ in result["calls"] if method == "POST"
                  and route in ("order", "batchOrders")]
        assert f"{SIGNAL}-tp1,{SIGNAL}-tp2" in placed
        assert not [cid for cid in placed if f"{SIGNAL}-tp" in cid and "r" in cid.split("-")[-1]]
    if step == "before_send:stop":  # no stop on the venue: the restart protects first, its
        calls = [(route, cid) for ms, method, route, cid, _ in result["calls"]  # stop before
                 if ms > kill["restart_ms"] and method != "SLEEP"]  # mode, look-ups, fills
        assert [route for route, _ in calls[:3]] == ["positionRisk", "openAlgoOrders",
                                                     "algoOrder"]
        assert calls[2][1].startswith(f"{SIGNAL}-rstop") and restart["to_stop_ms"] <= 200
    # the store agrees with the venue, order by order and fill by fill
    assert result["lost"] == {"venue_not_stored": [], "stored_not_on_venue": []}, result["lost"]
    assert result["journal"] == [], result["journal"]


def test_a_position_closed_while_the_bot_was_down_is_booked_by_the_restart(tmp_path, candles):
    """Killed as its stop's first of three trades came in: the rest of the stop fills while
    the bot is down (or its start-up reconciliation closes it), so no engine ever holds the
    close. The restarted run books the trade from the live state's fills; the store's trades
    and fills match the venue's."""
    options = VenueOptions(segment_timeout_s=180, partial_fills=True)
    chunk = Chunk(SIGNAL, parse_utc(START), parse_utc(END), 0, 0, ("tp1", "tp2"))
    episode = run_episode(chunk, tmp_path, candles, options, 1, KillPlan.at("after_fill:stop"),
                          random.Random(14), downtime_candles=(1, 1))
    try:
        result = audit(episode)
        wallet = float(episode.venue.state.account.wallet_usdt)
        flat = all(float(p.qty) == 0 for p in episode.venue.state.account.positions.values())
    finally:
        episode.venue.stop()
    store = open_store(episode.store_url)
    try:
        restarted = store.summary(max(int(run.run_id) for run in store.runs()))
    finally:
        store.close()
    # the balance the restart read holds the trade already: booking it does not count it twice
    assert flat and restarted["final_equity_usdt"] == pytest.approx(wallet, abs=1e-6)
    assert result["errors"] == [], result["errors"]
    assert [kill["step"] for kill in result["kills"]] == ["after_fill:stop"]
    assert result["duplicates"] == {}, result["duplicates"]
    assert result["lost"] == {"venue_not_stored": [], "stored_not_on_venue": []}, result["lost"]
    assert result["journal"] == [], result["journal"]

