"""The live broker's `submit_batch`: several reduce-only limits (the take-profits) in one request.

Each order is checked as `submit` checks it (reconciled first; an earlier send of its client id
looked up, never sent twice; lot and tick rounded) and written "pending" before the request
goes out; the gateway sends them together (gateway_batch.py) and answers per order, in order.
Each answer is then handled as `submit`'s own: accepted, its row "open" (all of them first,
each with its venue id), then reported with what executed at once (and its fills read);
refused, its row "rejected" and the refusal returned (the stop still protects: the engine lets
the trade ride it); its outcome unknown, the row stays "pending" for a look-up before any
resend, and reconciliation is brought forward. One order left to send goes as a plain order;
anything else than reduce-only limits, in turn.

A base class of `LiveBroker` (broker.py), which provides the attributes below; `_accepted`,
what follows an accepting answer, serves its single orders too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.gateway_batch import MAX_BATCH_ORDERS
from cryptobot.brokers.live.sent_order import SentOrder
from cryptobot.brokers.live.state import LiveState, PlannedPosition
from cryptobot.clock import Clock
from cryptobot.engine.broker import signal_of
from cryptobot.errors import (
    ExchangeError,
    OrderRejectedError,
    TemporaryExchangeError,
)
from cryptobot.model import OrderIntent, OrderType


class LiveBatches:
    """`submit_batch` of `LiveBroker` (see the module docstring)."""

    state: LiveState
    gateway: OrderGateway
    clock: Clock
    on_step: Callable[[str], None]

    def submit(self, intent: OrderIntent) -> None: ...

    def reconcile_soon(self) -> None: ...

    def report_order(self, intent: OrderIntent, status: str, detail: str = "",
                     filled_qty: float | None = None) -> None: ...

    def _sendable(self, intent: OrderIntent) -> OrderIntent | None: ...

    def _send(self, intent: OrderIntent, planned: PlannedPosition | None = None
              ) -> SentOrder: ...

    def _read_fills_of(self, intent: OrderIntent, sent: SentOrder) -> None: ...

    def submit_batch(self, intents: Sequence[OrderIntent]) -> list[ExchangeError | None]:
        """Each order's refusal, in order (None: accepted, or found placed already)."""
        if len(intents) > MAX_BATCH_ORDERS or not all(
                intent.order_type is OrderType.LIMIT and intent.reduce_only
                for intent in intents):
            return [_outcome(self.submit, intent) for intent in intents]
        refusals: list[ExchangeError | None] = [None] * len(intents)
        to_send: list[tuple[int, OrderIntent]] = []
        for index, intent in enumerate(intents):
            try:
                sendable = self._sendable(intent)
                if sendable is not None:
                    to_send.append((index, sendable))
            except ExchangeError as exc:
                refusals[index] = exc
        if len(to_send) == 1:
            index, intent = to_send[0]
            refusals[index] = _outcome(self._send, intent)
        elif to_send:
            for (index, _), refusal in zip(to_send, self._send_batch(
                    [intent for _, intent in to_send]), strict=True):
                refusals[index] = refusal
        return refusals

    def _send_batch(self, intents: list[OrderIntent]) -> list[ExchangeError | None]:
        now_ms = self.clock.now_ms()
        for intent in intents:
            self.state.record_intent(intent, signal_of(intent.client_id), now_ms)
            self.on_step(f"before_send:{intent.purpose.value}")
        answers = self.gateway.place_batch(intents)
        refusals: list[ExchangeError | None] = []
        for intent, answer in zip(intents, answers, strict=True):
            if isinstance(answer, SentOrder):
                self._marked_open(intent, answer)
                refusals.append(None)
                continue
            if isinstance(answer, OrderRejectedError):
                self.state.update_order(intent.client_id, now_ms, status="rejected",
                                        detail=str(answer))
            elif isinstance(answer, TemporaryExchangeError):
                self.reconcile_soon()  # outcome unknown: the pending row is looked up there
            refusals.append(answer)
        # Every accepted order is known by its venue id before any is reported: the fills
        # read for one may be another's (both targets marketable at once), and one whose
        # fills were read so is done, not reported "open" after them.
        for intent, answer in zip(intents, answers, strict=True):
            if isinstance(answer, SentOrder) and self._still_open(intent.client_id):
                self._reported_open(intent, answer)
        return refusals

    def _still_open(self, client_id: str) -> bool:
        row = self.state.order(client_id)
        return row is not None and row.status == "open"

    def _accepted(self, intent: OrderIntent, sent: SentOrder) -> None:
        """The venue's answer accepted the order (one sent alone): its row says so, the engine
        is told with what executed (protected now, by the engine's stop, before its fills are
        read), and the fills of what may have filled at once are read."""
        self._marked_open(intent, sent)
        self._reported_open(intent, sent)

    def _marked_open(self, intent: OrderIntent, sent: SentOrder) -> None:
        self.on_step(f"after_send:{intent.purpose.value}")
        self.state.update_order(intent.client_id, self.clock.now_ms(), status="open",
                                exchange_order_id=sent.exchange_order_id)

    def _reported_open(self, intent: OrderIntent, sent: SentOrder) -> None:
        self.report_order(intent, "open", filled_qty=sent.filled_qty)
        if intent.order_type is OrderType.MARKET or intent.time_in_force == "IOC" \
                or sent.filled_qty > 0:
            self._read_fills_of(intent, sent)


def _outcome(send: Callable[[OrderIntent], object], intent: OrderIntent) -> ExchangeError | None:
    try:
        send(intent)
    except ExchangeError as exc:
        return exc
    return None
