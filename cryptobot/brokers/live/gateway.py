"""The exchange-facing half of the live broker: idempotent order placement on ccxt binanceusdm.

A send that times out may still have reached the venue. Binance keeps client ids unique only
among OPEN orders, so blindly resending a market order whose first copy already filled would
open a second position. `place` therefore looks the client id up on the exchange after every
doubtful failure (a timeout, 5xx, -1007, 503 "Unknown error"), and only resends when the venue
has never seen it; a refusal the venue made before executing anything (429, a 418 ban, -1008
overload) is resent after the wait the venue asks for. When the look-up fails too, the outcome
is unknown, and `place` says so (TemporaryExchangeError), never that the order was refused.

The venue's waits (a 429's Retry-After, a 418 ban) hold every call of the gateway, not just the
one answered, and are never cut short (venue_wait.py): a short one is slept in the call, a
long one refuses calls locally (VenueWaitError: nothing sent) until it is over. Other retries
back off from `base_delay_s`, doubling; a protective order (a stop, a flatten), and the look-up
of one or of an entry whose answer was lost (it may hold a position with no stop yet), from the
shorter `protect_delay_s`: an unprotected position costs more than a few requests. Every wait
goes through the injected `sleep` and `clock`, so a simulated run never waits on the wall clock.

An order's request is written as ccxt's `create_order` writes it and sent through ccxt's own
endpoint method, its answer read directly (order_request.py); stops go to Binance's algo-order
endpoint (what ccxt uses for `stopLossPrice` on a market order), with our client id as
`clientAlgoId`. Quantities and prices are cut to the lot and tick as ccxt cuts them
(tick_rounding.py).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import ccxt

from cryptobot.brokers.live.gateway_batch import BatchPlacement
from cryptobot.brokers.live.order_request import order_request, post_order
from cryptobot.brokers.live.sent_order import LOOKED_UP_FAST, PROTECTIVE, SentOrder, sent_order
from cryptobot.brokers.live.tick_rounding import TickRounding
from cryptobot.brokers.live.venue_wait import VenueWait
from cryptobot.clock import Clock, LiveClock
from cryptobot.errors import (
    ExchangeError,
    OrderRejectedError,
    RateLimitError,
    TemporaryExchangeError,
    VenueWaitError,
)
from cryptobot.exchange.ccxt_errors import (
    DUPLICATE_CLIENT_ID_CODE,
    MAX_DELAY_S,
    binance_code,
    call_ccxt,
    is_order_not_found,
    map_ccxt_error,
    not_executed,
    retry_after_s,
    retry_delay_s,
)
from cryptobot.model import OrderIntent, OrderType

log = logging.getLogger("cryptobot.live.gateway")


class OrderGateway(BatchPlacement):
    """Place, cancel and look up orders for one ccxt exchange; every error is ours, mapped."""

    def __init__(self, exchange: ccxt.Exchange, working_type: str = "CONTRACT_PRICE",
                 attempts: int = 5, base_delay_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None,
                 clock: Clock | None = None, protect_delay_s: float | None = None) -> None:
        """`clock`: the time `sleep` moves (the venue's waits are measured on it)."""
        self.exchange = exchange
        self.rounding = TickRounding(exchange)  # ccxt's lot and tick rounding, leaner
        self.working_type = working_type
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.protect_delay_s = base_delay_s if protect_delay_s is None else protect_delay_s
        self.sleep = sleep
        self.wait = VenueWait(clock or LiveClock(), self._sleep)
        self._rng = random.Random(seed)
        self.sends = 0  # order-creating requests actually attempted (tests count them)
        # called as each order-creating request goes out (written, its answer not read yet;
        # before the send where the HTTP session cannot say): the live state's fsync
        self.on_request_out: Callable[[], None] | None = None
        # called before any wait (a back-off, the venue's Retry-After, the request budget):
        # live, what the event so far caused is stored and logged before the bot blocks
        self.before_sleep: Callable[[], None] | None = None

    def _sleep(self, seconds: float) -> None:
        if self.before_sleep is not None:
            self.before_sleep()
        self.sleep(seconds)

    def _retry(self, action: str, fn: Callable[[], Any], order: bool = False,
               base_delay_s: float | None = None) -> Any:
        """`order`: the call sends, changes or cancels an order (or margin mode, leverage).
        A temporary error is tried again, `attempts` in all; never inside the venue's wait."""
        for attempt in range(1, self.attempts + 1):
            self.wait.before_request(action)
            try:
                return call_ccxt(action, fn, order=order)
            except VenueWaitError:
                raise  # a nested call met the venue's wait: so does this one
            except TemporaryExchangeError as exc:
                told_to_wait = self._note_wait(exc)
                if attempt == self.attempts:
                    raise type(exc)(f"{exc} (gave up after {attempt} tries)") from None
                log.warning("retry %d: %s", attempt, exc)
                if not told_to_wait:
                    self._sleep(self._backoff_s(exc, attempt, base_delay_s))
        raise AssertionError("unreachable")

    def _note_wait(self, exc: ExchangeError) -> bool:
        """A 429 or 418 that said how long to wait: every call now waits that (the next try
        included); False for anything else."""
        return isinstance(exc, RateLimitError) and self.wait.note(exc,
                                                                  retry_after_s(self.exchange))

    def _backoff_s(self, exc: ExchangeError, attempt: int, base_delay_s: float | None) -> float:
        base = self.base_delay_s if base_delay_s is None else base_delay_s
        return retry_delay_s(exc, attempt, base, MAX_DELAY_S, self._rng, None)

    def venue_wait_s(self) -> float:
        """What is left of a wait the venue imposed (0: none): calls are refused until then."""
        return self.wait.left_s()

    # --- set-up and reads ---------------------------------------------------------------

    def load_markets(self) -> None:
        self._retry("load markets", self.exchange.load_markets)

    def setup_symbol(self, symbol: str, margin_mode: str, leverage: int) -> None:
        try:
            self._retry(f"set margin mode {margin_mode} on {symbol}",
                        lambda: self.exchange.set_margin_mode(margin_mode, symbol), order=True)
        except OrderRejectedError as exc:  # -4048: a position is open; keep what it has
            log.warning("margin mode unchanged: %s", exc)
        self._retry(f"set leverage {leverage}x on {symbol}",
                    lambda: self.exchange.set_leverage(leverage, symbol), order=True)

    def position_mode_is_hedge(self) -> bool:
        """Whether the account is in hedge mode (dualSidePosition); the bot trades one-way."""
        mode = self._retry("fetch position mode", self.exchange.fetch_position_mode)
        if mode.get("hedged") is None:
            raise ExchangeError(f"fetch position mode: no dualSidePosition in {mode.get('info')}")
        return bool(mode["hedged"])

    def position_qty(self, symbol: str) -> tuple[float, float]:
        """(signed quantity, entry price) of the one-way position in `symbol` (read to close
        it: on the protective schedule)."""
        for held, qty, entry in self.all_positions(symbol, protective=True):
            if held == symbol:
                return qty, entry
        return 0.0, 0.0

    def all_positions(self, symbol: str | None = None, protective: bool = False
                      ) -> list[tuple[str, float, float]]:
        """(symbol, signed quantity, entry price) of each open one-way position (of `symbol`
        only, if given). One request: Binance's positionRisk, read as it is (ccxt's
        fetch_positions asks for the leverage brackets first, a second request)."""
        params = {} if symbol is None else {"symbol": self.exchange.market(symbol)["id"]}
        rows = self._retry("fetch positions",
                           lambda: self.exchange.fapiPrivateV3GetPositionRisk(params),
                           base_delay_s=self.protect_delay_s if protective else None)
        out = []
        for row in rows:
            qty, held = float(row.get("positionAmt") or 0.0), self.symbol_of(row.get("symbol"))
            if qty and held is not None:
                out.append((held, qty, float(row.get("entryPrice") or 0.0)))
        return out

    def open_orders(self, symbol: str) -> list[dict[str, Any]]:
        """Open regular orders and open algo (conditional) orders together."""
        regular = self._retry("fetch open orders", lambda: self.exchange.fetch_open_orders(symbol))
        return list(regular) + self.open_stops(symbol)

    def open_stops(self, symbol: str, protective: bool = False) -> list[dict[str, Any]]:
        """Open algo (conditional) orders: our stops."""
        return list(self._retry("fetch open algo orders", lambda: self.exchange.fetch_open_orders(
            symbol, params={"trigger": True}),
            base_delay_s=self.protect_delay_s if protective else None))

    def trades_since(self, symbol: str, since_ms: int) -> list[dict[str, Any]]:
        return self._retry("fetch my trades",
                           lambda: self.exchange.fetch_my_trades(symbol, since=since_ms))

    def balance_usdt(self) -> float:
        balance = self._retry("fetch balance", self.exchange.fetch_balance)
        return float((balance.get("USDT") or {}).get("total") or 0.0)

    def last_price(self, symbol: str) -> float:
        market_id = self.exchange.market(symbol)["id"]
        ticker = self._retry("fetch last price", lambda: self.exchange.fapiPublicGetTickerPrice(
            {"symbol": market_id}))
        return float(ticker["price"])

    def fetch_order_client_id(self, symbol: str, exchange_order_id: str) -> str | None:
        order = self._retry("fetch order", lambda: self.exchange.fetch_order(
            exchange_order_id, symbol))
        return order.get("clientOrderId")

    def symbol_of(self, market_id: str | None) -> str | None:
        """The venue's market id (BTCUSDT) -> ccxt's symbol (BTC/USDT:USDT); None if unknown."""
        markets = (self.exchange.markets_by_id or {}).get(market_id or "") or []
        linear = [m for m in markets if m.get("linear")] or markets
        return linear[0]["symbol"] if linear else None

    # --- rounding -----------------------------------------------------------------------

    def round_qty(self, symbol: str, qty_base: float) -> float:
        """Rounded down to the lot size; 0.0 when less than one lot. A float's error short of a
        lot is that lot (0.011 - 0.005 is 0.005999999999999999: a stop for 0.006, not 0.005),
        as the engine's `MarketRules.round_qty_down` counts it."""
        try:
            return float(self.rounding.amount(symbol, qty_base * (1 + 1e-9)))
        except ccxt.InvalidOrder:
            return 0.0

    def round_price(self, symbol: str, price: float) -> float:
        return float(self.rounding.price(symbol, price))

    def min_notional_usdt(self, symbol: str) -> float:
        limits = self.exchange.market(symbol).get("limits") or {}
        return float((limits.get("cost") or {}).get("min") or 0.0)

    # --- orders -------------------------------------------------------------------------

    def lookup(self, intent: OrderIntent) -> SentOrder | None:
        """The venue's copy of our order with this client id, or None if it never arrived."""
        params: dict[str, Any] = {"clientOrderId": intent.client_id}
        if intent.order_type is OrderType.STOP_MARKET:
            params["trigger"] = True

        def fetch():
            try:
                return self.exchange.fetch_order(None, intent.symbol, params)
            except ccxt.BaseError as exc:
                if is_order_not_found(exc):
                    return None
                raise

        found = self._retry(f"look up {intent.client_id}", fetch,
                            base_delay_s=self.protect_delay_s
                            if intent.purpose in LOOKED_UP_FAST else None)
        return None if found is None else sent_order(found, intent.client_id)

    def place(self, intent: OrderIntent) -> SentOrder:
        """Send; resend only what the venue surely has not got (see the module's docstring)."""
        try:
            request = self.order_request(intent)
        except ccxt.BaseError as exc:
            raise map_ccxt_error(exc, f"place {intent.client_id}", order=True) from None
        for attempt in range(1, self.attempts + 1):
            self.wait.before_request(f"place {intent.client_id}")
            try:
                self.sends += 1
                self._before_order_request()
                return post_order(self.exchange, intent, request)
            except ccxt.BaseError as exc:
                mapped = map_ccxt_error(exc, f"place {intent.client_id}", order=True)
                duplicate = binance_code(exc) == DUPLICATE_CLIENT_ID_CODE
                if not (duplicate or isinstance(mapped, TemporaryExchangeError)):
                    raise mapped from None
                told_to_wait = self._note_wait(mapped)
                if duplicate or not not_executed(exc):
                    found = self._look_up_after_doubt(intent, mapped)
                    if found is not None:
                        return found
                if attempt == self.attempts:
                    raise TemporaryExchangeError(
                        f"place {intent.client_id}: not placed: gave up after {attempt} "
                        f"attempts: {mapped}") from None
                self._before_resend(intent.client_id, attempt, mapped, told_to_wait,
                                    intent.purpose in PROTECTIVE)
        raise AssertionError("unreachable")

    def order_request(self, intent: OrderIntent) -> dict[str, Any]:
        """`intent`'s request, as ccxt's create_order writes it (order_request.py); a stop goes
        to the algo-order endpoint, under our client id."""
        return order_request(self.rounding, intent, self.working_type)

    def _before_resend(self, what: str, attempt: int, doubt: ExchangeError, told_to_wait: bool,
                       protective: bool) -> None:
        """The back-off before sending `what` again (none after the venue's own wait, which
        the next request's `wait.before_request` keeps)."""
        delay_s = 0.0 if told_to_wait else self._backoff_s(
            doubt, attempt, self.protect_delay_s if protective else None)
        log.warning("place %s: retry %d %s: %s", what, attempt,
                    "after the exchange's wait" if told_to_wait else f"in {delay_s:.1f} s", doubt)
        if delay_s:
            self._sleep(delay_s)

    def _before_order_request(self, batch: bool = False) -> None:
        """The next request places an order (`batch`: several): the request budget counts it
        on the order counts (not as read weight), and `on_request_out` is armed for when it is
        written."""
        budget = getattr(self.exchange, "request_budget", None)
        if budget is not None:
            budget.order_next(batch)
        hook = self.on_request_out
        if hook is None:
            return
        session = getattr(self.exchange, "session", None)
        if hasattr(session, "after_send"):
            session.after_send = hook  # LeanSession: once the request is written
        else:
            hook()

    def _look_up_after_doubt(self, intent: OrderIntent, doubt: ExchangeError
                             ) -> SentOrder | None:
        """Our order as the venue has it after a doubtful answer; None: it never arrived."""
        try:
            found = self.lookup(intent)
        except ExchangeError as exc:
            message = (f"place {intent.client_id}: outcome unknown: the answer was lost "
                       f"({doubt}) and the look-up failed too ({exc})")
            if isinstance(exc, VenueWaitError):
                raise VenueWaitError(message, exc.wait_s) from None
            raise TemporaryExchangeError(message) from None
        if found is None or found.status == "rejected":
            return None
        log.info("%s was accepted despite %s", intent.client_id, doubt)
        return found

    def cancel(self, intent: OrderIntent, exchange_order_id: str | None = None) -> bool:
        """Cancel by client id: True when our cancel took effect, False when the venue no longer
        had it open. A retry after a doubtful answer may meet "unknown order" because the first
        try went through: the order's final status then tells which it was."""
        params: dict[str, Any] = {"clientOrderId": intent.client_id}
        if intent.order_type is OrderType.STOP_MARKET:
            params["trigger"] = True
        doubted = False

        def send():
            nonlocal doubted
            try:
                self.exchange.cancel_order(exchange_order_id, intent.symbol, dict(params))
                return True
            except ccxt.BaseError as exc:
                if is_order_not_found(exc):
                    return doubted and self._was_canceled(intent)
                doubted = doubted or not not_executed(exc)
                raise

        return self._retry(f"cancel {intent.client_id}", send, order=True)

    def _was_canceled(self, intent: OrderIntent) -> bool:
        found = self.lookup(intent)
        return found is not None and found.status == "canceled"
