"""Binance USD-M user data stream: our order and fill updates as they happen.

- A listenKey from REST (`POST /fapi/v1/listenKey` through ccxt), kept alive with a PUT every
  30 minutes of the injected clock (Binance drops a key 60 minutes after its last PUT);
- the routed private endpoint, ws mode: `wss://fstream.binance.com/private/ws?listenKey=<key>
  &events=ORDER_TRADE_UPDATE/ALGO_UPDATE` (Binance's 2026 URL split; the legacy unrouted
  `/ws/<listenKey>` is retired on 2026-04-23);
- reconnects with jittered exponential backoff; `listenKeyExpired` (or a PUT the venue refuses)
  -> a new key and a new connection; `on_reconnect` runs after every connection but the first,
  so the caller can catch up by REST on what the gap may have hidden;
- `ORDER_TRADE_UPDATE` with execution type TRADE -> `StreamFill`; other execution types ->
  `OrderUpdate`; `ALGO_UPDATE` (conditional orders: NEW, TRIGGERING, TRIGGERED, FINISHED,
  CANCELED, EXPIRED, REJECTED) -> `AlgoUpdate`. Malformed messages are counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ccxt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from cryptobot.clock import Clock
from cryptobot.errors import CryptobotError
from cryptobot.exchange.ccxt_errors import binance_code, map_ccxt_error
from cryptobot.exchange.feed import MalformedMessageError
from cryptobot.secrets import register_secret

log = logging.getLogger("cryptobot.exchange.user_stream")

BINANCE_PRIVATE_WS = "wss://fstream.binance.com/private/ws"
# Demo trading: ccxt's demo USD-M stream host with the same routed path (not verified live).
BINANCE_DEMO_PRIVATE_WS = "wss://fstream.binancefuture.com/private/ws"
USER_EVENTS = ("ORDER_TRADE_UPDATE", "ALGO_UPDATE")
KEEPALIVE_MS = 30 * 60_000
UNKNOWN_LISTEN_KEY_CODE = -1125  # "This listenKey does not exist."


@dataclass(frozen=True)
class StreamFill:
    """One execution of one of the account's orders (`x` == TRADE)."""

    market_id: str  # s, e.g. BTCUSDT
    client_id: str  # c
    exchange_order_id: str  # i
    trade_id: str  # t (the same id REST userTrades gives)
    side: str  # buy / sell
    price: float  # L, last filled price
    qty_base: float  # l, last filled quantity
    fee: float  # n
    fee_asset: str  # N
    is_maker: bool  # m
    reduce_only: bool  # R
    order_status: str  # X after this fill: PARTIALLY_FILLED / FILLED
    order_type: str  # ot, the original type (STOP_MARKET for a fired stop's market order)
    ts_ms: int  # o.T, the trade time
    event_ms: int  # E


@dataclass(frozen=True)
class OrderUpdate:
    """Any other order event: NEW, CANCELED, EXPIRED, CALCULATED (liquidation), AMENDMENT..."""

    market_id: str
    client_id: str
    exchange_order_id: str
    execution_type: str  # x
    order_status: str  # X
    event_ms: int


@dataclass(frozen=True)
class AlgoUpdate:
    """A conditional (algo) order's lifecycle step."""

    market_id: str  # s
    client_algo_id: str  # caid
    algo_id: str  # aid
    status: str  # X
    order_type: str  # o, e.g. STOP_MARKET
    side: str  # buy / sell
    qty_base: float  # q
    trigger_price: float  # tp
    actual_order_id: str | None  # ai: the market order it spawned, once triggered
    filled_qty: float  # aq (0 before it fills)
    avg_price: float  # ap
    reason: str  # rm, a reject or expiry reason when given
    event_ms: int  # E


@dataclass(frozen=True)
class ListenKeyExpired:
    event_ms: int


UserEvent = StreamFill | OrderUpdate | AlgoUpdate | ListenKeyExpired


def parse_user_message(raw: str | bytes | dict) -> UserEvent | None:
    """One message (raw or in the combined-stream envelope) -> an event; None for events we do
    not use (ACCOUNT_UPDATE, TRADE_LITE, ...). Raises MalformedMessageError."""
    try:
        message = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        data = message.get("data", message) if isinstance(message, dict) else None
        if not isinstance(data, dict):
            raise MalformedMessageError(f"not a JSON object: {str(raw)[:80]!r}")
        kind = data.get("e")
        if kind == "ORDER_TRADE_UPDATE":
            return _order_event(data)
        if kind == "ALGO_UPDATE":
            return _algo_event(data)
        if kind == "listenKeyExpired":
            return ListenKeyExpired(int(data["E"]))
        return None
    except MalformedMessageError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessageError(f"{type(exc).__name__}: {exc}") from None


def _side(text: str) -> str:
    if text not in ("BUY", "SELL"):
        raise MalformedMessageError(f"side {text!r}")
    return text.lower()


def _order_event(data: dict) -> StreamFill | OrderUpdate:
    order = data["o"]
    if order["x"] == "TRADE":
        return StreamFill(
            market_id=order["s"], client_id=order["c"], exchange_order_id=str(order["i"]),
            trade_id=str(order["t"]), side=_side(order["S"]), price=float(order["L"]),
            qty_base=float(order["l"]), fee=float(order.get("n") or 0.0),
            fee_asset=order.get("N") or "", is_maker=bool(order["m"]),
            reduce_only=bool(order["R"]), order_status=order["X"],
            order_type=order.get("ot") or order["o"], ts_ms=int(order["T"]),
            event_ms=int(data["E"]))
    return OrderUpdate(order["s"], order["c"], str(order["i"]), order["x"], order["X"],
                       int(data["E"]))


def _algo_event(data: dict) -> AlgoUpdate:
    algo = data["o"]
    return AlgoUpdate(
        market_id=algo["s"], client_algo_id=algo["caid"], algo_id=str(algo["aid"]),
        status=algo["X"], order_type=algo["o"], side=_side(algo["S"]),
        qty_base=float(algo["q"]), trigger_price=float(algo["tp"]),
        actual_order_id=str(algo["ai"]) if algo.get("ai") else None,
        filled_qty=float(algo.get("aq") or 0.0), avg_price=float(algo.get("ap") or 0.0),
        reason=algo.get("rm") or "", event_ms=int(data["E"]))


@dataclass
class UserStreamStats:
    messages: int = 0
    fills: int = 0
    order_updates: int = 0
    algo_updates: int = 0
    ignored: int = 0
    malformed: int = 0
    handler_errors: int = 0
    connects: int = 0
    disconnects: int = 0
    listen_keys: int = 0
    keepalives: int = 0
    keepalive_errors: int = 0
    expired: int = 0


class BinanceUserStream:
    """`rest`: an async ccxt binanceusdm client with the account's keys; `on_event` gets every
    parsed event (sync, on the event loop); `on_reconnect` runs after each re-connection."""

    def __init__(self, rest: Any, clock: Clock, on_event: Callable[[UserEvent], None],
                 on_reconnect: Callable[[], None] = lambda: None, url: str = BINANCE_PRIVATE_WS,
                 keepalive_ms: int = KEEPALIVE_MS, check_interval_s: float = 1.0,
                 min_backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 ping_interval_s: float | None = 20.0) -> None:
        self.rest, self.clock, self.url = rest, clock, url
        self.on_event, self.on_reconnect = on_event, on_reconnect
        self.keepalive_ms, self.check_interval_s = keepalive_ms, check_interval_s
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self.ping_interval_s = ping_interval_s
        self.stats = UserStreamStats()
        self.connected = False  # True while events flow: the broker may skip REST polling
        self._listen_key: str | None = None
        self._key_alive_since_ms = 0
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task] = []
        self._rng = random.Random()

    # --- listenKey --------------------------------------------------------------------

    async def new_listen_key(self) -> None:
        """POST listenKey; raises a CryptobotError (mapped from ccxt) when refused."""
        try:
            answer = await self.rest.fapiPrivatePostListenKey()
        except ccxt.BaseError as exc:
            raise map_ccxt_error(exc, "get a user-stream listenKey") from None
        key = (answer or {}).get("listenKey")
        if not key:
            raise MalformedMessageError("listenKey answer without a listenKey")
        register_secret(key)  # anyone holding it can read the account's stream
        self._listen_key, self._key_alive_since_ms = key, self.clock.now_ms()
        self.stats.listen_keys += 1

    async def keep_alive_if_due(self) -> bool:
        """PUT the listenKey when `keepalive_ms` of the clock have passed; True if sent."""
        if self._listen_key is None or \
                self.clock.now_ms() - self._key_alive_since_ms < self.keepalive_ms:
            return False
        try:
            await self.rest.fapiPrivatePutListenKey({"listenKey": self._listen_key})
        except ccxt.BaseError as exc:
            self.stats.keepalive_errors += 1
            log.warning("user stream keepalive failed: %s", map_ccxt_error(exc, "keepalive"))
            if binance_code(exc) == UNKNOWN_LISTEN_KEY_CODE:
                await self._renew()
            return False
        self._key_alive_since_ms = self.clock.now_ms()
        self.stats.keepalives += 1
        return True

    async def _renew(self) -> None:
        """Drop the key and the connection; the run loop gets a new key and reconnects."""
        self._listen_key = None
        if self._ws is not None:
            await self._ws.close()

    # --- running ----------------------------------------------------------------------

    async def start(self) -> None:
        """Get the first listenKey (raises if refused), then run in background tasks."""
        await self.new_listen_key()
        self._tasks = [asyncio.create_task(self._run(), name="user-stream"),
                       asyncio.create_task(self._keepalive_loop(), name="user-stream-keepalive")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.connected = False
        if self._listen_key is not None:
            with contextlib.suppress(ccxt.BaseError):
                await self.rest.fapiPrivateDeleteListenKey({"listenKey": self._listen_key})
            self._listen_key = None

    def connect_url(self) -> str:
        return f"{self.url}?listenKey={self._listen_key}&events={'/'.join(USER_EVENTS)}"

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval_s)
            try:
                await self.keep_alive_if_due()
            except CryptobotError as exc:
                log.warning("user stream keepalive: %s", exc)

    async def _run(self) -> None:
        failures = 0
        loopback = self.url.startswith(("ws://127.0.0.1", "ws://localhost"))
        while True:
            expired = False
            try:
                if self._listen_key is None:
                    await self.new_listen_key()
                async with connect(self.connect_url(), proxy=None if loopback else True,
                                   ping_interval=self.ping_interval_s,
                                   open_timeout=10) as ws:
                    self._ws, self.connected = ws, True
                    self.stats.connects += 1
                    failures = 0
                    if self.stats.connects > 1:
                        log.info("user stream reconnected; catching up by REST")
                        self._call(self.on_reconnect)
                    async for raw in ws:
                        if self._handle(raw):
                            expired = True  # a new key, a new connection, no waiting
                            break
                if not expired:
                    failures += 1  # the venue closed it: back off before the next try
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError,
                    CryptobotError) as exc:
                failures += 1
                log.warning("user stream down (%s: %s); REST polling meanwhile",
                            type(exc).__name__, exc)
            finally:
                if self.connected:
                    self.stats.disconnects += 1
                self._ws, self.connected = None, False
            if failures:
                await asyncio.sleep(self._backoff_s(failures))

    def _backoff_s(self, failures: int) -> float:
        ceiling = min(self.max_backoff_s, self.min_backoff_s * 2 ** (failures - 1))
        return ceiling * (0.5 + self._rng.random() / 2)

    def _handle(self, raw: str | bytes) -> bool:
        """Parse and dispatch one message; True when the listenKey expired."""
        self.stats.messages += 1
        try:
            event = parse_user_message(raw)
        except MalformedMessageError as exc:
            self.stats.malformed += 1
            log.warning("malformed user-stream message #%d: %s", self.stats.malformed, exc)
            return False
        if event is None:
            self.stats.ignored += 1
            return False
        if isinstance(event, ListenKeyExpired):
            self.stats.expired += 1
            log.warning("user stream listenKey expired; getting a new one")
            self._listen_key = None
            return True
        if isinstance(event, StreamFill):
            self.stats.fills += 1
        elif isinstance(event, AlgoUpdate):
            self.stats.algo_updates += 1
        else:
            self.stats.order_updates += 1
        self._call(self.on_event, event)
        return False

    def _call(self, handler: Callable[..., None], *args: Any) -> None:
        """A failing handler (an order the venue refused after a fill...) must not stop the
        stream: it is logged; reconciliation and the REST path repair what it left undone."""
        try:
            handler(*args)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback, stream goes on
            self.stats.handler_errors += 1
            log.exception("user-stream handler failed: %s: %s", type(exc).__name__, exc)
