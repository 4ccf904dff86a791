"""Several orders in one request: Binance USD-M's POST /fapi/v1/batchOrders (at most 5), which
the take-profits take together once a stop works.

Binance answers with one item per order, in the request's order: the order as accepted, or an
error object {code, msg} for one refused; one item can fail while the others are accepted. ccxt's
`create_orders` sorts the orders it parses by timestamp (a refused item, which has none, comes
first), so the request goes to the endpoint directly, each order written as ccxt writes a
limit, and each item is read in its order's place. The batch holds limit orders (the
take-profits); conditional orders (our stops) have no batch endpoint on USD-M: they go one by
one (`place`).

The safety of `place`, per order: a doubtful answer to the whole request (a timeout, 5xx,
-1007) is followed by a look-up of every client id in it, and only what the venue never got is
sent again; a refusal before anything was carried out (429, 418, -1008) is sent again after the
venue's wait; an item's own doubtful error, or a duplicate client id, is looked up the same way.
An order whose look-up failed too stays unknown (TemporaryExchangeError) and is not resent here.
A base class of `OrderGateway` (gateway.py), which provides the attributes below.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import ccxt

from cryptobot.brokers.live.sent_order import PROTECTIVE, SentOrder, sent_from_binance
from cryptobot.brokers.live.venue_wait import VenueWait
from cryptobot.errors import ExchangeError, TemporaryExchangeError, VenueWaitError
from cryptobot.exchange.ccxt_errors import (
    DUPLICATE_CLIENT_ID_CODE,
    binance_code,
    map_ccxt_error,
    not_executed,
)
from cryptobot.model import OrderIntent, OrderType

MAX_BATCH_ORDERS = 5  # Binance USD-M's batchOrders limit
Answer = SentOrder | ExchangeError  # one order's outcome


class BatchPlacement:
    """`place_batch` (see the module docstring)."""

    exchange: ccxt.Exchange
    attempts: int
    sends: int
    wait: VenueWait

    def _before_order_request(self, batch: bool = False) -> None: ...

    def order_request(self, intent: OrderIntent) -> dict[str, Any]: ...

    def _note_wait(self, exc: ExchangeError) -> bool: ...

    def _look_up_after_doubt(self, intent: OrderIntent, doubt: ExchangeError
                             ) -> SentOrder | None: ...

    def _before_resend(self, what: str, attempt: int, doubt: ExchangeError, told_to_wait: bool,
                       protective: bool) -> None: ...

    def place_batch(self, intents: Sequence[OrderIntent]) -> list[Answer]:
        """Each order's outcome, in order: the venue's answer accepting it (SentOrder), its
        refusal (OrderRejectedError), or why it was not placed or its outcome is not known
        (TemporaryExchangeError; VenueWaitError: not sent, the venue's wait is not over)."""
        if not 0 < len(intents) <= MAX_BATCH_ORDERS or any(
                intent.order_type is not OrderType.LIMIT for intent in intents):
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_ORDERS} limit orders")
        answers: dict[int, Answer] = {}
        owed = list(range(len(intents)))  # not answered yet, in the request's order
        for attempt in range(1, self.attempts + 1):
            label = "place " + ", ".join(intents[index].client_id for index in owed)
            try:
                self.wait.before_request(label)
            except VenueWaitError as exc:
                answers.update((index, exc) for index in owed)
                return [answers[index] for index in range(len(intents))]
            owed, doubt, told_to_wait = self._one_request(intents, owed, answers, label)
            if not owed:
                break
            if attempt == self.attempts:
                answers.update((index, TemporaryExchangeError(
                    f"place {intents[index].client_id}: not placed: gave up after {attempt} "
                    f"attempts: {doubt}")) for index in owed)
                break
            self._before_resend(label, attempt, doubt or TemporaryExchangeError(label),
                                told_to_wait, any(intents[i].purpose in PROTECTIVE for i in owed))
        return [answers[index] for index in range(len(intents))]

    def _one_request(self, intents: Sequence[OrderIntent], owed: list[int],
                     answers: dict[int, Answer], label: str
                     ) -> tuple[list[int], ExchangeError | None, bool]:
        """Send the orders `owed` once; their answers go into `answers`. Returns those to send
        again (the venue surely has not got them), why, and whether the venue said how long
        to wait first."""
        requests = {}
        for index in owed:  # an order ccxt would refuse to write is refused alone, unsent
            try:
                requests[index] = self.batch_item(intents[index])
            except ccxt.InvalidOrder as exc:
                answers[index] = map_ccxt_error(exc, f"place {intents[index].client_id}",
                                                order=True)
        owed = list(requests)
        if not owed:
            return [], None, False
        try:
            self.sends += 1
            self._before_order_request(batch=True)
            items = self._post([intents[index] for index in owed], list(requests.values()))
        except ccxt.BaseError as exc:
            mapped = map_ccxt_error(exc, label, order=True)
            if not isinstance(mapped, ExchangeError):
                raise mapped from None  # the key refused: nothing else is worth trying
            if not isinstance(mapped, TemporaryExchangeError):  # the whole request refused
                answers.update((index, mapped) for index in owed)
                return [], mapped, False
            told_to_wait = self._note_wait(mapped)
            if not_executed(exc):
                return owed, mapped, told_to_wait
            return self._looked_up(intents, owed, answers, mapped), mapped, told_to_wait
        resend: list[int] = []
        doubt: ExchangeError | None = None
        for index, item in zip(owed, items, strict=True):
            intent = intents[index]
            if "code" not in item:
                answers[index] = sent_from_binance(item, intent.client_id)
                continue
            refusal = ccxt.ExchangeError(f"{self.exchange.id} {json.dumps(item)}")
            mapped = map_ccxt_error(refusal, f"place {intent.client_id}", order=True)
            if not isinstance(mapped, ExchangeError):  # the key refused for this order only:
                # the others' answers stand; its outcome is left to reconciliation, which
                # meets the key's refusal itself
                answers[index] = TemporaryExchangeError(str(mapped))
                continue
            duplicate = binance_code(refusal) == DUPLICATE_CLIENT_ID_CODE
            if not (duplicate or isinstance(mapped, TemporaryExchangeError)):
                answers[index] = mapped  # this order refused; the others stand
            elif duplicate or not not_executed(refusal):
                resend += self._looked_up(intents, [index], answers, mapped)
                doubt = mapped
            else:
                resend.append(index)
                doubt = mapped
        return resend, doubt, False

    def _post(self, intents: Sequence[OrderIntent], requests: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
        """The raw batchOrders answer to `requests` (the orders `intents`), one item per
        order, in their order."""
        items = self.exchange.fapiPrivatePostBatchOrders({"batchOrders": requests})
        if not isinstance(items, list) or len(items) != len(intents):  # unreadable: each order
            raise ccxt.NetworkError(  # is looked up, as after a lost answer
                f"batchOrders answered {len(items or ())} items for {len(intents)} orders")
        for intent, item in zip(intents, items, strict=True):
            if not isinstance(item, dict) or ("code" not in item and item.get(
                    "clientOrderId") != intent.client_id):  # not in the request's order
                raise ccxt.NetworkError(f"batchOrders answered {item!r} in the place of "
                                        f"{intent.client_id}")
        return items

    def batch_item(self, intent: OrderIntent) -> dict[str, Any]:
        """One limit order of a batch: its request as a single order's (`order_request`, as
        ccxt writes it), but for `reduceOnly`: Binance reads a batch's values as strings, and
        refuses its JSON boolean."""
        item = self.order_request(intent)
        if intent.reduce_only:  # a STRING in a batch (a JSON boolean is refused there)
            item["reduceOnly"] = "true"
        return item

    def _looked_up(self, intents: Sequence[OrderIntent], indexes: list[int],
                   answers: dict[int, Answer], doubt: ExchangeError) -> list[int]:
        """After a doubtful answer: each order found on the venue is answered with its copy,
        one whose look-up failed with that (its outcome unknown); those the venue never got
        are returned, to send again."""
        resend = []
        for index in indexes:
            try:
                found = self._look_up_after_doubt(intents[index], doubt)
            except ExchangeError as exc:
                answers[index] = exc
                continue
            if found is None:
                resend.append(index)
            else:
                answers[index] = found
        return resend
