"""Assemble a ready LiveBroker: ccxt client, gateway, state, margin mode and leverage, first
reconciliation. The CLI and the tests build it the same way (tests pass a loopback rest_url)."""

from __future__ import annotations

import time
from collections.abc import Callable

import ccxt

from cryptobot.brokers.live import LiveBroker, StepHook
from cryptobot.brokers.live_gateway import OrderGateway
from cryptobot.brokers.live_state import LiveState
from cryptobot.brokers.reconcile import ReconcileReport, reconcile
from cryptobot.clock import Clock
from cryptobot.config import Settings
from cryptobot.secrets import ApiKeys


def make_ccxt_client(settings: Settings, keys: ApiKeys, rest_url: str | None) -> ccxt.Exchange:
    """A sync ccxt client with our keys; rest_url rewrites every REST base to a loopback host."""
    exchange = getattr(ccxt, settings.market.exchange)({
        "apiKey": keys.key, "secret": keys.secret, "enableRateLimit": True,
        "timeout": settings.live.request_timeout_ms,
        # the spot wallet's currency list needs other permissions and is not used here
        "options": {"fetchCurrencies": False, "defaultType": "swap"},
    })
    if settings.live.demo_trading:
        exchange.enable_demo_trading(True)
    if rest_url:
        base = rest_url.rstrip("/")
        for name, url in list(exchange.urls["api"].items()):
            if isinstance(url, str) and "://" in url:
                exchange.urls["api"][name] = base + "/" + url.split("://", 1)[1].split("/", 1)[1]
    return exchange


def build_live_broker(settings: Settings, keys: ApiKeys, clock: Clock,
                      rest_url: str | None = None, on_step: StepHook | None = None,
                      sleep: Callable[[float], None] = time.sleep,
                      ) -> tuple[LiveBroker, ReconcileReport]:
    exchange = make_ccxt_client(settings, keys, rest_url or settings.feed.rest_url)
    working_type = "MARK_PRICE" if settings.costs.stop_trigger == "mark" else "CONTRACT_PRICE"
    gateway = OrderGateway(exchange, working_type, settings.live.retry_attempts,
                           settings.live.retry_base_delay_s, sleep=sleep)
    gateway.load_markets()
    state = LiveState(settings.live.state_url)
    broker = LiveBroker(gateway, state, settings, clock, on_step=on_step)
    symbol = settings.market.symbol
    if not any(p.symbol == symbol for p in state.positions()):
        gateway.setup_symbol(symbol, settings.live.margin_mode, settings.live.leverage)
    broker.equity_usdt = gateway.balance_usdt()
    report = reconcile(broker)
    return broker, report
