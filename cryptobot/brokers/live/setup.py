"""Assemble a ready LiveBroker: ccxt client, gateway, state; every stored position the venue holds
under a stop first (before anything slower); the one-way position mode checked (once for the
account); the first reconciliation over every symbol; margin mode and leverage on each of the
run's symbols; the equity. Each start step that fails for a temporary reason is tried again
before the start gives up. The CLI and the tests build it the same way (tests pass a loopback
rest_url)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cryptobot.brokers.live.broker import LiveBroker, StepHook
from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.reconcile import ReconcileReport, protect_first
from cryptobot.brokers.live.state import LiveState
from cryptobot.clock import Clock
from cryptobot.config import Settings
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import (
    ConfigError,
    ReconciliationError,
    TemporaryExchangeError,
    VenueWaitError,
)
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.secrets import ApiKeys
from cryptobot.store.live_import import import_legacy_live_state

log = logging.getLogger("cryptobot.live.setup")
T = TypeVar("T")


def make_ccxt_client(settings: Settings, keys: ApiKeys, rest_url: str | None,
                     rate_limit: bool = True) -> Any:
    """The sync ccxt client the orders go through: the shared factory plus the live options.

    `live.demo_trading` switches ccxt to the exchange's demo hosts; `rest_url` (a loopback fake
    in tests) then replaces the host of every REST endpoint, keeping the path.
    """
    # the spot wallet's currency list needs other key permissions and is not used here
    return make_exchange(settings.market.exchange, rest_url=rest_url, api_keys=keys,
                         demo_trading=settings.live.demo_trading,
                         timeout_ms=settings.live.request_timeout_ms, rate_limit=rate_limit,
                         options={"fetchCurrencies": False})


def build_live_broker(settings: Settings, keys: ApiKeys, clock: Clock, kill_switch: KillSwitch,
                      rest_url: str | None = None, on_step: StepHook | None = None,
                      sleep: Callable[[float], None] = time.sleep, rate_limit: bool = True,
                      set_up_symbols: bool = True, wait_clock: Clock | None = None,
                      ) -> tuple[LiveBroker, ReconcileReport]:
    """`set_up_symbols`: set margin mode and leverage on the run's symbols (not for
    `cryptobot kill`, which only closes). `wait_clock`: the time `sleep` moves, on which the
    venue's waits are measured (None: `clock`, the wall clock live)."""
    exchange = make_ccxt_client(settings, keys, rest_url or settings.feed.rest_url, rate_limit)
    working_type = "MARK_PRICE" if settings.costs.stop_trigger == "mark" else "CONTRACT_PRICE"
    gateway = OrderGateway(exchange, working_type, settings.live.retry_attempts,
                           settings.live.retry_base_delay_s, sleep=sleep,
                           clock=wait_clock or clock,
                           protect_delay_s=settings.live.retry_protect_delay_s)
    persist = _StartRetries(settings, sleep)
    persist("load markets", gateway.load_markets)
    import_legacy_live_state(settings.store.url, settings.logging.dir)  # an older bot's file
    state = LiveState(settings.store.url)
    broker = LiveBroker(gateway, state, settings, clock, kill_switch, on_step=on_step)
    # first: what is open gets its stop before anything else (a one-way position's stop: a
    # hedge-mode account, refused next, holds none of ours)
    first = _StartRetries(settings, sleep, settings.live.retry_protect_delay_s)(
        "protect open positions", lambda: protect_first(broker))
    if persist("read the position mode", gateway.position_mode_is_hedge):
        raise ConfigError(
            "the account is in hedge mode (dualSidePosition); the bot trades one-way mode only: "
            "switch it in Binance Futures > Preferences > Position Mode > One-way Mode "
            "(with no open positions or orders), then start again")
    report = persist("reconcile", broker.reconcile)
    report.stops_placed[:0], report.flattened[:0] = first.stops_placed, first.flattened
    held = {p.symbol for p in state.positions()}
    for symbol in settings.market.symbols if set_up_symbols else ():  # one with a position
        if symbol not in held:  # keeps its own
            persist(f"set margin mode and leverage on {symbol}",
                    lambda symbol=symbol: gateway.setup_symbol(
                        symbol, settings.live.margin_mode, settings.live.leverage))
    broker.equity_usdt = persist("read the balance", gateway.balance_usdt)
    return broker, report


class _StartRetries:
    """A start step that failed for a temporary reason (each call already retried its own
    requests) is tried again, `live.retry_attempts` times with a doubling wait, before the start
    gives up (exit code 75): a restart after a crash protects an open position sooner this way
    than through a supervisor's restart delay. A step refused because the exchange's wait (a
    ban) is not over waits it out first, uncounted: nothing can be done before, and a process
    that exited would knock on the banned door again when restarted."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None],
                 base_delay_s: float | None = None) -> None:
        """`base_delay_s`: the first wait (doubled, then doubling); `live.retry_base_delay_s`
        unless given (protection's is shorter)."""
        self.attempts = settings.live.retry_attempts
        self.base_delay_s = max(settings.live.retry_base_delay_s if base_delay_s is None
                                else base_delay_s, 0.1)
        self.sleep = sleep

    def __call__(self, what: str, step: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return step()
            except VenueWaitError as exc:
                attempt -= 1
                log.warning("start: %s waits for the exchange: %s", what, exc)
                self.sleep(exc.wait_s)
                continue
            except (TemporaryExchangeError, ReconciliationError) as exc:
                if attempt == self.attempts:
                    raise
                delay_s = min(30.0, self.base_delay_s * 2 ** attempt)
                log.warning("start: %s failed (%s); again in %.1f s", what, exc, delay_s)
                self.sleep(delay_s)
