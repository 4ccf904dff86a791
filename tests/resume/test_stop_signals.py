"""SIGTERM and SIGHUP end a paper or live run as Ctrl-C does: the session stops between two
events, the run is finished and summarised. Signals are real (sent to this process) and sent
only while the handler under test is installed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

from cryptobot.runners.stream_session import (
    TradingSession,
    stop_on_signals,
    stop_signals_interrupt,
)
from cryptobot.store import open_store
from tests.live.conftest import keys  # noqa: F401 - a fixture
from tests.live.fake_binance import FakeBinanceServer
from tests.live.fake_binance_state import FakeExchangeState
from tests.live.loopback_live import (
    load_window,
    run_loopback_session,
    settings_from,
    write_live_config,
)


def test_sigterm_cancels_a_session_waiting_on_a_quiet_stream():
    heard = []
    before = signal.getsignal(signal.SIGTERM)

    async def quiet_stream() -> None:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.sleep(30)

    assert asyncio.run(stop_on_signals(quiet_stream(), heard.append)) == "SIGTERM"
    assert heard == ["SIGTERM"] and signal.getsignal(signal.SIGTERM) == before


def test_a_busy_session_is_told_to_stop_after_its_event_and_ends_normally():
    heard: list[str] = []

    async def busy_stream() -> None:
        os.kill(os.getpid(), signal.SIGHUP)
        while not heard:  # handling events; it stops itself once told
            # the cancellation is lost, as Python 3.11's wait_for may lose it with a message
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)

    assert asyncio.run(stop_on_signals(busy_stream(), heard.append)) == "SIGHUP"
    assert heard == ["SIGHUP"]


def test_outside_the_event_loop_a_stop_signal_interrupts_as_ctrl_c_does():
    before = signal.getsignal(signal.SIGHUP)
    with pytest.raises(KeyboardInterrupt, match="SIGHUP"), stop_signals_interrupt():
        os.kill(os.getpid(), signal.SIGHUP)
    assert signal.getsignal(signal.SIGHUP) == before


def test_sigterm_stops_a_live_session_which_is_summarised_with_its_stop_in_place(
        tmp_path, keys, monkeypatch):  # noqa: F811 - the fixture
    settings = settings_from(write_live_config(tmp_path))
    window = load_window(settings, "2024-08-04T00:00:00Z", "2024-08-04T22:00:00Z")
    handle = TradingSession.handle

    def handle_then_signal(session: TradingSession, event) -> None:
        handle(session, event)
        engines = getattr(session.engine, "engines", None)  # an Engine, or a Portfolio
        if any(engine.open_position(None) is not None
               for engine in (engines.values() if engines else [session.engine])):
            os.kill(os.getpid(), signal.SIGTERM)  # the first event with the position open

    monkeypatch.setattr(TradingSession, "handle", handle_then_signal)
    server = FakeBinanceServer(FakeExchangeState([window.price_before],
                                                 now_ms=window.start_ms)).start()
    try:
        outcome, printed = asyncio.run(run_loopback_session(settings, keys, window, server))
        state = server.state
        assert outcome.stopped_by == "SIGTERM"
        assert "live run stopped (SIGTERM)" in printed
        held = outcome.summary["open_position"]
        assert held is not None and outcome.summary["stopped_early"] == "SIGTERM"
        # left protected: its stop works on the exchange, the position is the state's
        assert float(state.position("BTCUSDT").qty) == pytest.approx(held["qty"])
        assert [o["clientAlgoId"] for o in state.open_algo_orders()] == [
            f"{held['signal_id']}-stop1"]
    finally:
        server.stop()
    store = open_store(settings.store.url)
    summary = store.summary(store.resolve_run(None))
    store.close()
    assert summary["stopped_early"] == "SIGTERM" and summary["stopped_ms"] < window.end_ms
