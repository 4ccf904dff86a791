"""Protection on the live path, end to end on 127.0.0.1: the real Engine, LiveBroker and store,
the fake Binance order venue, and the bundled crash window's real 5m candles streamed over a
loopback websocket (OI confirmation OFF: the window's open interest is SYNTHETIC). The venue's
protection log says, at every change of the position or of a stop, how much of the position a
working stop covered; its clock costs 50 ms per private request."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from cryptobot.store import open_store
from tests.live.fake_binance import FakeBinanceServer, FaultPlan, unprotected_spans
from tests.live.fake_binance_state import FakeExchangeState
from tests.live.loopback_live import (
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)

START, END = "2024-08-04T12:00:00Z", "2024-08-04T22:00:00Z"  # the 18:15 entry inside


def run(tmp_path, keys, fill_parts: int = 1, refuse_exits: int = 0, faults=None, **sections):
    settings = settings_from(write_live_config(tmp_path, **sections))
    window = load_window(settings, START, END)
    state = FakeExchangeState([window.price_before], now_ms=window.start_ms)
    state.reject_next_market_exits = refuse_exits
    server = FakeBinanceServer(state, faults, fill_parts=fill_parts, latency_ms=50,
                               timeout_ms=settings.live.request_timeout_ms).start()
    try:
        outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
    finally:
        server.stop()
    return settings, state, outcome, printed


def longest_unprotected_ms(state) -> int:
    return max((end - start for start, end, _ in unprotected_spans(state.protection_log)),
               default=0)


def test_an_entry_filled_in_three_trades_is_one_position_under_a_full_stop(tmp_path, keys):
    faults = FaultPlan(trace=[])
    settings, state, outcome, printed = run(tmp_path, keys, fill_parts=3, faults=faults)
    trade = outcome.run.engine.trades[0]
    entry_id = f"{trade.signal_id}-entry"
    # the entry's answer says what executed: the stop for all of it is the very next request,
    # before the fills are read (a failed read is retried meanwhile: the position is covered)
    calls = [(route, cid) for _, method, route, cid, _ in faults.trace if method == "POST"
             or route == "userTrades"]
    at = calls.index(("order", entry_id))
    assert calls[at + 1] == ("algoOrder", f"{trade.signal_id}-stop1")  # not userTrades
    [entry_order] = [o for o in state.orders.values() if o["clientOrderId"] == entry_id]
    entry_fills = [t for t in state.trades if t["orderId"] == entry_order["orderId"]]
    assert len(entry_fills) == 3  # Binance filled it in three trades, one tick apart
    assert trade.qty_base == pytest.approx(sum(float(t["qty"]) for t in entry_fills))
    assert trade.entry_price == pytest.approx(
        sum(float(t["price"]) * float(t["qty"]) for t in entry_fills) / trade.qty_base)
    # a price-capped entry: a limit IOC at most max_entry_slippage_bps above the signal close
    assert (entry_order["type"], entry_order["timeInForce"]) == ("LIMIT", "IOC")
    signal = next(s for s in outcome.run.engine.signals if s.signal_id == trade.signal_id)
    cap = signal.metrics["reference_price"] * (1 + settings.live.max_entry_slippage_bps / 1e4)
    assert float(entry_order["price"]) <= cap + 0.1
    # one request without full cover, and the fills moved no stop
    assert longest_unprotected_ms(state) <= 100, unprotected_spans(state.protection_log)
    [stop] = [a for a in state.algo_orders.values()
              if a["clientAlgoId"] == f"{trade.signal_id}-stop1"]
    assert float(stop["quantity"]) == pytest.approx(trade.qty_base)
    # both take-profits in one request (batchOrders), after the stop
    targets_sent = calls.index(("batchOrders",
                                f"{trade.signal_id}-tp1,{trade.signal_id}-tp2"))
    assert [c for c in calls[at + 2:targets_sent] if c[0] == "algoOrder"] == []
    # the targets went on once, for the whole entry
    targets = [o for o in state.orders.values() if o["clientOrderId"].startswith(
        (f"{trade.signal_id}-tp1", f"{trade.signal_id}-tp2"))]
    assert len(targets) == 2
    assert sum(float(o["origQty"]) for o in targets) == pytest.approx(trade.qty_base)
    assert float(state.position("BTCUSDT").qty) == 0
    assert max(Counter(o["clientOrderId"] for o in state.orders.values()).values()) == 1


@pytest.mark.parametrize("refuse, last_leg", [(2, "time_stop"), (12, "flatten")])
def test_a_refused_exit_never_leaves_the_position_without_a_stop(tmp_path, keys, refuse,
                                                                 last_leg):
    """The time stop's market exit is refused by the venue (-4131) `refuse` times: the stop
    stays on the exchange while it is retried; past `live.stop_place_retries` failures the
    fallback flattens (and is retried too) and the user is told."""
    settings, state, outcome, printed = run(
        tmp_path, keys, refuse_exits=refuse, exits={"time_stop_hours": 0.5})
    [trade] = outcome.run.engine.trades
    assert trade.legs[-1].reason == last_leg
    assert state.reject_next_market_exits == 0  # every refusal was met, and retried past
    assert longest_unprotected_ms(state) <= 500, unprotected_spans(state.protection_log)
    assert float(state.position("BTCUSDT").qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
    store = open_store(settings.store.url)
    events = store.orders(store.resolve_run(None))
    refused = [e for e in events if e.status == "rejected" and e.intent.reduce_only
               and e.intent.order_type.value == "market"]
    assert len(refused) == refuse
    if last_leg == "flatten":
        told = [e.detail for e in events if e.status == "submitted"
                and e.detail.startswith("protection fallback")]
        assert told, [e.detail for e in events]
