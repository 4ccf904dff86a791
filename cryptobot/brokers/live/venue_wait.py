"""The waits the venue imposes on the order gateway: a 429's Retry-After and a 418 IP ban.

Binance (developers.binance.com, "Rate limits"): "When a 429 is received, it's your obligation
as an API to back off and not spam the API. Repeatedly violating rate limits and/or failing to
back off after receiving 429s will result in an automated IP ban (HTTP status 418). IP bans are
tracked and scale in duration for repeat offenders, from 2 minutes to 3 days. A Retry-After
header is sent with a 418 or 429 responses and will give the number of seconds required to
wait, in the case of a 429, to prevent a ban, or, in the case of a 418, until the ban is over."
The limits are the IP's, so a wait holds every call of the gateway, not just the one answered.

So no call is sent before the wait is over. A short one (at most `inline_max_s`, e.g. a 429's
second) is slept in the call, as the gateway's other retries are; a longer one (a ban) is
refused at once, locally (`VenueWaitError`, with the time left): the caller's own schedule
(the engine's protection retries, the broker's timer) tries again when it ends, and the event
loop is never blocked for a ban's length. Time is the `clock` that `sleep` moves (the wall
clock live; the fake venue's clock in a simulated run).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from cryptobot.clock import Clock, iso_utc
from cryptobot.errors import RateLimitError, VenueWaitError

log = logging.getLogger("cryptobot.live.gateway")
INLINE_MAX_S = 5.0  # the longest a call sleeps for the venue's wait; longer ones are refused
FIRST_BAN_S = 120.0  # a 418 without a Retry-After: Binance's shortest ban


class VenueWait:
    """`until_ms` (on `clock`): no request before it."""

    def __init__(self, clock: Clock, sleep: Callable[[float], None],
                 inline_max_s: float = INLINE_MAX_S) -> None:
        self.clock = clock
        self.sleep = sleep
        self.inline_max_s = inline_max_s
        self.until_ms: int | None = None
        self.banned = False  # the wait is a ban (a 418), not a 429's back-off

    def note(self, exc: RateLimitError, retry_after_s: float | None) -> bool:
        """The venue answered 429 or 418: wait what it asked. False when it said no time (the
        caller backs off on its own schedule)."""
        banned = is_ban(exc)
        if retry_after_s is None:
            if not banned:
                return False
            retry_after_s = FIRST_BAN_S
        until_ms = self.clock.now_ms() + math.ceil(retry_after_s * 1000)
        if self.until_ms is None or until_ms > self.until_ms:
            self.until_ms, self.banned = until_ms, banned or self.banned
        if banned:
            log.error("the exchange banned this IP until %s (%g s): nothing is sent until then "
                      "(%s)", iso_utc(until_ms), retry_after_s, exc)
        return True

    def left_s(self) -> float:
        """What is left of the wait, in seconds (0: none)."""
        if self.until_ms is None:
            return 0.0
        left_ms = self.until_ms - self.clock.now_ms()
        if left_ms <= 0:
            self.until_ms, self.banned = None, False
            return 0.0
        return left_ms / 1000

    def before_request(self, action: str) -> None:
        """Sleep a short wait out; refuse (VenueWaitError, nothing sent) inside a long one."""
        left_s = self.left_s()
        if left_s <= 0:
            return
        if left_s > self.inline_max_s:
            what = "IP ban" if self.banned else "rate limit"
            raise VenueWaitError(f"{action}: not sent: the exchange's {what} lasts until "
                                 f"{iso_utc(self.until_ms or 0)} ({left_s:.0f} s left)", left_s)
        self.sleep(left_s)


def is_ban(exc: BaseException) -> bool:
    """A 418 (Binance: -1003 "Way too many requests; IP banned until ...")."""
    text = str(exc)
    return "banned until" in text or " 418 " in f" {text} "
