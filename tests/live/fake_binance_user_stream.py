"""The fake venue's user data stream: listenKey REST routes and the routed private websocket
(`/private/ws?listenKey=<key>&events=A/B`), pushing the state's events to each connection.

Test controls (`UserStreamHub`, thread-safe): drop every connection, refuse new ones for a while,
expire the listenKeys (pushing `listenKeyExpired` as Binance does).
"""

from __future__ import annotations

import asyncio
import itertools
import json

from aiohttp import WSMsgType, web

from tests.live.fake_binance_state import BinanceReject, FakeExchangeState

_keys = itertools.count(1)


def _reject(exc: BinanceReject) -> web.Response:
    return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.http_status)


class UserStreamHub:
    def __init__(self, state: FakeExchangeState) -> None:
        self.state = state
        self.blocked = False  # refuse websocket handshakes (a venue-side outage)
        self.connections: list[tuple[str, asyncio.Queue, asyncio.AbstractEventLoop]] = []
        self.handshakes = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", "/fapi/v1/listenKey", self._listen_key)
        app.router.add_route("PUT", "/fapi/v1/listenKey", self._listen_key)
        app.router.add_route("DELETE", "/fapi/v1/listenKey", self._listen_key)
        app.router.add_get("/private/ws", self._private_ws)

    # --- REST: USER_STREAM security, the API key header only (no signature) -------------

    async def _listen_key(self, request: web.Request) -> web.Response:
        state = self.state
        if not request.headers.get("X-MBX-APIKEY"):
            return _reject(BinanceReject(-2014, "API-key format invalid.", 401))
        params = dict(request.query)
        if request.can_read_body:
            params.update(dict(await request.post()))
        with state.lock:
            state.requests.append((request.method, request.path))
            state.listen_key_calls.append((request.method, state.now_ms))
            if request.method == "POST":
                if state.refuse_listen_key:
                    return _reject(BinanceReject(
                        -2015, "Invalid API-key, IP, or permissions for action.", 401))
                key = next(iter(state.listen_keys), None) or f"fakeListenKey{next(_keys):04d}"
                state.listen_keys[key] = state.now_ms  # Binance returns the active key
                return web.json_response({"listenKey": key})
            key = params.get("listenKey") or next(iter(state.listen_keys), None)
            if key not in state.listen_keys:
                return _reject(BinanceReject(-1125, "This listenKey does not exist."))
            if request.method == "PUT":
                state.listen_keys[key] = state.now_ms
                return web.json_response({"listenKey": key})
            del state.listen_keys[key]
            return web.json_response({})

    # --- the private websocket ------------------------------------------------------------

    async def _private_ws(self, request: web.Request) -> web.StreamResponse:
        key = request.query.get("listenKey", "")
        events = set(request.query.get("events", "").split("/"))
        with self.state.lock:
            known = key in self.state.listen_keys
        if self.blocked or not known:
            return web.Response(status=400 if not known else 503, text="refused")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.handshakes += 1
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def listener(event: dict) -> None:
            if event["e"] in events:
                loop.call_soon_threadsafe(queue.put_nowait, event)

        entry = (key, queue, loop)
        with self.state.lock:
            self.state.listeners.append(listener)
            self.connections.append(entry)

        async def read_until_closed() -> None:
            async for message in ws:
                if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
            queue.put_nowait(None)

        reader = asyncio.create_task(read_until_closed())
        try:
            while (event := await queue.get()) is not None:
                await ws.send_str(json.dumps(event))
        finally:
            with self.state.lock:
                self.state.listeners.remove(listener)
                self.connections.remove(entry)
            reader.cancel()
            await ws.close()
        return ws

    # --- test controls (any thread) ---------------------------------------------------------

    def drop_all(self, block: bool = False) -> None:
        """Close every user-stream connection; `block` refuses new ones until `allow()`."""
        self.blocked = block
        with self.state.lock:
            for _, queue, loop in list(self.connections):
                loop.call_soon_threadsafe(queue.put_nowait, None)

    def allow(self) -> None:
        self.blocked = False

    def expire_keys(self) -> None:
        """Every listenKey expires: `listenKeyExpired` on its connections, PUT answers -1125."""
        with self.state.lock:
            expired = dict(self.state.listen_keys)
            self.state.listen_keys.clear()
            for key, queue, loop in list(self.connections):
                if key in expired:
                    event = {"e": "listenKeyExpired", "E": str(self.state.now_ms),
                             "listenKey": key}
                    loop.call_soon_threadsafe(queue.put_nowait, event)

    @property
    def open_connections(self) -> int:
        with self.state.lock:
            return len(self.connections)
