"""The venue's trade list can lag its order status: an entry already FILLED whose trades GET
userTrades does not list yet. A reconciliation in that moment (e.g. the routine one, right after
a candle's orders are out) must take the venue's position for the bot's own entry, not for an
unknown one to adopt beside it (which gave two positions and a second stop for one 0.01 BTC),
and the entry's fills must still be read once the list has caught up.
"""

from __future__ import annotations

import pytest

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.engine.risk import KillSwitch
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from tests.live.conftest import VenueClock, live_settings

MINUTE_MS = 60_000


def _started_broker(tmp_path, venue, keys, adopt: bool):
    """A live broker on the fake venue, past the start's reconciliation."""
    settings = live_settings(tmp_path, adopt_unknown_positions=adopt)
    broker, _ = build_live_broker(settings, keys, VenueClock(venue.state),
                                  KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=lambda s: None,
                                  rate_limit=False)
    broker.bind(lambda fill: None, lambda *args, **fields: None)
    broker.on_timer()
    return broker


@pytest.mark.parametrize("adopt", [True, False])
def test_a_filled_entry_whose_trades_are_not_listed_yet_is_not_an_unknown_position(
        tmp_path, venue, keys, adopt):
    broker = _started_broker(tmp_path, venue, keys, adopt)
    venue.state.user_trades_lag_ms = 5 * MINUTE_MS
    broker.submit(OrderIntent("sig7-entry", "BTC/USDT:USDT", Side.BUY, OrderType.MARKET, 0.01,
                              OrderPurpose.ENTRY, stop_price=59000.0))
    assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(0.01)
    broker.reconcile_soon()
    broker.on_timer()  # the entry is FILLED on the venue, its trade not listed
    report = broker.reconcile()  # and once more, the entry ended in the store now

    assert report.unknown_positions == [] and report.adopted == []
    assert broker.state.positions() == []
    venue.state.user_trades_lag_ms = 0  # the trade list catches up
    broker.on_timer(poll=True, routine=False)
    positions = broker.state.positions()
    assert [(p.signal_id, p.qty_base, p.adopted) for p in positions] == [("sig7", 0.01, False)]
    assert positions[0].stop_price == 59000.0


def test_a_position_beside_an_entry_ended_long_ago_is_still_unknown(tmp_path, venue, keys):
    """Only a recent entry vouches for the venue's position (the lag is minutes, not hours)."""
    broker = _started_broker(tmp_path, venue, keys, adopt=False)
    venue.state.user_trades_lag_ms = 24 * 60 * MINUTE_MS  # its trades never listed
    broker.submit(OrderIntent("sig7-entry", "BTC/USDT:USDT", Side.BUY, OrderType.MARKET, 0.01,
                              OrderPurpose.ENTRY, stop_price=59000.0))
    broker.reconcile()
    VenueClock(venue.state).sleep(3600)
    report = broker.reconcile()
    assert report.unknown_positions == [("BTC/USDT:USDT", pytest.approx(0.01))]
