"""Two symbols in one live process, end to end on 127.0.0.1: the real BTC and ETH 15m candles of
data/btc_eth_2024-08_15m streamed on one combined loopback market stream, `run_live_session`
(an engine per symbol over one account, one LiveBroker, one user stream) against the fake
Binance order server serving both markets, which fills every taker order in three trades.
OI confirmation is off (no open interest exists offline for ETH).

On 2024-08-11 both symbols confirm a higher low on the same 15m candle (a spike at 20:00,
decided at 21:45, as the two-symbol backtest finds): both enter on that candle and are stopped
out at about 00:30 on 2024-08-12.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from cryptobot.clock import iso_utc, parse_utc
from cryptobot.model import SignalStatus
from cryptobot.store import open_store
from tests.live.fake_binance import FakeBinanceServer, unprotected_spans
from tests.live.fake_binance_state import FakeExchangeState
from tests.live.loopback_live import (
    kill_switch_at,
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
MARKETS = {BTC: "BTCUSDT", ETH: "ETHUSDT"}
START, RESTART, END = "2024-08-11T18:00:00Z", "2024-08-11T23:00:00Z", "2024-08-12T01:00:00Z"
DECIDED = "2024-08-11T21:45:00Z"
SIGNALS = {BTC: "BTCUSDT-20240811T2000", ETH: "ETHUSDT-20240811T2000"}


def two_symbol_settings(tmp_path, max_open_positions: int = 2):
    return settings_from(write_live_config(
        tmp_path, market={"symbols": [BTC, ETH], "base_timeframe": "15m"},
        portfolio={"max_open_positions": max_open_positions}))


def start_venue(window) -> FakeBinanceServer:
    state = FakeExchangeState([window.price_before], now_ms=window.start_ms,
                              other_prices=window.other_prices())
    return FakeBinanceServer(state, fill_parts=3, latency_ms=50).start()


def run(settings, keys, window, server):
    return asyncio.run(run_loopback_session(settings, keys, window, server))


def run_on_new_venue(settings, keys, start: str, end: str, kill_at_ms: int | None = None,
                     kill_file=None):
    """One live run of [start, end) on a fresh venue: (outcome, console text, venue state)."""
    window = load_window(settings, start, end)
    if kill_at_ms is not None:
        kill_switch_at(window, kill_at_ms, kill_file)
    server = start_venue(window)
    try:
        outcome, printed = run(settings, keys, window, server)
    finally:
        server.stop()
    return outcome, printed, server.state


def orders_of(state, market: str) -> dict[str, list[dict]]:
    """The venue's regular orders and algo (stop) orders of one market, by client id."""
    found: dict[str, list[dict]] = {}
    for order in state.orders.values():  # (a fired stop's market order carries its id)
        if order["symbol"] == market and order["origType"] != "STOP_MARKET":
            found.setdefault(order["clientOrderId"], []).append(order)
    for algo in state.algo_orders.values():
        if algo["symbol"] == market:
            found.setdefault(algo["clientAlgoId"], []).append(algo)
    return found


def longest_unprotected_ms(state, market: str) -> int:
    spans = unprotected_spans(state.protection_logs.get(market, []))
    return max((end - start for start, end, _ in spans), default=0)


def assert_protected_entry(state, symbol: str) -> float:
    """The symbol's entry (a limit IOC, filled in three trades), its first stop for ALL that
    filled, its two targets for all of it: each sent once, all on its own market. Returns the
    filled quantity."""
    market, signal_id = MARKETS[symbol], SIGNALS[symbol]
    mine = orders_of(state, market)
    assert all(cid.startswith(signal_id) for cid in mine), sorted(mine)
    assert max(len(sent) for sent in mine.values()) == 1  # no client id sent twice
    [entry] = mine[f"{signal_id}-entry"]
    assert (entry["side"], entry["type"], entry["timeInForce"]) == ("BUY", "LIMIT", "IOC")
    assert not entry["reduceOnly"]
    entry_trades = [t for t in state.trades if t["orderId"] == entry["orderId"]]
    assert len(entry_trades) == 3 and {t["symbol"] for t in entry_trades} == {market}
    filled = sum(float(t["qty"]) for t in entry_trades)
    assert filled == pytest.approx(float(entry["executedQty"])) and filled > 0
    [stop] = mine[f"{signal_id}-stop1"]
    assert (stop["side"], stop["reduceOnly"]) == ("SELL", True)
    assert float(stop["quantity"]) == pytest.approx(filled)  # the full filled quantity
    assert float(stop["triggerPrice"]) < min(float(t["price"]) for t in entry_trades)
    [tp1], [tp2] = mine[f"{signal_id}-tp1"], mine[f"{signal_id}-tp2"]
    for target in (tp1, tp2):
        assert (target["side"], target["type"], target["reduceOnly"]) == ("SELL", "LIMIT", True)
        assert float(target["price"]) > float(entry["price"]) * 0.99
    assert float(tp1["origQty"]) + float(tp2["origQty"]) == pytest.approx(filled)
    return filled


def test_two_symbols_enter_on_the_same_candle_each_under_its_own_full_stop(tmp_path, keys):
    settings = two_symbol_settings(tmp_path)
    outcome, printed, state = run_on_new_venue(settings, keys, START, END)
    portfolio = outcome.run.engine
    assert set(portfolio.engines) == {BTC, ETH}
    assert "BTC/USDT:USDT, ETH/USDT:USDT" in printed  # the start summary names both
    entered = {s.symbol: s for s in portfolio.signals if s.status is SignalStatus.ENTERED}
    assert {symbol: s.signal_id for symbol, s in entered.items()} == SIGNALS, printed[-4000:]
    assert {iso_utc(s.decided_ms) for s in entered.values()} == {DECIDED}
    filled = {symbol: assert_protected_entry(state, symbol) for symbol in (BTC, ETH)}
    for market in MARKETS.values():  # a few requests at most without a full stop, per market
        assert longest_unprotected_ms(state, market) <= 500, unprotected_spans(
            state.protection_logs[market])
        assert max(abs(q) for _, q, _ in state.protection_logs[market]) > 0
    # both were stopped out on the exchange and booked, each in its own symbol
    trades = {t.symbol: t for t in portfolio.trades}
    assert trades.keys() == {BTC, ETH}
    for symbol, trade in trades.items():
        assert trade.signal_id == SIGNALS[symbol]
        assert trade.qty_base == pytest.approx(filled[symbol])
        assert [leg.reason for leg in trade.legs] == ["stop"] * len(trade.legs)
        assert iso_utc(trade.entry_ms) == DECIDED
    for market in MARKETS.values():
        assert float(state.position(market).qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
    assert outcome.broker.state.positions() == []
    # the store: one run of both symbols, each symbol's fills the venue's, the PnL the venue's
    store = open_store(settings.store.url)
    run_id = store.resolve_run(None)
    assert store.run_symbols(run_id) == (BTC, ETH)
    for symbol, market in MARKETS.items():
        venue = sorted((round(float(t["price"]), 2), float(t["qty"]), t["side"].lower())
                       for t in state.trades if t["symbol"] == market)
        ours = sorted((round(f.price, 2), f.qty_base, f.side.value)
                      for f in store.fills(run_id, symbols=(symbol,)))
        assert ours == venue and len(venue) == 6
        realised = sum(float(t["realizedPnl"]) - float(t["commission"])
                       for t in state.trades if t["symbol"] == market)
        [(stored, _)] = store.trades(run_id, symbols=(symbol,))
        assert stored.pnl_usdt + stored.funding_usdt == pytest.approx(realised, abs=1e-6)
    assert outcome.summary["symbols"].keys() == {BTC, ETH}
    assert outcome.summary["trades"] == 2


def test_one_open_position_refuses_the_second_symbol_with_a_portfolio_reason(tmp_path, keys):
    settings = two_symbol_settings(tmp_path, max_open_positions=1)
    outcome, _, state = run_on_new_venue(settings, keys, START, END)
    store = open_store(settings.store.url)
    stored = {s.signal_id: s for s, _ in store.signals(store.resolve_run(None))}
    # BTC comes first in the config: it takes the one slot; ETH's confirmation is refused
    assert stored[SIGNALS[BTC]].status is SignalStatus.ENTERED
    refused = stored[SIGNALS[ETH]]
    assert refused.status is SignalStatus.REJECTED
    assert refused.reason == "portfolio: max_open_positions 1 reached (open: BTC/USDT:USDT)"
    assert iso_utc(refused.decided_ms) == DECIDED
    assert_protected_entry(state, BTC)
    assert orders_of(state, "ETHUSDT") == {}  # nothing of ETH reached the venue
    assert [t.symbol for t in outcome.run.engine.trades] == [BTC]


def test_a_restart_with_positions_in_two_symbols_restores_both_with_their_stops(tmp_path, keys):
    settings = two_symbol_settings(tmp_path)
    first = load_window(settings, START, RESTART)
    server = start_venue(first)
    state = server.state
    try:
        before, _ = run(settings, keys, first, server)
        held = {p.symbol: p for p in before.broker.state.positions()}
        assert {s: p.signal_id for s, p in held.items()} == SIGNALS
        assert before.run.engine.trades == []
        stops_at_restart = {a["symbol"]: a for a in state.open_algo_orders()}
        for symbol, position in held.items():
            assert float(state.position(MARKETS[symbol]).qty) == pytest.approx(
                position.qty_base)
            assert float(stops_at_restart[MARKETS[symbol]]["quantity"]) == pytest.approx(
                position.qty_base)

        second = load_window(settings, RESTART, END)
        after, printed = run(settings, keys, second, server)
    finally:
        server.stop()
    assert after.restored_all == [SIGNALS[BTC], SIGNALS[ETH]]
    for signal_id in SIGNALS.values():
        assert f"took over the open position {signal_id}" in printed
    # each symbol's stop stayed on the venue across the restart (none re-placed, none
    # doubled), and each engine finished its own trade on it
    assert not [cid for cid in Counter(a["clientAlgoId"] for a in state.algo_orders.values())
                if "-rstop" in cid]
    for symbol in (BTC, ETH):
        mine = orders_of(state, MARKETS[symbol])
        assert max(len(sent) for sent in mine.values()) == 1
        assert f"{SIGNALS[symbol]}-stop1" in mine
        assert longest_unprotected_ms(state, MARKETS[symbol]) <= 500
    trades = {t.symbol: t for t in after.run.engine.trades}
    assert trades.keys() == {BTC, ETH}
    for symbol, trade in trades.items():
        assert trade.signal_id == SIGNALS[symbol]
        assert trade.entry_price == pytest.approx(held[symbol].entry_price)
        assert trade.qty_base == pytest.approx(held[symbol].qty_base)
        assert trade.initial_stop == pytest.approx(
            float(stops_at_restart[MARKETS[symbol]]["triggerPrice"]))
        assert trade.legs and {leg.reason for leg in trade.legs} == {"stop"}
    for market in MARKETS.values():
        assert float(state.position(market).qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []


def test_the_kill_switch_flattens_both_symbols(tmp_path, keys):
    settings = two_symbol_settings(tmp_path)
    kill_at_ms = parse_utc(RESTART)  # 23:00, both positions open
    outcome, printed, state = run_on_new_venue(settings, keys, START, END, kill_at_ms,
                                               tmp_path / "KILL")
    assert outcome.stopped_by == "kill switch" and "kill switch" in printed
    for market in MARKETS.values():
        assert float(state.position(market).qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
    assert outcome.broker.state.positions() == []
    trades = {t.symbol: t for t in outcome.run.engine.trades}
    assert trades.keys() == {BTC, ETH}
    for symbol, trade in trades.items():
        assert trade.signal_id == SIGNALS[symbol]
        assert trade.exit_ms >= kill_at_ms and trade.legs[-1].reason == "flatten"
        flattened = [o for o in state.orders.values() if o["symbol"] == MARKETS[symbol]
                     and o["reduceOnly"] and o["type"] == "MARKET"
                     and o["origType"] == "MARKET"]
        assert flattened and sum(float(o["executedQty"]) for o in flattened) == pytest.approx(
            trade.qty_base)
