"""The user data stream against the fake venue's private websocket on 127.0.0.1: fills reach the
broker as they happen; REST takes over while the stream is down and catches up after it; the
listenKey is kept alive on the injected clock and renewed when it expires."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.cli.live_run import LiveVenue, close_user_stream, open_user_stream
from cryptobot.clock import SimClock
from cryptobot.engine.risk import KillSwitch
from cryptobot.exchange.binance_user_stream import AlgoUpdate, BinanceUserStream
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.model import Candle, OrderPurpose
from tests.live.conftest import VenueClock, live_settings
from tests.live.trade_driver import TradeDriver


def build(venue, tmp_path, keys):
    settings = live_settings(tmp_path)
    broker, _ = build_live_broker(settings, keys, VenueClock(venue.state),
                                  KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=lambda s: None, rate_limit=False)
    return settings, broker


def async_rest(venue, keys):
    return make_exchange("binanceusdm", rest_url=venue.base_url, api_keys=keys,
                         async_client=True, rate_limit=False, options={"fetchCurrencies": False})


def user_trade_reads(venue) -> int:
    return sum(1 for _, path in venue.state.requests if path == "/fapi/v1/userTrades")


def candle(venue) -> Candle:
    price = float(venue.state.prices["BTCUSDT"])
    return Candle(venue.state.now_ms - 300_000, 300_000, price, price, price, price, 1.0)


async def until(condition, timeout_s: float = 5.0) -> None:
    """Wait for something the stream does in the background (fails after timeout_s)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def start_stream(venue, keys, broker, clock=None, on_reconnect=None,
                       **options) -> BinanceUserStream:
    stream = BinanceUserStream(async_rest(venue, keys), clock or VenueClock(venue.state),
                               broker.on_user_event, on_reconnect or broker.catch_up,
                               venue.user_stream_url,
                               min_backoff_s=0.01, max_backoff_s=0.05, **options)
    await stream.start()
    broker.fill_source = stream
    await until(lambda: stream.connected)
    return stream


def assert_fills_match_venue(broker, venue) -> None:
    ours = sorted(f.trade_id for f in broker.state.fills())
    assert ours == sorted(str(t["id"]) for t in venue.state.trades)  # none lost, none twice


def test_fills_arrive_by_the_stream_before_any_rest_read(venue, tmp_path, keys):
    _, broker = build(venue, tmp_path, keys)

    async def scenario():
        stream = await start_stream(venue, keys, broker)
        driver = TradeDriver(broker, "sig1", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
        driver.enter()  # the market entry's fill is read at once from its own answer
        reads = user_trade_reads(venue)
        broker.on_base_candle(candle(venue))  # stream up: the candle reads no fills by REST
        venue.state.step_scripted()
        venue.state.step_scripted()  # 61500: TP1 fills on the venue
        await until(lambda: len(driver.fills) == 2)
        assert driver.fills[1].purpose is OrderPurpose.TP1
        assert user_trade_reads(venue) == reads  # it came by the stream, no REST read ran
        [be_stop] = venue.state.open_algo_orders("BTCUSDT")  # the driver reacted at once
        assert (be_stop["clientAlgoId"], be_stop["triggerPrice"]) == ("sig1-stop2", "60000")
        venue.state.step_scripted()  # 62600: TP2
        await until(lambda: len(driver.fills) == 3)
        assert user_trade_reads(venue) == reads
        assert broker.fills_by_source == {"rest": 1, "stream": 2}
        assert broker.poll() == []  # REST sees the same trades: nothing recorded twice
        assert broker.state.positions() == [] and broker.working_orders() == ()
        assert stream.stats.fills >= 3 and stream.stats.malformed == 0
        await close_user_stream(stream, broker)
        assert ("DELETE", venue.state.now_ms) in venue.state.listen_key_calls

    asyncio.run(scenario())
    assert_fills_match_venue(broker, venue)
    assert float(venue.state.position("BTCUSDT").qty) == 0


def test_stream_outage_mid_trade_rest_takes_over_and_catches_up(venue, tmp_path, keys):
    _, broker = build(venue, tmp_path, keys)

    async def scenario():
        stream = await start_stream(venue, keys, broker)
        driver = TradeDriver(broker, "sig2", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
        driver.enter()
        venue.user_stream.drop_all(block=True)  # the venue drops us and refuses for a while
        await until(lambda: not stream.connected)
        reads = user_trade_reads(venue)
        broker.on_base_candle(candle(venue))  # stream down: candles read fills by REST
        assert user_trade_reads(venue) == reads + 1
        venue.state.step_scripted()
        venue.state.step_scripted()  # TP1 fills while nobody listens: its event is lost
        assert len(driver.fills) == 1
        venue.user_stream.allow()
        await until(lambda: len(driver.fills) == 2)  # the reconnect's REST catch-up found it
        assert stream.stats.connects == 2 and broker.fills_by_source["rest"] == 2
        venue.state.step_scripted()  # TP2, by the stream again
        await until(lambda: len(driver.fills) == 3)
        assert broker.fills_by_source == {"rest": 2, "stream": 1}
        assert [f.purpose for f in driver.fills] == [OrderPurpose.ENTRY, OrderPurpose.TP1,
                                                     OrderPurpose.TP2]
        await close_user_stream(stream, broker)

    asyncio.run(scenario())
    assert_fills_match_venue(broker, venue)
    assert venue.state.open_orders() == [] and venue.state.open_algo_orders() == []


def test_listen_key_kept_alive_on_the_clock_and_renewed_when_it_expires(venue, tmp_path, keys):
    _, broker = build(venue, tmp_path, keys)
    clock = SimClock(1_000_000)
    puts = lambda: [m for m, _ in venue.state.listen_key_calls if m == "PUT"]  # noqa: E731

    catch_ups = []

    async def scenario():
        stream = await start_stream(venue, keys, broker, clock, lambda: catch_ups.append(1),
                                    check_interval_s=0.01)
        key = next(iter(venue.state.listen_keys))
        clock.advance_to(1_000_000 + 29 * 60_000)
        assert await stream.keep_alive_if_due() is False and puts() == []
        clock.advance_to(1_000_000 + 30 * 60_000)  # the background loop sends it
        await until(lambda: len(puts()) == 1)
        clock.advance_to(1_000_000 + 59 * 60_000)
        assert await stream.keep_alive_if_due() is False  # 30 min from the last PUT, not the key
        clock.advance_to(1_000_000 + 60 * 60_000)
        await until(lambda: len(puts()) == 2)
        assert stream.stats.keepalives == 2 and list(venue.state.listen_keys) == [key]

        venue.user_stream.expire_keys()  # listenKeyExpired: a new key, a new connection
        await until(lambda: stream.stats.connects == 2 and stream.connected)
        assert stream.stats.expired == 1 and stream.stats.listen_keys == 2
        assert list(venue.state.listen_keys) != [key]
        assert catch_ups == [1]  # the broker is told to catch up by REST after the gap

        venue.state.listen_keys.clear()  # gone without an event: the PUT is refused (-1125)
        clock.advance_to(1_000_000 + 90 * 60_000)
        await until(lambda: stream.stats.connects == 3 and stream.connected)
        assert stream.stats.keepalive_errors == 1 and stream.stats.listen_keys == 3
        assert catch_ups == [1, 1]
        await close_user_stream(stream, broker)

    asyncio.run(scenario())


def test_listen_key_refused_falls_back_to_rest_polling(venue, tmp_path, keys):
    settings, broker = build(venue, tmp_path, keys)
    venue.state.refuse_listen_key = True
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    where = LiveVenue(VenueClock(venue.state), orders_rest_url=venue.base_url,
                      user_stream_url=venue.user_stream_url, rate_limit=False)
    stream = asyncio.run(open_user_stream(settings, keys, where, broker, console))
    assert stream is None and broker.fill_source is None
    assert out.getvalue().count("user data stream unavailable") == 1
    assert "REST" in out.getvalue()
    assert venue.user_stream.handshakes == 0
    driver = TradeDriver(broker, "sig3", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
    driver.enter()
    venue.state.step_scripted()
    venue.state.step_scripted()
    broker.on_base_candle(candle(venue))  # no stream: the candle reads the TP1 fill by REST
    assert [f.purpose for f in driver.fills] == [OrderPurpose.ENTRY, OrderPurpose.TP1]
    assert broker.fills_by_source == {"rest": 2}


def test_stop_that_fired_without_a_fill_is_marked_and_reconciled(venue, tmp_path, keys):
    _, broker = build(venue, tmp_path, keys)
    driver = TradeDriver(broker, "sig4", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
    driver.enter()
    [stop] = venue.state.open_algo_orders("BTCUSDT")
    broker.on_user_event(AlgoUpdate(
        "BTCUSDT", "sig4-stop1", str(stop["algoId"]), "FINISHED", "STOP_MARKET", "sell", 0.02,
        59000.0, "8999", 0.0, 0.0, "", venue.state.now_ms))
    assert broker.state.order("sig4-stop1").status == "expired"
    assert broker.algo_children["8999"] == "sig4-stop1"
    assert driver.events[-1].status == "canceled"
    broker.on_base_candle(candle(venue))  # reconciles now: a new stop protects the position
    stops = [a["clientAlgoId"] for a in venue.state.open_algo_orders("BTCUSDT")]
    assert any(cid.startswith("sig4-rstop") for cid in stops)
