"""The take-profits' one request through the real Engine, LiveBroker and store, end to end on
127.0.0.1: the bundled crash window's real 5m candles streamed over a loopback websocket (OI
confirmation OFF: the window's open interest is SYNTHETIC), orders on the fake Binance venue,
whose clock costs 50 ms per private request. The trade of 2024-08-04 (entry 18:15) places its
stop, then TP1 and TP2 together (batchOrders)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from cryptobot.secrets import ApiKeys
from cryptobot.store import open_store
from tests.live.conftest import TEST_KEY, TEST_SECRET
from tests.live.fake_binance import FakeBinanceServer, FaultPlan, unprotected_spans
from tests.live.fake_binance_state import FakeExchangeState
from tests.live.loopback_live import (
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)

START, MIDDLE, END = "2024-08-04T12:00:00Z", "2024-08-04T19:00:00Z", "2024-08-04T22:00:00Z"
PRICE_BAND = (-4016, "Limit price can't be higher than 63000.00.")  # Binance's words


def session(settings, keys, start, end, server):
    return asyncio.run(run_loopback_session(settings, keys, load_window(settings, start, end),
                                            server))


def venue_for(settings, faults=None) -> FakeBinanceServer:
    window = load_window(settings, START, END)
    state = FakeExchangeState([window.price_before], now_ms=window.start_ms)
    return FakeBinanceServer(state, faults or FaultPlan(trace=[]), latency_ms=50,
                             timeout_ms=settings.live.request_timeout_ms).start()


def run(tmp_path, keys, faults=None, refuse=None):
    """One session over the window: (settings, venue state, the engine's one trade, the
    POSTs of orders (route, client ids) in order)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = settings_from(write_live_config(tmp_path, live={"request_timeout_ms": 300}))
    server = venue_for(settings, faults)
    server.state.refuse_orders.update(refuse or {})
    try:
        outcome, _ = session(settings, keys, START, END, server)
    finally:
        server.stop()
    [trade] = outcome.run.engine.trades
    posts = [(route, cid) for _, method, route, cid, _ in server.faults.trace
             if method == "POST" and route in ("order", "batchOrders", "algoOrder")]
    return settings, server.state, trade, posts


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """A run without faults or refusals (run's tuple)."""
    return run(tmp_path_factory.mktemp("clean"), ApiKeys(key=TEST_KEY, secret=TEST_SECRET))


@pytest.fixture
def clean(clean_run):
    """The trade of a run without faults or refusals."""
    return clean_run[2]


def take_profit_orders(state, signal_id: str) -> Counter[str]:
    return Counter(o["clientOrderId"] for o in state.orders.values()
                   if o["clientOrderId"].startswith(f"{signal_id}-tp"))


def assert_protected_and_flat(state) -> None:
    assert max((end - start for start, end, _ in unprotected_spans(state.protection_log)),
               default=0) <= 100, unprotected_spans(state.protection_log)
    assert float(state.position("BTCUSDT").qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []


def test_the_take_profits_go_together_once_the_stop_works(clean_run):
    _, state, trade, posts = clean_run
    sid = trade.signal_id
    # entry, its stop, then both take-profits in one request: nothing between them
    assert posts[:3] == [("order", f"{sid}-entry"), ("algoOrder", f"{sid}-stop1"),
                         ("batchOrders", f"{sid}-tp1,{sid}-tp2")]
    assert take_profit_orders(state, sid) == {f"{sid}-tp1": 1, f"{sid}-tp2": 1}
    assert trade.legs[0].reason == "tp1"
    assert_protected_and_flat(state)


def test_a_refused_take_profit_leaves_the_trade_riding_its_stop(tmp_path, keys, clean):
    """The venue refuses TP2 inside the batch (-4016, a limit priced outside its band) and
    accepts TP1: the refusal is stored, TP1 works and fills, the stop protects the rest."""
    settings, state, trade, posts = run(tmp_path, keys, refuse={"-tp2": PRICE_BAND})
    sid = trade.signal_id
    assert ("batchOrders", f"{sid}-tp1,{sid}-tp2") in posts
    assert take_profit_orders(state, sid) == {f"{sid}-tp1": 1}
    assert trade.legs[0].reason == "tp1" and "tp2" not in [leg.reason for leg in trade.legs]
    assert trade.legs[0] == clean.legs[0]  # TP1 as it was with both accepted
    store = open_store(settings.store.url)
    try:
        events = store.orders(store.resolve_run(None))
    finally:
        store.close()
    [refusal] = [e for e in events if e.intent.client_id == f"{sid}-tp2"
                 and e.status == "rejected"]
    assert "-4016" in refusal.detail
    assert_protected_and_flat(state)


@pytest.mark.parametrize("fault", ["timeout_after", "429"])
def test_a_batch_whose_answer_was_lost_or_refused_at_first_ends_as_the_clean_one(
        tmp_path, keys, clean, fault):
    """`timeout_after`: the venue placed both and the answer never came: each client id is
    looked up, found, not sent again. `429`: refused before anything was done: sent again
    after the venue's Retry-After, not inside it. Either way the trade ends as without it."""
    faults = FaultPlan(trace=[])
    faults.script([fault], route="batchOrders")
    _, state, trade, posts = run(tmp_path, keys, faults)
    sid = trade.signal_id
    assert faults.injected == {fault: 1}
    batches = [cid for route, cid in posts if route == "batchOrders"]
    assert batches == [f"{sid}-tp1,{sid}-tp2"] * (1 if fault == "timeout_after" else 2)
    assert take_profit_orders(state, sid) == {f"{sid}-tp1": 1, f"{sid}-tp2": 1}
    assert faults.early_requests == 0 and faults.bans == 0
    assert [(leg.reason, leg.price, leg.qty_base) for leg in trade.legs] == [
        (leg.reason, leg.price, leg.qty_base) for leg in clean.legs]
    assert_protected_and_flat(state)


def test_a_restart_after_a_batch_half_placed_places_only_what_is_missing(tmp_path, keys):
    """The first run's batch: TP1 accepted, TP2 refused; it stops with the trade open. The
    restarted run takes the position over, finds TP1 working and places TP2 alone (a new
    client id), once; no take-profit is on the venue twice."""
    settings = settings_from(write_live_config(tmp_path))
    server = venue_for(settings)
    try:
        server.state.refuse_orders["-tp2"] = PRICE_BAND
        before, _ = session(settings, keys, START, MIDDLE, server)
        assert before.run.engine.trades == [] and not before.run.engine.is_idle()
        [position] = before.broker.state.positions()
        sid = position.signal_id
        assert take_profit_orders(server.state, sid) == {f"{sid}-tp1": 1}
        server.state.refuse_orders.clear()
        after, printed = session(settings, keys, MIDDLE, END, server)
        assert after.restored == sid
        [trade] = after.run.engine.trades
        placed = take_profit_orders(server.state, sid)
        assert placed[f"{sid}-tp1"] == 1 and max(placed.values()) == 1
        [again] = [cid for cid in placed if cid.startswith(f"{sid}-tp2r")]
        tp2 = [o for o in server.state.orders.values() if o["clientOrderId"] == again]
        assert float(tp2[0]["origQty"]) == pytest.approx(trade.qty_base - float(next(
            o["origQty"] for o in server.state.orders.values()
            if o["clientOrderId"] == f"{sid}-tp1")))
        assert trade.legs[0].reason == "tp1"
        assert_protected_and_flat(server.state)
    finally:
        server.stop()
