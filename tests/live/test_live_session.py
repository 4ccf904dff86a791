"""`cryptobot live`'s composition end to end on 127.0.0.1: real candles streamed over a loopback
websocket, orders on the fake Binance server. OI confirmation is OFF in these runs (the window's
open interest is SYNTHETIC and confirms none of its spikes); everything else is live.example.toml.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from cryptobot.clock import SimClock
from cryptobot.logs import configure_logging
from cryptobot.store import open_store
from tests.live.conftest import TEST_KEY, TEST_SECRET
from tests.live.fake_binance import FakeBinanceServer
from tests.live.fake_binance_state import FakeExchangeState
from tests.live.loopback_live import (
    kill_switch_at,
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)

# The bundled crash window: a spike at 2024-08-04 17:30, confirmed at 18:00 (paper enters 18:15).
START, END = "2024-08-04T00:00:00Z", "2024-08-04T22:00:00Z"


@pytest.fixture
def order_server(request):
    servers = []

    def start(price: float, now_ms: int) -> FakeBinanceServer:
        server = FakeBinanceServer(FakeExchangeState([price], now_ms=now_ms)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def venue_fills(state) -> list[dict]:
    return [t for t in state.trades if t["symbol"] == "BTCUSDT"]


def test_live_session_enters_protects_and_exits_with_store_matching_exchange(
        tmp_path, keys, order_server, run_cli):
    settings = settings_from(write_live_config(tmp_path))
    configure_logging(settings.logging.dir, "DEBUG", settings.logging.max_bytes, 1)
    window = load_window(settings, START, END)
    server = order_server(window.price_before, window.start_ms)
    outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))

    state = server.state
    assert "LIVE TRADING" in printed and "max notional" in printed and "2,000 USDT" in printed
    assert "warm-up:" in printed and " gate " in printed  # heartbeats, as in paper
    # exits arrived by the user data stream: candles read no fills by REST while it was up
    assert "user data stream connected" in printed
    assert outcome.broker.fills_by_source["stream"] >= 1
    reads = sum(1 for _, path in server.state.requests if path == "/fapi/v1/userTrades")
    assert reads < len(window.candles_by_close) / 10
    engine = outcome.run.engine
    assert engine.trades, printed[-3000:]
    trade = engine.trades[0]
    entry_id = f"{trade.signal_id}-entry"
    # entry and its on-exchange stop went to the venue once each, under our ids
    regular = Counter(o["clientOrderId"] for o in state.orders.values())
    algos = Counter(a["clientAlgoId"] for a in state.algo_orders.values())
    assert regular[entry_id] == 1
    assert algos[f"{trade.signal_id}-stop1"] == 1
    first_stop = next(a for a in state.algo_orders.values()
                      if a["clientAlgoId"] == f"{trade.signal_id}-stop1")
    assert first_stop["reduceOnly"] and first_stop["workingType"] == "CONTRACT_PRICE"
    assert float(first_stop["triggerPrice"]) == pytest.approx(trade.initial_stop, abs=0.1)
    # it exited, and nothing is left on the venue or in our state
    assert float(state.position("BTCUSDT").qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
    assert outcome.broker.state.positions() == [] and outcome.broker.working_orders() == ()
    # the run store matches the exchange, fill by fill
    store = open_store(settings.store.url)
    run_id = store.resolve_run(None)
    stored_fills = store.fills(run_id)
    exchange = sorted((round(float(t["price"]), 1), float(t["qty"]), t["side"].lower())
                      for t in venue_fills(state))
    ours = sorted((round(f.price, 1), f.qty_base, f.side.value) for f in stored_fills)
    assert ours == exchange
    stored_trades = store.trades(run_id)
    assert len(stored_trades) == len(engine.trades)
    realised = sum(float(t["realizedPnl"]) - float(t["commission"]) for t in venue_fills(state))
    # the PnL the bot stored, trade by trade, is what the exchange booked (its realised PnL
    # less its commissions, per trade id), to the cent and to 1e-6 in the stored decimals
    assert sum(t.pnl_usdt for t in engine.trades) == pytest.approx(realised, abs=0.01)
    by_trade_id = {str(t["id"]): t for t in venue_fills(state)}
    stored_fill_ids = {f.trade_id for f in outcome.broker.state.fills()}
    assert stored_fill_ids == set(by_trade_id)
    assert sum(t.pnl_usdt for t, _ in stored_trades) == pytest.approx(realised, abs=1e-6)

    # no key or secret anywhere: console, JSON logs, the store (runs and live state), the report
    code, out, err = run_cli("report", "--db", settings.store.url, "--out",
                             str(tmp_path / "report.html"))
    assert code == 0, err
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"live.sqlite", "report.html"}
    assert any(p.parent.name == "logs" and p.stat().st_size > 0 for p in written)
    for path in written:
        blob = path.read_bytes()
        assert TEST_KEY.encode() not in blob and TEST_SECRET.encode() not in blob, path
    assert TEST_KEY not in printed + out + err and TEST_SECRET not in printed + out + err


def test_restart_takes_over_the_open_position_and_finishes_the_trade(
        tmp_path, keys, order_server):
    settings = settings_from(write_live_config(tmp_path))
    first = load_window(settings, START, "2024-08-04T19:00:00Z")  # stops while the trade is open
    server = order_server(first.price_before, first.start_ms)
    before, _ = asyncio.run(run_loopback_session(settings, keys, first, server))
    assert before.run.engine.trades == [] and not before.run.engine.is_idle()
    [open_position] = before.broker.state.positions()
    state = server.state
    assert float(state.position("BTCUSDT").qty) == pytest.approx(open_position.qty_base)

    second = load_window(settings, "2024-08-04T19:00:00Z", END)
    after, printed = asyncio.run(run_loopback_session(settings, keys, second, server))
    assert after.restored == open_position.signal_id
    assert f"took over the open position {open_position.signal_id}" in printed
    [trade] = after.run.engine.trades
    assert trade.signal_id == open_position.signal_id
    assert trade.entry_price == pytest.approx(open_position.entry_price)
    assert trade.qty_base == pytest.approx(open_position.qty_base)
    reasons = [leg.reason for leg in trade.legs]
    assert reasons[0] == "tp1" and len(reasons) == 2  # then break-even / trailing / tp2
    # the stop numbering went on from the first run: every client id reached the venue once
    algos = Counter(a["clientAlgoId"] for a in state.algo_orders.values())
    assert max(algos.values()) == 1 and len(algos) >= 2
    assert float(state.position("BTCUSDT").qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
    store = open_store(settings.store.url)
    fills = store.fills(1) + store.fills(2)
    assert sorted((round(f.price, 1), f.qty_base) for f in fills) == sorted(
        (round(float(t["price"]), 1), float(t["qty"])) for t in venue_fills(state))


def test_kill_switch_file_stops_the_running_session_flat(tmp_path, keys, order_server):
    settings = settings_from(write_live_config(tmp_path))
    window = load_window(settings, START, END)
    server = order_server(window.price_before, window.start_ms)
    kill_at_ms = window.start_ms + 19 * 3_600_000  # 19:00, with the 18:15 entry open
    kill_switch_at(window, kill_at_ms, tmp_path / "KILL")
    outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
    assert outcome.stopped_by == "kill switch"
    assert "kill switch" in printed
    state = server.state
    assert float(state.position("BTCUSDT").qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
    assert outcome.broker.state.positions() == []
    [trade] = outcome.run.engine.trades
    assert trade.exit_ms >= kill_at_ms and trade.legs[-1].reason == "flatten"
    assert outcome.run.engine.clock.now_ms() < window.end_ms  # stopped before the data ran out


def test_a_signal_and_its_gate_decision_are_recorded_once_its_entry_is_out(
        tmp_path, keys, order_server, monkeypatch):
    """The store gets the entered signal and its gate decision after the entry was sent, in
    the same commit as before (cryptobot/runners/deferred_recorder.py)."""
    from cryptobot.brokers.live.gateway import OrderGateway
    from cryptobot.store.sql_recorder import SqlRecorder

    happened: list[tuple[str, str]] = []
    place, signal, gate = OrderGateway.place, SqlRecorder.signal, SqlRecorder.gate_decision

    def placing(self, intent):
        happened.append(("sent", str(intent.purpose)))
        return place(self, intent)

    def signalled(self, recorded, decision):
        happened.append(("stored signal", str(recorded.status)))
        return signal(self, recorded, decision)

    def gated(self, decision, trigger):
        happened.append(("stored gate", trigger))
        return gate(self, decision, trigger)

    monkeypatch.setattr(OrderGateway, "place", placing)
    monkeypatch.setattr(SqlRecorder, "signal", signalled)
    monkeypatch.setattr(SqlRecorder, "gate_decision", gated)
    settings = settings_from(write_live_config(tmp_path))
    window = load_window(settings, START, "2024-08-04T19:00:00Z")
    server = order_server(window.price_before, window.start_ms)
    outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
    assert outcome.run.engine.signals, printed[-2000:]
    entered = happened.index(("stored signal", "entered"))
    assert happened.index(("sent", "entry")) < happened.index(("stored gate", "signal")) \
        < entered, happened
    store = open_store(settings.store.url)
    run_id = store.resolve_run(None)
    assert [s.status for s, _ in store.signals(run_id)] == [
        s.status for s in outcome.run.engine.signals]


def test_an_entry_uses_the_gate_decision_made_for_its_close_before_its_frame(
        tmp_path, keys, order_server, monkeypatch):
    """With closing frames 400 ms after their candles' closes, as a live venue sends them: the
    entered signal's gate decision, for its candle's close, was made between events, before
    that candle's frame came (cryptobot/engine/gate.py's DecisionsAhead), and it is the
    decision a fresh gate makes for that moment."""
    from cryptobot.exchange.binance import BinanceUsdmStream
    from cryptobot.macro import MacroGate, build_gate

    happened: list[tuple[str, int]] = []
    decide, parse = MacroGate.decide, BinanceUsdmStream.parse

    def deciding(self, now_ms):
        happened.append(("decided", now_ms))
        return decide(self, now_ms)

    def parsing(self, raw):
        parsed = parse(self, raw)
        happened.extend(("frame", event.ts_close_ms) for event in parsed.events
                        if hasattr(event, "ts_close_ms"))
        return parsed

    monkeypatch.setattr(MacroGate, "decide", deciding)
    monkeypatch.setattr(BinanceUsdmStream, "parse", parsing)
    settings = settings_from(write_live_config(tmp_path))
    window = load_window(settings, START, "2024-08-04T19:00:00Z")
    server = order_server(window.price_before, window.start_ms)
    outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server,
                                                        frame_delay_ms=400))
    entered = [s for s in outcome.run.engine.signals if str(s.status) == "entered"]
    assert entered, printed[-2000:]
    store = open_store(settings.store.url)
    decisions = {d.ts_ms: d for d, trigger in store.gate_decisions(store.resolve_run(None))
                 if trigger == "signal"}
    for signal in entered:
        close_ms = signal.decided_ms  # the replay's clock reads the candle's close
        assert close_ms in decisions, (signal, sorted(decisions))
        assert happened.index(("decided", close_ms)) < happened.index(("frame", close_ms))
        fresh = build_gate(settings, SimClock(close_ms)).decide(close_ms)
        assert (decisions[close_ms].action, decisions[close_ms].reasons) == (
            fresh.action, fresh.reasons)
