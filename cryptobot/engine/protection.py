"""Protection that never gives up: every open position is covered by a stop for all it holds, or
is being closed by a market exit the venue accepted.

What the venue refuses is owed, not dropped. A stop that could not be placed (or moved, or grown
to a larger position) and a market exit that was refused are remembered on the trade and tried
again, with a doubling delay (`live.protect_retry_base_s` up to `live.protect_retry_max_s`), for
as long as the position is open: on every engine event and on the live runner's timer. Until a
replacement is accepted the old stop stays working.

The fallback: when a position has no stop covering it and the stop was refused outright, or has
failed more than `live.stop_place_retries` times, or a market exit has failed that often, the
position is flattened at market (a FLATTEN order) and the user is told (a warning in the log and
the console, the reason in the store). A refused flatten is retried the same way, and the stop
keeps being retried beside it. The kill switch goes through the same flatten.

A call the broker could not send because the venue asked it to wait (a ban: VenueWaitError) is
no failure: it is tried again the moment the wait is over, and counts toward no fallback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from cryptobot.clock import Clock
from cryptobot.config import LiveSettings
from cryptobot.engine.open_trade import OpenTrade
from cryptobot.engine.trade_orders import TradeOrders
from cryptobot.errors import OrderRejectedError, VenueWaitError
from cryptobot.model import OrderPurpose

log = logging.getLogger("cryptobot.protection")


class Protection:
    """`is_open(trade)`: the trade is still the engine's open one (a broker may report the fills
    that close it while an order is being placed)."""

    def __init__(self, live: LiveSettings, orders: TradeOrders, clock: Clock,
                 is_open: Callable[[OpenTrade], bool]) -> None:
        self.live = live
        self.orders = orders
        self.clock = clock
        self.is_open = is_open

    def place_stop(self, trade: OpenTrade, price: float) -> None:
        """Place, move or grow the stop to `price` for all that is held."""
        refused = self.orders.place_stop(trade, price)
        if refused is None:
            trade.wanted_stop = None
            self._settled(trade)
            return
        if not self.is_open(trade) or trade.closing:
            return  # closed meanwhile, or being closed by an accepted market exit
        trade.wanted_stop = price
        if self._venue_waits(trade, refused):
            return
        if trade.stop_covers():  # the old stop still protects all of it: the move is retried
            trade.protect_failures += 1
            if trade.protect_failures > self.live.stop_place_retries:
                log.warning("%s: stop move to %g refused %d times (%s); keeping the stop at %g",
                            trade.signal_id, price, trade.protect_failures, refused,
                            trade.stop_price, extra={"event": "protection"})
                trade.wanted_stop, trade.protect_failures = None, 0
                return
            self._retry_later(trade)
            return
        outright = isinstance(refused, OrderRejectedError)
        self._failed(trade, f"stop could not be placed: {refused}", fall_back_now=outright)

    def exit(self, trade: OpenTrade, purpose: OrderPurpose, why: str = "") -> None:
        """Close all that is held at market (a time stop, or a flatten with its reason)."""
        refused = self.orders.market_exit(trade, purpose, why)
        if refused is None:
            if trade.closing or not self.is_open(trade):  # working, or done already
                trade.wanted_exit = None
                self._settled(trade)
            return  # else the venue ended it at once, unfilled: `exit_ended` made it owed
        if not self.is_open(trade) or trade.closing:
            return
        if trade.wanted_exit is not OrderPurpose.FLATTEN:
            trade.wanted_exit = purpose
        if self._venue_waits(trade, refused):
            return
        self._failed(trade, f"{purpose.value} exit refused: {refused}", fall_back_now=False)

    def exit_ended(self, trade: OpenTrade, purpose: OrderPurpose, detail: str) -> None:
        """A market exit the venue had accepted ended without closing everything (expired or
        cancelled there, maybe while it was being placed): the position needs its stop back,
        and the exit is owed again, at the next protection check (not from inside the
        broker's report)."""
        trade.closing = False
        trade.wanted_exit = purpose
        trade.protect_failures += 1
        trade.retry_at_ms = self.clock.now_ms()
        log.warning("%s: %s exit ended unfilled (%s); the stop stays, the exit is retried",
                    trade.signal_id, purpose.value, detail, extra={"event": "protection"})

    def owed(self, trade: OpenTrade) -> bool:
        """Something is still to be done for this trade's protection."""
        return (trade.wanted_stop is not None or trade.wanted_exit is not None
                or (not trade.closing and not trade.stop_covers()))

    def due(self, trade: OpenTrade) -> None:
        """Try what is owed, if its retry time has come."""
        if not self.owed(trade) or trade.closing:
            return
        if trade.retry_at_ms is not None and self.clock.now_ms() < trade.retry_at_ms:
            return
        trade.retry_at_ms = None
        if trade.wanted_stop is not None or not trade.stop_covers():
            price = trade.wanted_stop if trade.wanted_stop is not None else trade.stop_price
            self.place_stop(trade, price)
        if trade.wanted_exit is not None and self.is_open(trade) and not trade.closing:
            self.exit(trade, trade.wanted_exit)

    # --- plumbing ----------------------------------------------------------------------------

    def _settled(self, trade: OpenTrade) -> None:
        if trade.wanted_stop is None and trade.wanted_exit is None:
            trade.protect_failures, trade.retry_at_ms = 0, None

    def _venue_waits(self, trade: OpenTrade, refused: Exception) -> bool:
        """The venue asked us to wait (a ban) and nothing was sent: not a failure (no
        fallback: a flatten could not be sent either); tried again when the wait is over."""
        if not isinstance(refused, VenueWaitError):
            return False
        trade.retry_at_ms = self.clock.now_ms() + math.ceil(refused.wait_s * 1000)
        log.warning("%s: protection waits %.0f s for the exchange: %s", trade.signal_id,
                    refused.wait_s, refused, extra={"event": "protection"})
        return True

    def _failed(self, trade: OpenTrade, what: str, fall_back_now: bool) -> None:
        trade.protect_failures += 1
        retried_enough = trade.protect_failures > self.live.stop_place_retries
        unprotected = not trade.stop_covers()
        falls_back = trade.wanted_exit is not OrderPurpose.FLATTEN and (
            (unprotected and (fall_back_now or retried_enough))
            or (trade.wanted_exit is not None and retried_enough))
        log.warning("%s: %s (failure %d)", trade.signal_id, what, trade.protect_failures,
                    extra={"event": "protection"})
        if not falls_back:
            self._retry_later(trade)
            return
        log.warning("%s: protection fallback: closing the position at market",
                    trade.signal_id, extra={"event": "protection_fallback"})
        trade.wanted_exit = OrderPurpose.FLATTEN
        self.exit(trade, OrderPurpose.FLATTEN, f"protection fallback: {what}")
        if trade.wanted_exit is not None or trade.wanted_stop is not None:
            self._retry_later(trade)

    def _retry_later(self, trade: OpenTrade) -> None:
        delay_s = min(self.live.protect_retry_max_s,
                      self.live.protect_retry_base_s * 2 ** max(0, trade.protect_failures - 1))
        trade.retry_at_ms = self.clock.now_ms() + int(delay_s * 1000)

