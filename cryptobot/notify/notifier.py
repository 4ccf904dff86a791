"""A queue and one worker thread between the run and its notification services.

The run only ever puts a notice on the queue and never waits. A full queue drops a routine
notice (entry, exit, trade, daily, run) and counts it, with a warning at the first drop and at
close; a notice a trader must hear (an error, protection, the kill switch...) is never dropped:
it evicts the oldest routine notice queued, or takes one of as many extra places. The worker
sends each notice to every sink; past `max_per_window` notices in `window_s` it holds the rest
and sends them as one digest when the window allows (and at close), those that must be heard
first, cut to a size every service takes (Telegram: 4096 characters). A sink that fails (down,
refused, timed out) costs one warning naming its kind, never its URL, until it works again;
the run goes on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptobot.clock import Clock
from cryptobot.secrets import redact
from cryptobot.spending_window import SpendingWindow

log = logging.getLogger("cryptobot.notify")

MAX_PER_WINDOW = 20  # notices sent one by one per window; the rest go in a digest
WINDOW_S = 60.0
QUEUE_SIZE = 1000
CLOSE_TIMEOUT_S = 10.0  # at the run's end: what is queued gets this long, then is left
MAX_BODY_CHARS = 4000  # Telegram refuses a message over 4096 characters
ROUTINE_KINDS = frozenset({"run", "entry", "exit", "trade", "daily"})  # may be dropped


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # entry, exit, trade, protection, kill_switch, error, daily, run ...
    title: str
    body: str

    @property
    def routine(self) -> bool:
        return self.kind in ROUTINE_KINDS


class Sink(Protocol):
    name: str  # what kind of service (a URL's scheme): the only thing a log line says of it

    def send(self, title: str, body: str) -> bool:
        """True if delivered."""
        ...


class Notifier:
    def __init__(self, sinks: Sequence[Sink], clock: Clock, max_per_window: int = MAX_PER_WINDOW,
                 window_s: float = WINDOW_S, queue_size: int = QUEUE_SIZE) -> None:
        self.sinks = list(sinks)
        self.clock = clock
        self.label = "cryptobot"  # what each title starts with: the run, once it has an id
        self.max_per_window = max_per_window
        self.window_ms = int(window_s * 1000)
        self.queue_size = queue_size
        self._queue: deque[Notice] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._sent = SpendingWindow(max_per_window, self.window_ms)  # notices sent
        self._down: set[str] = set()
        self._thread = threading.Thread(target=self._work, name="cryptobot-notify", daemon=True)
        self.sent = 0  # messages delivered to at least one sink (a digest counts once)
        self.digests = 0
        self.failures = 0
        self.dropped = 0  # routine notices refused by a full queue

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def notify(self, notice: Notice) -> None:
        """Queue `notice`; returns at once, whatever the services do."""
        with self._ready:
            dropped_before = self.dropped
            if len(self._queue) < self.queue_size or self._make_room(notice):
                self._queue.append(notice)
                self._ready.notify()
            else:
                self.dropped += 1
            first_drop = dropped_before == 0 < self.dropped
        if first_drop:
            log.warning("notifications: the queue is full (%d; the services are slow or "
                        "down): routine notices are dropped from now on, errors and "
                        "protection still go", self.queue_size,
                        extra={"event": "notify_dropped"})

    def _make_room(self, notice: Notice) -> bool:
        """Room for a notice that must not be dropped: the oldest routine one queued goes,
        or one of `queue_size` extra places is taken. False: no room (a routine notice)."""
        if notice.routine:
            return False
        oldest = next((queued for queued in self._queue if queued.routine), None)
        if oldest is not None:
            self._queue.remove(oldest)
            self.dropped += 1
            return True
        return len(self._queue) < 2 * self.queue_size

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send what is queued (the held ones as one digest), waiting at most `timeout_s`."""
        if self._thread.is_alive():
            with self._ready:
                self._stopping = True
                self._ready.notify()
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("notifications: %d still unsent at the end of the run (the "
                            "service is slow); left", len(self._queue),
                            extra={"event": "notify_failed"})
        if self.dropped:
            log.warning("notifications: %d routine notices dropped by a full queue in this run",
                        self.dropped, extra={"event": "notify_dropped"})

    # --- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        held: list[Notice] = []
        while True:
            with self._ready:
                if not self._queue and not self._stopping:
                    self._ready.wait(self._wait_s() if held else None)
                stop = self._stopping and not self._queue
                if self._queue:
                    held.append(self._queue.popleft())
            if stop:
                break
            if held and self._slot_free():
                self._deliver(held)
                held = []
        if held:
            self._deliver(held)

    def _slot_free(self) -> bool:
        return self._wait_s() == 0

    def _wait_s(self) -> float:
        return self._sent.wait_ms(1, self.clock.now_ms()) / 1000

    def _deliver(self, notices: list[Notice]) -> None:
        if len(notices) == 1:
            title, body = notices[0].title, capped(notices[0].body)
        else:
            self.digests += 1
            title = f"{len(notices)} notices (rate limit: {self.max_per_window} a "\
                    f"{self.window_ms // 1000} s)"
            body = digest_body(notices)
        self._sent.spend(1, self.clock.now_ms())
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


def digest_body(notices: list[Notice], max_chars: int = MAX_BODY_CHARS) -> str:
    """One line a notice, those that must be heard first, cut to `max_chars` with a count of
    the lines left out."""
    ordered = [n for n in notices if not n.routine] + [n for n in notices if n.routine]
    lines: list[str] = []
    used = 0
    for n, notice in enumerate(ordered):
        line = f"{notice.title}: {notice.body}"
        rest = f"... and {len(ordered) - n} more notices (not shown: message size limit)"
        if used + len(line) + 1 > max_chars - len(rest) - 1:
            lines.append(rest)
            break
        lines.append(line)
        used += len(line) + 1
    return capped("\n".join(lines), max_chars)


def capped(body: str, max_chars: int = MAX_BODY_CHARS) -> str:
    return body if len(body) <= max_chars else body[:max_chars - 3] + "..."
