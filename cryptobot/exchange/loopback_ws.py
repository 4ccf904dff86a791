"""A websocket server on 127.0.0.1 that plays prepared stream messages, like a venue would.

Messages are sent in order from one cursor shared by every connection: a client that
reconnects finds the stream where it is now, not where it left, exactly as on the real venue.
Each new connection first gets the last message sent before (a venue's "current state"), so a
client always sees how far the stream got and can repair the hole through REST.

Faults, for tests: drop the TCP connection every N messages (optionally losing a few more
messages "in flight"), and slip garbage between the messages.

A replay passes `consumer_clock` (the simulated time the client's processing has reached) and
calls `notify_progress()` whenever it moves: the server then never runs more than
`max_lead_messages` messages ahead of the last one whose time the client has reached, as a live
venue never sends what has not happened yet. Without it, at full speed the kernel's socket
buffers would let the server run megabytes ahead, and everything in flight at a reconnect would
come back through REST instead of the stream. The lead is counted in messages, not in time, so
a hole in the data (the next message an hour later) never stalls the two waiting on each other.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Sequence

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from cryptobot.clock import Clock

# What a stream may throw at a client: not JSON, wrong shapes, binary, a subscription reply,
# a stream nobody asked for, a kline with fields missing or of the wrong type.
GARBAGE_MESSAGES: tuple[str | bytes, ...] = (
    "not json {",
    b"\x00\xff\xfe binary",
    "[]",
    '{"result": null, "id": 1}',
    '{"stream": "btcusdt@depth", "data": {"e": "depthUpdate", "E": 1}}',
    '{"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1}}',
    '{"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "k": {"t": "x", "x": true}}}',
    '{"stream": "btcusdt@forceOrder", "data": {"e": "forceOrder", "E": 1, "o": {"S": "UP"}}}',
)


class LoopbackStreamServer:
    """Serves `(event_time_ms, message)` pairs on ws://127.0.0.1:<ephemeral port>/<path>.

    `speed` is simulated milliseconds per real millisecond (600: ten minutes a second);
    0 sends as fast as the client reads.
    """

    def __init__(self, messages: Sequence[tuple[int, str]], *, speed: float = 0.0,
                 drop_every: int | None = None, lose_on_drop: int = 0,
                 garbage_every: int | None = None, path: str = "/market/stream",
                 consumer_clock: Clock | None = None, max_lead_messages: int = 1) -> None:
        self._messages = messages
        self._speed = speed
        self._drop_every = drop_every
        self._lose_on_drop = lose_on_drop
        self._garbage_every = garbage_every
        self._path = path
        self._cursor = 0
        self._last_sent: str | None = None
        self._pace_anchor: tuple[int, float] | None = None
        self._server: Server | None = None
        self._consumer_clock = consumer_clock
        self._max_lead_messages = max_lead_messages
        self._event_times = [event_time_ms for event_time_ms, _ in messages]
        self._progress = asyncio.Event()
        self.connections = 0
        self.sent = 0
        self.garbage_sent = 0
        self.dropped_connections = 0
        self.requested_paths: list[str] = []

    def notify_progress(self) -> None:
        """The consumer's clock moved: the stream may go on."""
        self._progress.set()

    @property
    def exhausted(self) -> bool:
        return self._cursor >= len(self._messages)

    async def start(self) -> str:
        """Listen on an ephemeral port; returns the base URL (without the query)."""
        self._server = await serve(self._handle, "127.0.0.1", 0, max_queue=16)
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}{self._path}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LoopbackStreamServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}{self._path}"

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.requested_paths.append(ws.request.path if ws.request else "")
        sent_here = 0
        try:
            if self._last_sent is not None:
                await ws.send(self._last_sent)
            while self._cursor < len(self._messages):
                event_time_ms, text = self._messages[self._cursor]
                await self._pace(event_time_ms)
                if not await self._wait_for_consumer(ws):
                    return
                if self._cursor >= len(self._messages) or \
                        self._messages[self._cursor][0] != event_time_ms:
                    continue  # another connection sent it meanwhile
                if self._garbage_every and self.sent % self._garbage_every == 0 and self.sent:
                    await ws.send(GARBAGE_MESSAGES[self.garbage_sent % len(GARBAGE_MESSAGES)])
                    self.garbage_sent += 1
                await ws.send(text)
                self._cursor += 1
                self._last_sent = text
                self.sent += 1
                sent_here += 1
                if self._drop_every and sent_here >= self._drop_every:
                    self._drop_connection(ws)
                    return
            await ws.wait_closed()  # a live stream stays open after the data runs out
        except ConnectionClosed:
            pass

    def _drop_connection(self, ws: ServerConnection) -> None:
        """Cut TCP without a close frame, as a network failure would; some messages get lost."""
        lost = min(self._lose_on_drop, len(self._messages) - self._cursor)
        if lost:
            self._cursor += lost
            self._last_sent = self._messages[self._cursor - 1][1]
        self.dropped_connections += 1
        ws.transport.abort()

    async def _wait_for_consumer(self, ws: ServerConnection) -> bool:
        """False if the connection closed while waiting."""
        if self._consumer_clock is None:
            return True
        while self._cursor - self._reached() >= self._max_lead_messages:
            if ws.state is not State.OPEN:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 0.5)
        return ws.state is State.OPEN

    def _reached(self) -> int:
        """How many messages the consumer's clock has reached (their times are in order)."""
        assert self._consumer_clock is not None
        return bisect.bisect_right(self._event_times, self._consumer_clock.now_ms())

    async def _pace(self, event_time_ms: int) -> None:
        if self._speed <= 0:
            return
        loop = asyncio.get_running_loop()
        if self._pace_anchor is None:
            self._pace_anchor = (event_time_ms, loop.time())
            return
        first_ms, first_loop_s = self._pace_anchor
        due_s = first_loop_s + (event_time_ms - first_ms) / self._speed / 1000
        delay_s = due_s - loop.time()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
