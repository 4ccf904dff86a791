"""The README's example strategy (strategies/capitulation_wick.py) trading live against the fake
Binance on 127.0.0.1: real 5m candles of the bundled crash window streamed over a loopback
websocket, orders and stops on the fake exchange, the store matching the exchange."""

from __future__ import annotations

import asyncio

import pytest

from cryptobot.store import open_store
from tests.live.fake_binance import FakeBinanceServer
from tests.live.fake_binance_state import FakeExchangeState
from tests.live.loopback_live import (
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)

START, END = "2024-08-05T00:00:00Z", "2024-08-05T12:00:00Z"


def test_the_example_strategy_trades_live_with_its_stops_on_the_exchange(tmp_path, keys):
    path = write_live_config(tmp_path)
    text = path.read_text().replace(
        "[strategy.params]\noi_confirmation = false\n",
        '[strategy]\npath = "strategies.capitulation_wick:CapitulationWick"\n')
    path.write_text(text)
    settings = settings_from(path)
    window = load_window(settings, START, END)
    server = FakeBinanceServer(FakeExchangeState([window.price_before],
                                                 now_ms=window.start_ms)).start()
    try:
        outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
    finally:
        server.stop()
    engine = outcome.portfolio.engine("BTC/USDT:USDT")  # the one symbol's engine
    assert type(engine.strategy).__name__ == "CapitulationWick"
    assert engine.trades, printed[-3000:]
    state = server.state
    stops = [a for a in state.algo_orders.values() if a["clientAlgoId"].endswith("-stop1")]
    assert {a["clientAlgoId"][:-len("-stop1")] for a in stops} >= {
        t.signal_id for t in engine.trades}  # every trade had its stop on the exchange
    assert all(a["reduceOnly"] for a in stops)
    store = open_store(settings.store.url)
    fills = store.fills(store.resolve_run(None))
    venue = [t for t in state.trades if t["symbol"] == "BTCUSDT"]
    assert sorted((round(f.price, 1), f.qty_base) for f in fills) == sorted(
        (round(float(t["price"]), 1), float(t["qty"])) for t in venue)
    realised = sum(float(t["realizedPnl"]) - float(t["commission"]) for t in venue)
    held = engine.open_position(None)  # its entry fee is paid on the venue already
    assert float(state.position("BTCUSDT").qty) == pytest.approx(held["qty"] if held else 0.0)
    paid = sum(t.pnl_usdt for t in engine.trades) - (held["entry_fee_usdt"] if held else 0.0)
    assert paid == pytest.approx(realised, abs=1e-6)
