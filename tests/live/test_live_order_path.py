"""What an order waits on: the routine reconciliation runs after a candle's orders, not before
them; no write waits for an fsync (the WAL's is asked as the order goes out, on a thread of
its own); the fake venue in a process of its own
(the latency benchmark's) trades as the in-process one does."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sqlite3
import threading
from contextlib import closing

import pytest
from sqlalchemy import text

from cryptobot.brokers.live import state as state_module
from cryptobot.brokers.live.broker import LiveBroker
from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.brokers.live.state import LiveState, PlannedPosition
from cryptobot.engine.risk import KillSwitch
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.model import Candle, OrderIntent, OrderPurpose, OrderType, PositionSide, Side
from cryptobot.runners.between_events_gc import CollectBetweenEvents
from cryptobot.runners.stream_session import TradingSession
from tests.live.conftest import live_settings
from tests.live.fake_binance import FakeBinanceServer
from tests.live.fake_binance_faults import FaultPlan
from tests.live.fake_binance_process import FakeBinanceProcess
from tests.live.fake_binance_state import FakeExchangeState, VenueClock
from tests.live.loopback_live import (
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)

SYMBOL = "BTC/USDT:USDT"


def build(venue, tmp_path, keys):
    settings = live_settings(tmp_path, reconcile_interval_s=60.0)
    broker, _ = build_live_broker(settings, keys, VenueClock(venue.state),
                                  KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=lambda s: None, rate_limit=False)
    return broker


def reconciliations(venue) -> int:
    return sum(1 for _, path in venue.state.requests if path == "/fapi/v3/positionRisk")


def candle(venue) -> Candle:
    price = float(venue.state.prices["BTCUSDT"])
    return Candle(venue.state.now_ms - 300_000, 300_000, price, price, price, price, 1.0)


def test_routine_reconciliation_runs_after_the_candle_not_before_it(venue, tmp_path, keys):
    broker = build(venue, tmp_path, keys)
    venue.state.now_ms += 120_000  # the 60 s interval is over
    before = reconciliations(venue)
    broker.on_base_candle(candle(venue))  # the engine's first step: fills only
    assert reconciliations(venue) == before
    broker.on_timer()  # the session's tick once the candle's orders are out
    assert reconciliations(venue) == before + 1
    broker.on_timer()
    assert reconciliations(venue) == before + 1  # not due again


def test_reconciliation_brought_forward_or_failed_runs_before_the_candle(venue, tmp_path, keys):
    broker = build(venue, tmp_path, keys)
    before = reconciliations(venue)
    broker.reconcile_soon()  # e.g. an order whose answer was lost
    broker.on_base_candle(candle(venue))
    assert reconciliations(venue) == before + 1 and broker.ready
    venue.state.now_ms += 120_000
    broker.ready = False  # the last attempt failed: nothing may be sent until one succeeds
    broker.on_base_candle(candle(venue))
    assert reconciliations(venue) == before + 2 and broker.ready


def synchronous(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("PRAGMA synchronous")).scalar_one()


def test_no_write_waits_for_an_fsync_the_wal_is_synced_off_the_order_path(tmp_path,
                                                                          monkeypatch):
    state = LiveState(f"sqlite:///{tmp_path / 'live.sqlite'}")
    assert synchronous(state._durable) == 1  # NORMAL: the pre-send write waits on no fsync
    assert synchronous(state._engine) == 1  # NORMAL, as the run store
    synced: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((threading.current_thread().name, os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    entry = OrderIntent("sig1-entry", SYMBOL, Side.SELL, OrderType.LIMIT, 0.01,
                        OrderPurpose.ENTRY, 60000.0, time_in_force="IOC", stop_price=61000.0)
    state.record_intent(entry, "sig1", 1000, PlannedPosition(61000.0, PositionSide.SHORT))
    assert synced == []  # committed, not synced: nothing the order waits on
    state.sync_soon()  # as the order goes out
    assert state._wal_sync.wait()
    assert synced == [("wal-fsync", str(tmp_path / "live.sqlite-wal"))]
    row, planned = state.order("sig1-entry"), state.position("sig1")
    assert (row.status, float(row.qty_base), row.created_ms) == ("pending", 0.01, 1000)
    assert (planned.qty_base, planned.stop_price, planned.side) == (0.0, 61000.0,
                                                                  PositionSide.SHORT)
    state.update_order("sig1-entry", 2000, status="open", exchange_order_id="77")
    assert state.order_by_exchange_id(SYMBOL, "77").status == "open"
    assert state.order_by_exchange_id("ETH/USDT:USDT", "77") is None
    state.record_intent(entry, "sig1", 3000)  # the same id again (after a refusal): replaced
    assert [(r.status, r.created_ms) for r in state.orders()] == [("pending", 3000)]
    state.close()


def test_no_write_checkpoints_the_wal_the_session_does_between_events(tmp_path, monkeypatch):
    """A checkpoint syncs the database (milliseconds): none inside a write an order waits
    on; `checkpoint_if_due`, run between events, moves the WAL after enough writes."""
    path = tmp_path / "live.sqlite"
    state = LiveState(f"sqlite:///{path}")
    monkeypatch.setattr(state_module, "CHECKPOINT_AFTER_WRITES", 400)
    database_bytes = path.stat().st_size
    for index in range(199):  # two writes each: 398
        intent = OrderIntent(f"sig{index}-entry", SYMBOL, Side.BUY, OrderType.LIMIT, 0.01,
                             OrderPurpose.ENTRY, 30000.0)
        state.record_intent(intent, f"sig{index}", index)
        state.update_order(intent.client_id, index + 1, status="open",
                           exchange_order_id=str(index), detail="x" * 200)
    state.checkpoint_if_due()  # not due yet
    assert path.stat().st_size == database_bytes  # every page still in the WAL
    state.update_order("sig0-entry", 1000, detail="y")
    state.update_order("sig1-entry", 1000, detail="y")
    state.checkpoint_if_due()
    assert path.stat().st_size > database_bytes  # moved into the database
    assert state.order("sig198-entry").status == "open"
    state.close()


def test_the_wal_fsync_starts_once_the_order_is_out_not_before(venue, tmp_path, keys):
    broker = build(venue, tmp_path, keys)
    seen: list[str] = []
    fsync = broker.gateway.on_request_out  # the live state's sync_soon

    def out() -> None:
        seen.append("request out")
        fsync()

    broker.gateway.on_request_out = out
    broker.on_step = seen.append
    broker.submit(OrderIntent("sig9-entry", SYMBOL, Side.BUY, OrderType.LIMIT, 0.01,
                              OrderPurpose.ENTRY, 30000.0))
    assert seen == ["before_send:entry", "request out", "after_send:entry"]
    assert broker.state.order("sig9-entry").status == "open"
    assert broker.state._wal_sync.wait() and broker.state._wal_sync.syncs >= 1
    broker.state.close()


def test_the_venue_in_its_own_process_fills_and_fires_stops(keys):
    with FakeBinanceProcess(60000.0, 1_722_816_000_000) as venue:
        exchange = make_exchange("binanceusdm", rest_url=venue.base_url, api_keys=keys,
                                 rate_limit=False, options={"fetchCurrencies": False})
        bought = exchange.create_order(SYMBOL, "market", "buy", 0.01, None,
                                       {"clientOrderId": "p1-entry"})
        assert bought["status"] == "closed" and float(bought["filled"]) == 0.01
        exchange.create_order(SYMBOL, "market", "sell", 0.01, None, {
            "clientOrderId": "p1-stop1", "stopLossPrice": 59000.0, "reduceOnly": True})
        now_ms = venue.now_ms()
        venue.walk_candle(Candle(now_ms, 300_000, 60000.0, 60100.0, 58500.0, 59500.0, 1.0))
        assert venue.now_ms() == now_ms + 300_000  # the venue's clock, read without a request
        snapshot = venue.snapshot()
        assert snapshot["positions"]["BTCUSDT"]["qty"] == "0"  # the stop fired in the candle
        assert snapshot["algo_orders"][0]["algoStatus"] == "FINISHED"


RUN_TABLES = ("gate_decisions", "signals", "orders", "fills", "trades", "trade_legs",
              "equity_points", "signal_candle_chunks", "oi_samples")


def run_rows(path) -> int:
    """The rows the run store has committed (the recorder's; not the live state's)."""
    with closing(sqlite3.connect(path)) as connection:
        return sum(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                   for name in RUN_TABLES)


@pytest.fixture
def event_lines():
    """The event log's lines (records), as they are written."""
    lines: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lines.append
    events_log = logging.getLogger("cryptobot.events")
    events_log.addHandler(handler)
    level = events_log.level
    events_log.setLevel(logging.INFO)  # (setLevel: a cached "not enabled" is forgotten)
    yield lines
    events_log.removeHandler(handler)
    events_log.setLevel(level)


def while_handling(original, handling: list[tuple[int, int]], store_path, lines):
    """`original` (an event handler) noting (run rows, event lines) as the event came."""
    def wrapped(self, event):
        handling.append((run_rows(store_path), len(lines)))
        try:
            return original(self, event)
        finally:
            handling.pop()
    return wrapped


def test_the_recorder_stores_and_logs_what_a_candle_or_fill_caused_after_its_orders_are_out(
        tmp_path, keys, monkeypatch, event_lines):
    """... and no garbage collector's pass starts inside an event either: they run between
    events (runners/between_events_gc.py)."""
    settings = settings_from(write_live_config(tmp_path))
    store_path = tmp_path / "live.sqlite"
    window = load_window(settings, "2024-08-04T16:00:00Z", "2024-08-04T22:00:00Z")
    lines = event_lines
    handling: list[tuple[int, int]] = []  # (run rows, event lines) when the event came
    placed: list[tuple[tuple[int, int], tuple[int, int]]] = []  # (then, as the order goes out)
    place = OrderGateway.place

    def placing(self, intent):
        if handling:
            placed.append((handling[0], (run_rows(store_path), len(lines))))
        return place(self, intent)

    for owner, name in ((TradingSession, "handle"), (LiveBroker, "on_user_event")):
        monkeypatch.setattr(owner, name, while_handling(getattr(owner, name), handling,
                                                        store_path, lines))
    monkeypatch.setattr(OrderGateway, "place", placing)
    passes: list[tuple[int, bool]] = []  # the collector's passes: (generation, inside an event)
    collecting: list[bool] = []  # in collect_due (the session's, once the orders are out)
    collect_due = CollectBetweenEvents.collect_due

    def noting(phase: str, info: dict) -> None:
        if phase == "start":
            passes.append((info["generation"], bool(handling) and not collecting))

    def collecting_due(self) -> None:
        collecting.append(True)
        try:
            collect_due(self)
        finally:
            collecting.pop()

    monkeypatch.setattr(CollectBetweenEvents, "collect_due", collecting_due)

    server = FakeBinanceServer(FakeExchangeState([window.price_before],
                                                 now_ms=window.start_ms)).start()
    thresholds = gc.get_threshold()
    gc.set_threshold(100, 10, 1000)  # frequent passes: automatic ones would fall inside events
    gc.callbacks.append(noting)
    try:
        outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
    finally:
        gc.callbacks.remove(noting)
        gc.set_threshold(*thresholds)
        server.stop()
    assert gc.isenabled()  # as it was before the session
    assert not [found for found in passes if found[1]], "a collector pass inside an event"
    assert len(passes) > 20  # between the events, as due
    assert outcome.run.engine.trades, printed[-2000:]  # entered, protected, exited
    assert len(placed) >= 4
    assert all(before == then for before, then in placed), placed  # nothing stored in between
    assert run_rows(store_path) > placed[-1][1][0]  # and all of it stored after
    assert len(lines) > placed[-1][1][1] and any(r.event == "signal" for r in lines)


def test_what_an_event_caused_is_stored_and_logged_before_the_bot_waits_inside_it(
        tmp_path, keys, monkeypatch, event_lines):
    """The venue answers the first entry with a 503: the gateway backs off before it tries
    again. The signal's rows and lines, held while the candle is handled, are stored and
    written before that wait (a kill -9 in it loses none of them)."""
    # back-offs of 0.5 s and more, on the venue's clock (instant)
    settings = settings_from(write_live_config(tmp_path, live={"retry_base_delay_s": 0.5}))
    store_path = tmp_path / "live.sqlite"
    window = load_window(settings, "2024-08-04T16:00:00Z", "2024-08-04T22:00:00Z")
    lines, faults = event_lines, FaultPlan()
    handling: list[tuple[int, int]] = []  # (run rows, event lines) when the candle came
    waits: list[tuple[tuple[int, int], tuple[int, int]]] = []  # (then, as the wait begins)
    place, sleep = OrderGateway.place, VenueClock.sleep

    def placing(self, intent):
        if intent.purpose is OrderPurpose.ENTRY and not faults.injected:
            faults.script(["503"])  # this entry's send is refused, not carried out
        return place(self, intent)

    def sleeping(self, seconds):
        if handling:
            waits.append((handling[0], (run_rows(store_path), len(lines))))
        return sleep(self, seconds)

    monkeypatch.setattr(TradingSession, "handle", while_handling(
        TradingSession.handle, handling, store_path, lines))
    monkeypatch.setattr(OrderGateway, "place", placing)
    monkeypatch.setattr(VenueClock, "sleep", sleeping)
    server = FakeBinanceServer(FakeExchangeState([window.price_before], now_ms=window.start_ms),
                               faults).start()
    try:
        outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
    finally:
        server.stop()
    assert faults.injected == {"503": 1} and outcome.run.engine.trades, printed[-2000:]
    assert waits, "the gateway never backed off"
    (before, then), *_ = waits
    assert then[0] > before[0] and then[1] > before[1]  # the signal's rows and lines are in
    assert any(r.event == "signal" for r in lines[before[1]:then[1]])


def test_a_record_that_fails_before_a_wait_does_not_stop_the_order_waiting(
        tmp_path, keys, monkeypatch, caplog):
    """The entry's first send meets a 503; before the back-off the event's records are made,
    and the signal's row fails. The entry is still retried, filled and protected; the error is
    logged; the session goes on."""
    from cryptobot.store.sql_recorder import SqlRecorder

    settings = settings_from(write_live_config(tmp_path, live={"retry_base_delay_s": 0.5}))
    window = load_window(settings, "2024-08-04T16:00:00Z", "2024-08-04T22:00:00Z")
    faults = FaultPlan()
    place, signal = OrderGateway.place, SqlRecorder.signal
    failed: list[str] = []

    def placing(self, intent):
        if intent.purpose is OrderPurpose.ENTRY and not faults.injected:
            faults.script(["503"])
        return place(self, intent)

    def signalled(self, recorded, gate):
        if not failed:
            failed.append(recorded.signal_id)
            raise ValueError("the store could not take this row")
        return signal(self, recorded, gate)

    monkeypatch.setattr(OrderGateway, "place", placing)
    monkeypatch.setattr(SqlRecorder, "signal", signalled)
    server = FakeBinanceServer(FakeExchangeState([window.price_before], now_ms=window.start_ms),
                               faults).start()
    try:
        with caplog.at_level("ERROR", logger="cryptobot"):
            outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
    finally:
        server.stop()
    assert faults.injected == {"503": 1} and failed, printed[-2000:]
    trade = outcome.run.engine.trades[0]  # entered, protected and closed despite it
    assert trade.signal_id == failed[0] and trade.initial_stop > 0
    assert any("failed before a wait" in r.getMessage() for r in caplog.records)
