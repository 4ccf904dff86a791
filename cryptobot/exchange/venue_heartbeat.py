"""A venue's application-level ping, kept by the streaming feed's connection loop."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection

from cryptobot.exchange.feed import VenueStream


class VenueHeartbeat:
    """A venue's application-level ping, on the event loop's time (a network concern, not the
    market's: a replay at full speed still pings every 20 real seconds)."""

    def __init__(self, venue: VenueStream) -> None:
        beat = venue.heartbeat()
        self._interval_s, self._message = beat if beat is not None else (None, "")
        self._due_s = asyncio.get_running_loop().time() + (self._interval_s or 0.0)

    async def send_if_due(self, ws: ClientConnection) -> None:
        if self._interval_s is None:
            return
        now_s = asyncio.get_running_loop().time()
        if now_s >= self._due_s:
            await ws.send(self._message)
            self._due_s = now_s + self._interval_s

    def wait_s(self, idle_check_s: float) -> float:
        """How long to wait for a message before the next heartbeat or idle check is due."""
        if self._interval_s is None:
            return idle_check_s
        return max(0.0, min(idle_check_s, self._due_s - asyncio.get_running_loop().time()))
