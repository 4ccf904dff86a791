"""Several symbols on one account, where one symbol's trouble must not cost another its
protection (the fake Binance on 127.0.0.1, BTCUSDT at 60,000 and ETHUSDT at 2,500): a refused
close does not stop the kill switch closing the others; two positions adopted in one
reconciliation each get a stop; a fill is matched to its order by symbol and order id; a run
refuses to start beside a position in a symbol it does not watch."""

from __future__ import annotations

import itertools

import pytest

from cryptobot.brokers.live.symbol_broker import symbol_brokers
from cryptobot.cli.live_portfolio import refuse_unwatched_symbols
from cryptobot.errors import ConfigError, TemporaryExchangeError
from tests.live.test_live_symbol_brokers import (
    BTC,
    ETH,
    Seen,
    build,
    entry,
    stop,
    two_positions,
    two_symbol_settings,
)


def test_a_refused_close_does_not_stop_the_others_being_closed(two_markets, tmp_path, keys):
    broker = two_positions(two_markets, tmp_path, keys)
    state = two_markets.state
    state.reject_next_market_exits = 1  # BTC's close meets -4131 (a cascade's thin book)
    with pytest.raises(TemporaryExchangeError, match="not everything could be closed: BTC"):
        broker.flatten_all("kill switch file found")
    assert float(state.position("ETHUSDT").qty) == 0  # ETH was closed all the same
    assert not state.open_algo_orders("ETHUSDT")
    assert float(state.position("BTCUSDT").qty) == 0.01 and state.open_algo_orders("BTCUSDT")
    broker.flatten_all("kill switch file found")  # the next try (a restart) closes the rest
    assert float(state.position("BTCUSDT").qty) == 0 and not state.open_algo_orders()


@pytest.mark.parametrize("btc_qty", ["0.005", "0.5"])
def test_two_positions_adopted_at_once_each_get_their_own_stop(two_markets, tmp_path, keys,
                                                               btc_qty):
    state = two_markets.state
    for market, qty in (("BTCUSDT", btc_qty), ("ETHUSDT", "0.2")):
        state.new_order({"symbol": market, "type": "MARKET", "side": "BUY", "quantity": qty,
                         "newClientOrderId": f"manual-{market}"})
    broker, report = build(two_markets,
                           two_symbol_settings(tmp_path, adopt_unknown_positions=True), keys)
    assert len(set(report.adopted)) == 2
    assert {p.symbol for p in broker.state.positions()} == {BTC, ETH}
    for market in ("BTCUSDT", "ETHUSDT"):
        held = float(state.position(market).qty)
        assert sum(float(a["quantity"]) for a in state.open_algo_orders(market)) == \
            pytest.approx(held)


def test_a_fill_is_matched_to_its_order_by_symbol_as_well_as_id(two_markets, tmp_path, keys):
    """Binance numbers orders per symbol: BTC's entry may carry an id ETH's stop holds."""
    broker, _ = build(two_markets, two_symbol_settings(tmp_path), keys)
    views = symbol_brokers(broker, (BTC, ETH))
    seen = {BTC: Seen(), ETH: Seen()}
    for symbol, view in views.items():
        seen[symbol].bind(view)
    views[ETH].submit(entry(ETH, "ETHUSDT-1", 0.2, 2450.0))
    views[ETH].submit(stop(ETH, "ETHUSDT-1", 0.2, 2450.0))
    eth_stop_id = broker.state.order("ETHUSDT-1-stop1").exchange_order_id
    two_markets.state._ids = itertools.count(int(eth_stop_id))  # the next id collides
    views[BTC].submit(entry(BTC, "BTCUSDT-1", 0.01, 59000.0))
    assert all(f.symbol == ETH for f in seen[ETH].fills)
    assert [(f.symbol, f.purpose.value) for f in seen[BTC].fills] == [(BTC, "entry")]
    assert broker.reconcile().unknown_positions == []


def test_a_run_refuses_to_start_beside_a_position_it_does_not_watch(two_markets, tmp_path,
                                                                   keys):
    broker = two_positions(two_markets, tmp_path, keys)
    refuse_unwatched_symbols(broker, (BTC, ETH))
    with pytest.raises(ConfigError, match="holds positions or orders in ETH/USDT:USDT, which "
                                          "this run does not watch"):
        refuse_unwatched_symbols(broker, (BTC,))


def test_the_kill_switch_is_heeded_between_the_symbols_warm_ups(tmp_path, keys, monkeypatch):
    """A restart warms every symbol up from REST (minutes for twenty): the kill file written
    during the first one is acted on before the next, not after them all."""
    import cryptobot.cli.live_portfolio as live_portfolio
    from tests.live.loopback_live import load_window
    from tests.live.test_live_portfolio import END, RESTART, START, run, start_venue
    from tests.live.test_live_portfolio import two_symbol_settings as portfolio_settings

    settings = portfolio_settings(tmp_path)
    first = load_window(settings, START, RESTART)
    server = start_venue(first)
    state = server.state
    warmed = []
    real = live_portfolio.load_warm_up

    async def kill_during_the_first(rest, symbol, *args, **kwargs):
        warmed.append(symbol)
        if len(warmed) == 1:
            (tmp_path / "KILL").write_text("")
        return await real(rest, symbol, *args, **kwargs)

    try:
        run(settings, keys, first, server)
        assert all(float(state.position(m).qty) > 0 for m in ("BTCUSDT", "ETHUSDT"))
        monkeypatch.setattr(live_portfolio, "load_warm_up", kill_during_the_first)
        after, _ = run(settings, keys, load_window(settings, RESTART, END), server)
    finally:
        server.stop()
    assert warmed == [BTC] and after.stopped_by == "kill switch"
    assert all(float(state.position(m).qty) == 0 for m in ("BTCUSDT", "ETHUSDT"))
    assert state.open_orders() == [] and state.open_algo_orders() == []
