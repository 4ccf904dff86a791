"""A loopback websocket server that speaks Bybit v5's public protocol around prepared messages.

Like the venue, it streams nothing before a `subscribe` op, answers `subscribe` and `ping` with
the documented replies (tests/fixtures/bybit/*_from_bybit_docs.json), and otherwise plays the
messages through cryptobot.exchange.loopback_ws (drops, garbage, shared cursor).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from cryptobot.exchange.loopback_ws import LoopbackStreamServer
from cryptobot.model import Candle
from tests.conftest import FIXTURES_DIR

BYBIT_FIXTURES = FIXTURES_DIR / "bybit"
BYBIT_15M_CSV = FIXTURES_DIR / "dumps" / "bybit_linear_BTCUSDT_15m_2024-08-05_window.csv"


def load_bybit_15m(path: Path = BYBIT_15M_CSV, symbol: str = "BTC/USDT:USDT") -> list[Candle]:
    """Real Bybit linear BTCUSDT 15m candles (tests/fixtures/dumps), tagged with `symbol` as a
    feed yields them."""
    with path.open() as handle:
        return [Candle(int(row["open_time_ms"]), 900_000, float(row["open"]), float(row["high"]),
                       float(row["low"]), float(row["close"]), float(row["volume"]), symbol)
                for row in csv.DictReader(handle)]


def _reply(name: str) -> dict:
    return json.loads((BYBIT_FIXTURES / name).read_text())


class BybitLoopbackServer(LoopbackStreamServer):
    """`hold_until_ping`: stream nothing on a connection until the client has pinged on it."""

    def __init__(self, messages, *, hold_until_ping: bool = False, **kwargs) -> None:
        super().__init__(messages, path="/v5/public/linear", **kwargs)
        self.hold_until_ping = hold_until_ping
        self.subscriptions: list[list[str]] = []
        self.pings = 0

    async def _handle(self, ws: ServerConnection) -> None:
        ready = asyncio.Event()
        answering = asyncio.create_task(self._answer_ops(ws, ready))
        try:
            await ready.wait()
            await super()._handle(ws)
        finally:
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answering

    async def _answer_ops(self, ws: ServerConnection, ready: asyncio.Event) -> None:
        subscribed = pinged = False
        try:
            async for raw in ws:
                op = json.loads(raw)
                if op.get("op") == "subscribe":
                    self.subscriptions.append(op["args"])
                    subscribed = True
                    await ws.send(json.dumps(_reply("subscribe_reply_linear_from_bybit_docs.json")))
                elif op.get("op") == "ping":
                    self.pings += 1
                    pinged = True
                    await ws.send(json.dumps(_reply("pong_linear_from_bybit_docs.json")))
                if subscribed and (pinged or not self.hold_until_ping):
                    ready.set()
        except ConnectionClosed:
            pass
        finally:
            ready.set()  # a closed connection: let the handler finish
