"""A 418 ban is what Binance gives a client that kept sending inside a 429's Retry-After, and
the bot never earns one; a ban it is given anyway is honoured without blocking, and protection
resumes the moment it ends.

Binance: "Repeatedly violating rate limits and/or failing to back off after receiving 429s will
result in an automated IP ban (HTTP status 418). IP bans are tracked and scale in duration for
repeat offenders, from 2 minutes to 3 days." The fake venue enforces that on its simulated
clock (tests/live/fake_binance_faults.py); the order gateway measures the waits on the same
clock (its sleeps move it), so nothing here waits on the wall clock.
"""

from __future__ import annotations

import time

import ccxt
import pytest

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.brokers.live.venue_wait import INLINE_MAX_S
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import RateLimitError, VenueWaitError
from cryptobot.exchange.ccxt_errors import retry_after_s
from tests.engine.conftest import ScriptedEntry, make_engine, path_candles
from tests.live.conftest import live_settings
from tests.live.fake_binance_faults import DRAWN_KINDS, KINDS, MAX_BAN_S, FaultPlan
from tests.live.fake_binance_state import VenueClock
from tests.live.test_fake_venue_faults import client, gateway, market_buy


def refused(exchange) -> float:
    """Call once, expecting a 418; its Retry-After."""
    with pytest.raises(ccxt.DDoSProtection, match="418"):
        exchange.fetch_balance()
    return retry_after_s(exchange)


# --- the venue: a 418 is earned, never drawn --------------------------------------------------


def test_a_call_inside_a_429s_wait_earns_a_ban_that_grows_with_each_offence(venue, keys):
    exchange, faults, clock = client(venue, keys), venue.faults, VenueClock(venue.state)
    faults.retry_after_s = 2
    faults.script(["429"])
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        exchange.fetch_balance()
    assert refused(exchange) == 120.0  # 50 ms later: not backing off is a ban
    assert (faults.early_requests, faults.bans) == (1, 1)
    clock.sleep(60)
    assert refused(exchange) == 60.0  # refused again for what is left of it
    assert (faults.early_requests, faults.bans) == (2, 1)
    clock.sleep(60)
    exchange.fetch_balance()  # over
    faults.script(["429"])
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        exchange.fetch_balance()
    clock.sleep(2)
    exchange.fetch_balance()  # a client that waits the Retry-After out is not banned
    faults.script(["429"])
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        exchange.fetch_balance()
    assert refused(exchange) == 240.0  # a repeat offender: twice as long
    faults.bans = 20
    clock.sleep(240)
    faults.script(["429"])
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        exchange.fetch_balance()
    assert refused(exchange) == MAX_BAN_S  # at most 3 days
    assert faults.injected == {"429": 4, "418": 3}  # every 418 earned


def test_a_418_is_never_drawn_at_random():
    assert "418" in KINDS and "418" not in DRAWN_KINDS
    with pytest.raises(ValueError, match="418 ban is not drawn at random"):
        FaultPlan(rate=0.2, kinds=("429", "418"))


# --- the gateway obeys every wait, for every call ---------------------------------------------


def test_a_429_on_a_last_try_holds_the_next_call_of_any_kind(venue, keys):
    """The wait is the IP's: a 429 that ends a read (no tries left) holds the order sent next,
    which goes out once the Retry-After is over, not inside it (that would earn a ban)."""
    gate, sleeps = gateway(venue, keys, attempts=1)
    venue.faults.script(["429"])
    with pytest.raises(RateLimitError):
        gate.balance_usdt()
    sent = gate.place(market_buy("after-429"))
    assert sent.status == "filled" and sleeps == [1.0]
    assert (venue.faults.early_requests, venue.faults.bans) == (0, 0)


def test_a_ban_is_refused_locally_until_it_ends_and_the_call_never_sleeps_it(venue, keys):
    gate, sleeps = gateway(venue, keys)
    clock = VenueClock(venue.state)
    venue.faults.script(["418"])  # given a ban (120 s): honoured, never slept in the call
    started = time.perf_counter()
    with pytest.raises(VenueWaitError, match="IP ban lasts until") as caught:
        gate.place(market_buy("banned"))
    assert time.perf_counter() - started < 2.0 and max(sleeps, default=0) <= INLINE_MAX_S
    assert 119 < caught.value.wait_s <= 120
    sends, requests = gate.sends, len(venue.state.requests)
    for _ in range(11):  # 110 s of the ban: every call refused here, nothing sent
        clock.sleep(10)
        with pytest.raises(VenueWaitError):
            gate.balance_usdt()
        with pytest.raises(VenueWaitError):
            gate.place(market_buy("banned"))
    assert (gate.sends, len(venue.state.requests)) == (sends, requests)
    assert gate.venue_wait_s() == pytest.approx(caught.value.wait_s - 110, abs=0.2)
    clock.sleep(gate.venue_wait_s())  # ... and calls go out again the moment it is over
    assert gate.venue_wait_s() == 0
    assert gate.place(market_buy("banned")).status == "filled"
    assert (venue.faults.early_requests, venue.faults.bans) == (0, 1)


# --- protection through a ban: the engine and the live broker ---------------------------------


def test_protection_resumes_the_moment_a_ban_on_its_stop_ends(venue, keys, tmp_path):
    """A ban falls on the entry's first stop: while it lasts nothing is sent (the position is
    unprotected: no client can place a stop then) and the event loop is never held; once it
    is over the stop goes on at the first timer tick, then the take-profits."""
    settings = live_settings(tmp_path)
    settings = settings.model_copy(update={
        "market": settings.market.model_copy(update={"base_timeframe": "5m"}),
        "risk": settings.risk.model_copy(update={"volatility_scaling": False})})
    state, clock, sleeps = venue.state, VenueClock(venue.state), []
    state.set_price_scripted(60000.0)

    def ban_the_first_stop(step: str) -> None:
        if step == "before_send:stop" and not venue.faults.bans:
            venue.faults.script(["418"])

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    broker, _ = build_live_broker(settings, keys, clock, KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=sleep,
                                  on_step=ban_the_first_stop, rate_limit=False)
    strategy = ScriptedEntry(settings, settings.market.symbol)
    strategy.stop_price = 59000.0
    engine, _, _ = make_engine(settings, strategy=strategy, broker=broker, clock=clock)
    for candle in path_candles([(60000.0, 60010.0, 59990.0, 60000.0)] * 3,
                               start_ms=state.now_ms - state.now_ms % 900_000 + 900_000):
        state.walk_candle(candle.ts_open_ms, candle.ts_close_ms, candle.open, candle.high,
                          candle.low, candle.close)
        engine.on_base_candle(candle)  # the third closes the first 15m candle: the entry
    [(banned_ms, until_ms, kind)] = venue.faults.waits
    assert kind == "418" and until_ms - banned_ms == 120_000
    assert float(state.position("BTCUSDT").qty) > 0 and state.open_algo_orders() == []
    sends = broker.gateway.sends
    while clock.now_ms() < until_ms + 5_000:  # the live runner's timer, once a second
        clock.sleep(1.0)
        if clock.now_ms() < until_ms:
            assert broker.gateway.sends == sends  # nothing sent inside the ban
        broker.on_timer()
        engine.on_time()
    covered_ms = next(t for t, qty, cover in state.protection_log
                      if t >= until_ms and qty > 0 and cover >= qty - 1e-9)
    assert covered_ms - until_ms <= 2_000  # the first tick after it (and a few requests)
    assert (venue.faults.early_requests, venue.faults.bans) == (0, 1)
    assert max(sleeps, default=0) <= INLINE_MAX_S  # the ban was never slept in a call
    assert {o["clientOrderId"].rsplit("-", 1)[1] for o in state.open_orders()} == {"tp1", "tp2"}
    assert engine._trade.stop_covers()


def test_the_fake_counts_a_ban_once_not_its_early_calls_as_faults(venue, keys):
    """An earned ban shows in `injected` as one 418; calls refused inside it do not add."""
    exchange = client(venue, keys)
    venue.faults.script(["429"])
    with pytest.raises(ccxt.DDoSProtection):
        exchange.fetch_balance()
    for _ in range(3):
        refused(exchange)
    assert venue.faults.injected == {"429": 1, "418": 1} and venue.faults.early_requests == 3


def test_a_start_met_by_a_ban_waits_it_out_and_then_starts(venue, keys, tmp_path):
    """A process that gave up (exit 75) would be restarted into the ban and knock again: the
    start waits it out (on the venue's clock here), sending nothing meanwhile."""
    settings, clock, sleeps = live_settings(tmp_path), VenueClock(venue.state), []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    venue.faults.script(["418"])  # the first private call: the position-mode read
    broker, _ = build_live_broker(settings, keys, clock, KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=sleep, rate_limit=False)
    assert broker.ready and broker.equity_usdt > 0
    assert max(sleeps) == pytest.approx(120.0, abs=0.1)  # the ban, once, between two tries
    assert (venue.faults.early_requests, venue.faults.bans) == (0, 1)
