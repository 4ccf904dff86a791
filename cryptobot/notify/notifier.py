"""A queue and one worker thread between the run and its notification services.

The run only ever puts a notice on the queue (never waits: a full queue drops the notice and
counts it). The worker sends each notice to every sink; past `max_per_window` notices in
`window_s` it holds the rest and sends them as one digest when the window allows (and at
close), so a burst is rate-limited without losing a word. A sink that fails (down, refused,
timed out) costs one warning naming its kind, never its URL, until it works again; the run
goes on.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptobot.clock import Clock
from cryptobot.secrets import redact

log = logging.getLogger("cryptobot.notify")

MAX_PER_WINDOW = 20  # notices sent one by one per window; the rest go in a digest
WINDOW_S = 60.0
QUEUE_SIZE = 1000
CLOSE_TIMEOUT_S = 10.0  # at the run's end: what is queued gets this long, then is left


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # entry, exit, trade, protection, kill_switch, error, daily, run ...
    title: str
    body: str


class Sink(Protocol):
    name: str  # what kind of service (a URL's scheme): the only thing a log line says of it

    def send(self, title: str, body: str) -> bool:
        """True if delivered."""
        ...


_STOP = object()


class Notifier:
    def __init__(self, sinks: Sequence[Sink], clock: Clock, max_per_window: int = MAX_PER_WINDOW,
                 window_s: float = WINDOW_S, queue_size: int = QUEUE_SIZE) -> None:
        self.sinks = list(sinks)
        self.clock = clock
        self.label = "cryptobot"  # what each title starts with: the run, once it has an id
        self.max_per_window = max_per_window
        self.window_ms = int(window_s * 1000)
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._sent_ms: deque[int] = deque()
        self._down: set[str] = set()
        self._thread = threading.Thread(target=self._work, name="cryptobot-notify", daemon=True)
        self.sent = 0  # messages delivered to at least one sink (a digest counts once)
        self.digests = 0
        self.failures = 0
        self.dropped = 0  # notices refused by a full queue

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def notify(self, notice: Notice) -> None:
        """Queue `notice`; returns at once, whatever the services do."""
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send what is queued (the held ones as one digest), waiting at most `timeout_s`."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("notifications: %d still unsent at the end of the run (the service "
                        "is slow); left", self._queue.qsize(), extra={"event": "notify_failed"})

    # --- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        held: list[Notice] = []
        while True:
            try:
                item = self._queue.get(timeout=self._wait_s() if held else None)
            except queue.Empty:
                item = None  # a slot in the window came free
            if item is _STOP:
                break
            if item is not None:
                held.append(item)
            if held and self._slot_free():
                self._deliver(held)
                held = []
        if held:
            self._deliver(held)

    def _slot_free(self) -> bool:
        now_ms = self.clock.now_ms()
        while self._sent_ms and self._sent_ms[0] <= now_ms - self.window_ms:
            self._sent_ms.popleft()
        return len(self._sent_ms) < self.max_per_window

    def _wait_s(self) -> float:
        if not self._sent_ms:
            return 0.0
        return max(0.0, (self._sent_ms[0] + self.window_ms - self.clock.now_ms()) / 1000)

    def _deliver(self, notices: list[Notice]) -> None:
        if len(notices) == 1:
            title, body = notices[0].title, notices[0].body
        else:
            self.digests += 1
            title = f"{len(notices)} notices (rate limit: {self.max_per_window} a "\
                    f"{self.window_ms // 1000} s)"
            body = "\n".join(f"{notice.title}: {notice.body}" for notice in notices)
        self._sent_ms.append(self.clock.now_ms())
        delivered = False
        for sink in self.sinks:
            delivered = self._send(sink, title, body) or delivered
        self.sent += delivered

    def _send(self, sink: Sink, title: str, body: str) -> bool:
        try:
            ok, why = bool(sink.send(title, body)), "not delivered"
        except Exception as exc:  # a notifier must never fail the run
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if ok:
            if sink.name in self._down:
                self._down.discard(sink.name)
                log.info("notifications to %s work again", sink.name,
                         extra={"event": "notify_restored"})
            return True
        self.failures += 1
        if sink.name not in self._down:
            self._down.add(sink.name)
            log.warning("notifications to %s failed (%s); the run goes on, no more warnings "
                        "until it works again", sink.name, redact(why),
                        extra={"event": "notify_failed"})
        return False
