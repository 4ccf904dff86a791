"""POST /fapi/v1/batchOrders on the fake venue, answered as Binance USD-M answers it.

The form field `batchOrders` is a JSON list of at most 5 orders, each with the fields of a single
new order, their values as strings: a `reduceOnly` sent as a JSON boolean (as ccxt's own
`create_orders` writes it) is refused, as Binance refuses it in a batch. Each order is
placed as POST /fapi/v1/order places it (fake_binance_state.py); the answer is a list, in the
request's order, of the order as accepted or an error object {code, msg}: one order can be
refused while the others are accepted. A malformed list refuses the whole request (-1130). The
fault plan (fake_binance_faults.py) hits a batch as it hits any private call: the whole request
rate limited, lost, or carried out and its answer lost.

Tests refuse chosen orders through `state.refuse_orders` (client id suffix -> (code, msg)), as
Binance refuses a limit priced outside its band (-4016), on this route and the single one.
"""

from __future__ import annotations

import json

from tests.live.fake_binance_state import BinanceReject, FakeExchangeState

MAX_BATCH_ORDERS = 5
_INVALID = "Data sent for parameter 'batchOrders' is not valid."


def batch_orders(params: dict) -> list[dict]:
    """The orders of a batchOrders request, their values as Binance reads them (strings)."""
    try:
        orders = json.loads(params["batchOrders"])
    except ValueError:
        raise BinanceReject(-1130, _INVALID) from None
    if not isinstance(orders, list) or not 1 <= len(orders) <= MAX_BATCH_ORDERS \
            or not all(isinstance(order, dict) for order in orders):
        raise BinanceReject(-1130, _INVALID)
    return [{key: _text(value) for key, value in order.items()} for order in orders]


def _typed_as_binance_reads(order: dict) -> None:
    """Binance takes a batch's reduceOnly as the STRING "true" or "false" only."""
    if "reduceOnly" in order and order["reduceOnly"] not in ("true", "false"):
        raise BinanceReject(-1130, "Data sent for parameter 'reduceOnly' is not valid.")


def batch_client_ids(params: dict) -> str:
    """The client ids of a batch, comma-separated ("" when unreadable or none): the fault
    trace's."""
    if "batchOrders" not in params:
        return ""
    try:
        return ",".join(order.get("newClientOrderId", "") for order in batch_orders(params))
    except BinanceReject:
        return ""


def place_batch(state: FakeExchangeState, params: dict) -> list[dict]:
    batch_orders(params)  # a malformed list refuses the whole request
    answers = []
    for order in json.loads(params["batchOrders"]):
        try:
            _typed_as_binance_reads(order)
            order = {key: _text(value) for key, value in order.items()}
            check_refusal(state, order)
            answers.append(state.new_order(order))
        except BinanceReject as exc:
            answers.append({"code": exc.code, "msg": exc.msg})
        except KeyError as exc:
            answers.append({"code": -1102, "msg": f"Mandatory parameter {exc} was not sent."})
    return answers


def check_refusal(state: FakeExchangeState, params: dict) -> None:
    """Refuse an order a test chose (by the end of its client id)."""
    client_id = params.get("newClientOrderId") or ""
    for suffix, (code, msg) in state.refuse_orders.items():
        if client_id.endswith(suffix):
            raise BinanceReject(code, msg)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
