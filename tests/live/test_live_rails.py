"""The live broker's own rails stop new entries, whatever the engine decided: max daily loss,
max open positions, the leverage cap on the account's equity. And the demo-trading switch
reaches ccxt (checked on the configured URLs, without any network)."""

from __future__ import annotations

import pytest

from cryptobot.brokers.live.rails import daily_realised_pnl_usdt
from cryptobot.brokers.live.setup import build_live_broker, make_ccxt_client
from cryptobot.brokers.live.state import LiveFillRow, LiveState
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import OrderRejectedError
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, PositionSide, Side
from tests.live.conftest import VenueClock, live_settings
from tests.live.trade_driver import SYMBOL, TradeDriver

DAY_MS = 86_400_000


def build(venue, tmp_path, keys, risk=None, portfolio=None, **live):
    settings = live_settings(tmp_path, **live)
    if risk:
        settings = settings.model_copy(update={"risk": settings.risk.model_copy(update=risk)})
    if portfolio:
        settings = settings.model_copy(
            update={"portfolio": settings.portfolio.model_copy(update=portfolio)})
    broker, _ = build_live_broker(settings, keys, VenueClock(venue.state),
                                  KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=lambda s: None, rate_limit=False)
    return broker


def entry(signal_id: str, qty: float) -> OrderIntent:
    return OrderIntent(f"{signal_id}-entry", SYMBOL, Side.BUY, OrderType.MARKET, qty,
                       OrderPurpose.ENTRY)


def test_max_daily_loss_stops_entries_until_the_next_utc_day(venue, tmp_path, keys):
    broker = build(venue, tmp_path, keys)
    TradeDriver(broker, "sigL", qty=0.1, stop=59000.0, tp1=61000.0, tp2=62500.0).enter()
    venue.state.set_price_scripted(58000.0)  # gaps through the stop: 0.1 x 2000 lost + fees
    broker.poll()
    assert float(venue.state.position("BTCUSDT").qty) == 0
    sends = broker.gateway.sends
    with pytest.raises(OrderRejectedError, match="max_daily_loss"):
        broker.submit(entry("sigM", 0.01))
    assert broker.gateway.sends == sends  # refused before anything was sent
    with venue.state.lock:
        venue.state.now_ms += DAY_MS  # a new UTC day
    broker.submit(entry("sigN", 0.01))
    assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(0.01)


def test_a_loss_below_the_limit_does_not_stop_entries(venue, tmp_path, keys):
    broker = build(venue, tmp_path, keys)
    TradeDriver(broker, "sigS", qty=0.01, stop=59000.0, tp1=61000.0, tp2=62500.0).enter()
    venue.state.set_price_scripted(58000.0)  # 20 USDT lost: 0.2% of equity
    broker.poll()
    broker.submit(entry("sigT", 0.01))
    assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(0.01)


def test_max_open_positions_stops_a_second_entry(venue, tmp_path, keys):
    broker = build(venue, tmp_path, keys, portfolio={"max_open_positions": 1})
    TradeDriver(broker, "sigA", qty=0.01, stop=59000.0, tp1=61000.0, tp2=62500.0).enter()
    sends = broker.gateway.sends
    with pytest.raises(OrderRejectedError, match="portfolio.max_open_positions is 1"):
        broker.submit(entry("sigB", 0.01))
    wider = build(venue, tmp_path, keys, portfolio={"max_open_positions": 2})
    with pytest.raises(OrderRejectedError, match="already open"):  # one per symbol, always
        wider.submit(entry("sigB", 0.01))
    assert broker.gateway.sends == sends and wider.gateway.sends == 0
    assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(0.01)


@pytest.mark.parametrize(("leverage", "qty", "allowed"), [
    (3, 0.6, False),   # 36,000 USDT > 3 x 10,000
    (3, 0.45, True),   # 27,000 USDT
    (1, 0.2, False),   # 12,000 USDT > 1 x 10,000: the account's leverage setting caps too
])
def test_leverage_cap_on_account_equity(venue, tmp_path, keys, leverage, qty, allowed):
    broker = build(venue, tmp_path, keys, leverage=leverage)
    assert broker.equity_usdt == pytest.approx(10_000.0)
    if allowed:
        broker.submit(entry("sigV", qty))
        assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(qty)
    else:
        with pytest.raises(OrderRejectedError, match="leverage cap"):
            broker.submit(entry("sigV", qty))
        assert broker.gateway.sends == 0


def test_max_notional_stops_an_entry(venue, tmp_path, keys):
    broker = build(venue, tmp_path, keys, risk={"max_notional_usdt": 1000.0})
    with pytest.raises(OrderRejectedError, match="max_notional_usdt 1000"):
        broker.submit(entry("sigX", 0.02))  # 1,200 USDT
    broker.submit(entry("sigY", 0.015))  # 900 USDT
    assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(0.015)


@pytest.mark.parametrize(("demo", "host"), [(True, "https://demo-fapi.binance.com/"),
                                             (False, "https://fapi.binance.com/")])
def test_demo_trading_flag_reaches_ccxt(tmp_path, keys, demo, host):
    settings = live_settings(tmp_path, demo_trading=demo)
    exchange = make_ccxt_client(settings, keys, rest_url=None)
    for name in ("fapiPublic", "fapiPrivate", "fapiPrivateV2"):
        assert exchange.urls["api"][name].startswith(host), exchange.urls["api"][name]
    assert exchange.timeout == settings.live.request_timeout_ms
    assert exchange.options["fetchCurrencies"] is False


def test_demo_trading_with_a_loopback_url_keeps_the_paths(tmp_path, keys):
    settings = live_settings(tmp_path, demo_trading=True)
    exchange = make_ccxt_client(settings, keys, rest_url="http://127.0.0.1:9")
    assert exchange.urls["api"]["fapiPrivate"] == "http://127.0.0.1:9/fapi/v1"
    assert exchange.urls["api"]["fapiPrivateV2"] == "http://127.0.0.1:9/fapi/v2"


def test_daily_realised_pnl_counts_todays_fills_against_their_positions(tmp_path):
    """Hand-checked: today's exits of a long and a short against their entries, every fill's
    fee (an entry's too); yesterday's fills are not counted; a fill at 00:00 UTC is; a restart
    (a new LiveState on the same store) reads the same total."""
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    day_ms = 20_000 * DAY_MS
    state = LiveState(url)
    state.open_position("L", SYMBOL, 0.0, 60000.0, 59000.0, day_ms - 10)  # closed since
    state.open_position("S", SYMBOL, 0.2, 61000.0, 62000.0, day_ms - 5, side=PositionSide.SHORT)
    for trade_id, signal_id, ts_ms, price, qty, fee, purpose in (
            ("1", "L", day_ms - 10, 60000.0, 0.1, 2.0, "entry"),   # yesterday: not counted
            ("2", "L", day_ms - 1, 60500.0, 0.05, 1.0, "tp1"),     # yesterday: not counted
            ("3", "L", day_ms, 59000.0, 0.05, 1.5, "stop"),        # -50 - 1.5
            ("4", "S", day_ms + 5, 61000.0, 0.2, 3.0, "entry"),    # -3
            ("5", "S", day_ms + 9, 60000.0, 0.1, 1.25, "tp1")):    # +100 - 1.25
        state.record_fill(LiveFillRow(
            trade_id=trade_id, client_id=f"{signal_id}-{purpose}", signal_id=signal_id,
            symbol=SYMBOL, ts_ms=ts_ms, side="sell", price=price, qty_base=qty, fee_usdt=fee,
            is_maker=False, purpose=purpose))
    assert daily_realised_pnl_usdt(state, day_ms) == pytest.approx(-50 - 1.5 - 3 + 100 - 1.25)
    assert daily_realised_pnl_usdt(state, day_ms + DAY_MS) == 0.0
    state.close()
    restarted = LiveState(url)
    assert daily_realised_pnl_usdt(restarted, day_ms) == pytest.approx(44.25)
    restarted.close()
