"""A live run against the fake Binance on 127.0.0.1 with CRYPTOBOT_NOTIFY_URLS set to a JSON
webhook on 127.0.0.1: the entry (filled in three trades), the exit, a stop the venue refused
and a reconciliation correction arrive as messages; the webhook's URL (a secret) is nowhere in
the logs, the database or the report."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import create_engine, inspect, text

from cryptobot.heartbeat import read_heartbeats
from cryptobot.secrets import NOTIFY_URLS_ENV
from tests.live.fake_binance import FakeBinanceServer
from tests.live.fake_binance_state import FakeExchangeState
from tests.live.loopback_live import (
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)
from tests.notify.webhook import TOKEN, WebhookSink

START, END = "2024-08-04T12:00:00Z", "2024-08-04T22:00:00Z"  # the 18:15 entry inside


def _everything_stored(db_url: str) -> str:
    """Every row of every table of the store, as text."""
    engine = create_engine(db_url)
    dumped = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            dumped += [f"{table}: {row}" for row in connection.execute(
                text(f'SELECT * FROM "{table}"'))]
    engine.dispose()
    return "\n".join(dumped)


def test_a_live_run_tells_entry_exit_and_a_refused_stop_and_hides_the_url(
        tmp_path, keys, monkeypatch, run_cli):
    settings = settings_from(write_live_config(tmp_path))
    window = load_window(settings, START, END)
    state = FakeExchangeState([window.price_before], now_ms=window.start_ms)
    state.reject_next_algo_orders = 1  # the entry's first stop is refused (-4xxx)
    server = FakeBinanceServer(state, fill_parts=3, latency_ms=5,
                               timeout_ms=settings.live.request_timeout_ms).start()
    with WebhookSink() as hook:
        monkeypatch.setenv(NOTIFY_URLS_ENV, hook.url)
        try:
            outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
        finally:
            server.stop()
        messages = list(hook.messages)
    said = [f"{m['title']} | {m['message']}" for m in messages]
    [trade] = outcome.run.engine.trades
    # the entry, filled in three trades, is one message with its quantity and average price
    [entry] = [m for m in said if ": entry BTC/USDT:USDT" in m]
    assert entry.endswith(f"| long {trade.qty_base:g} @ {trade.entry_price:,.2f} in 3 fills at "
                          f"2024-08-04T18:15:00Z ({trade.signal_id}-entry)"), entry
    assert any(": exit BTC/USDT:USDT" in m for m in said), said
    assert any(": trade closed BTC/USDT:USDT" in m and f"{trade.pnl_usdt:+,.2f}" in m
               for m in said), said
    refused = f"cryptobot live run 1: protection | {trade.signal_id}: stop could not be placed"
    assert any(m.startswith(refused) for m in said), said
    assert any(": protection fallback | " in m for m in said), said  # and it was closed
    assert trade.exit_reason == "flatten"
    assert said[0].startswith("cryptobot live run 1: started")
    # the URL is a secret: not in the logs, the store (every table) or the report
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    [beat] = read_heartbeats(tmp_path / "logs")  # the live run's, finished at its end
    assert (beat.mode, beat.run_id, beat.finished) == ("live", "1", True)
    logs = "".join(path.read_text() for path in (tmp_path / "logs").glob("*"))
    assert TOKEN not in logs and TOKEN not in printed
    assert TOKEN not in _everything_stored(settings.store.url)
    report = tmp_path / "report.html"
    code, out, err = run_cli("report", "--db", settings.store.url, "--out", str(report))
    assert code == 0, err
    assert TOKEN not in report.read_text() and TOKEN not in out + err


def test_a_reconciliation_correction_is_told(venue, tmp_path, keys, monkeypatch):
    """A position on the exchange the bot did not open: the start's reconciliation reports it,
    and the trader hears it."""
    from cryptobot.brokers.live.setup import build_live_broker
    from cryptobot.clock import LiveClock
    from cryptobot.engine.risk import KillSwitch
    from cryptobot.notify import run_notifications
    from tests.live.conftest import VenueClock, live_settings

    venue.state.new_order({"symbol": "BTCUSDT", "type": "MARKET", "side": "BUY",
                           "quantity": "0.005", "newClientOrderId": "manual-1"})
    settings = live_settings(tmp_path)
    with WebhookSink() as hook:
        monkeypatch.setenv(NOTIFY_URLS_ENV, hook.url)
        with run_notifications(LiveClock(), "live run"):
            _, report = build_live_broker(settings, keys, VenueClock(venue.state),
                                          KillSwitch(settings.risk.kill_switch_file),
                                          rest_url=venue.base_url, sleep=lambda _s: None,
                                          rate_limit=False)
        said = [f"{m['title']} | {m['message']}" for m in hook.messages]
    assert report.unknown_positions == [("BTC/USDT:USDT", 0.005)]
    assert said == ["cryptobot live run: reconciliation | unknown position BTC/USDT:USDT 0.005 "
                    "on the exchange: reported and left alone (live.adopt_unknown_positions is "
                    "off)"]
