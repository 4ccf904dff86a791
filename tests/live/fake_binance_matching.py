"""How the fake Binance venue fills orders, one-way mode, exact in Decimal.

A taker (a MARKET order, a fired stop's market child, an IOC limit) eats a book of
`state.fill_parts` levels, one tick apart from the last price (up for a buy, down for a sell),
in nearly equal lot-rounded parts: one trade per level, PARTIALLY_FILLED between them, as a
real market order of size fills against several resting orders. An IOC limit stops at the
first level past its limit and the rest expires; so does what a reduce-only order cannot
close. A resting GTC limit fills in one trade at its own price once the price reaches it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tests.live.fake_binance_events import decimal_text as _s

if TYPE_CHECKING:
    from tests.live.fake_binance_state import FakeExchangeState, FakePosition

OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}
TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")


def split_qty(qty: Decimal, parts: int, step: Decimal) -> list[Decimal]:
    """`qty` in at most `parts` lot-rounded pieces, the larger ones first; they sum to `qty`."""
    lots = int(qty // step)
    base, extra = divmod(lots, max(1, parts))
    sizes = [(base + (1 if i < extra else 0)) * step for i in range(max(1, parts))]
    sizes = [size for size in sizes if size > 0] or [Decimal(0)]
    sizes[-1] += qty - lots * step  # nothing, for a qty on the lot grid (the venue checks it)
    return [size for size in sizes if size > 0]


def apply_trade(pos: FakePosition, signed_qty: Decimal, price: Decimal) -> Decimal:
    """Move the one-way position by `signed_qty` at `price`; returns the realized PnL."""
    if pos.qty == 0 or (pos.qty > 0) == (signed_qty > 0):
        total = abs(pos.qty) + abs(signed_qty)
        pos.entry_price = (pos.entry_price * abs(pos.qty) + price * abs(signed_qty)) / total
        pos.qty += signed_qty
        return Decimal(0)
    closed = min(abs(pos.qty), abs(signed_qty))
    realized = (price - pos.entry_price) * closed * (1 if pos.qty > 0 else -1)
    was_long = pos.qty > 0
    pos.qty += signed_qty
    if pos.qty == 0:
        pos.entry_price = Decimal(0)
    elif (pos.qty > 0) != was_long:  # flipped: what is left was opened at this price
        pos.entry_price = price
    return realized


def fill_taker(state: FakeExchangeState, order: dict, limit: Decimal | None = None) -> None:
    """Fill a taker order level by level; an IOC (`limit`) stops past its limit; the rest
    expires."""
    qty = _fillable(state, order)
    if qty is None:
        return
    symbol, buy = order["symbol"], order["side"] == "BUY"
    tick = Decimal(state.filters[symbol]["PRICE_FILTER"]["tickSize"])
    step = Decimal(state.filters[symbol]["LOT_SIZE"]["stepSize"])
    last = state.prices[symbol]
    for level, part in enumerate(split_qty(qty, state.fill_parts, step)):
        price = last + tick * level if buy else last - tick * level
        if limit is not None and (price > limit if buy else price < limit):
            break
        _trade(state, order, price, part, is_maker=False)
    _expire_rest(state, order)


def fill_resting(state: FakeExchangeState, order: dict, price: Decimal) -> None:
    """A resting limit reached by the price: one maker trade at `price`."""
    qty = _fillable(state, order)
    if qty is not None:
        _trade(state, order, price, qty, is_maker=True)
        _expire_rest(state, order)


def match(state: FakeExchangeState, symbol: str) -> None:
    """The price moved: fire the stops it reached, then fill the limits it reached."""
    last = state.prices[symbol]
    for algo in state.open_algo_orders(symbol):
        trigger = Decimal(algo["triggerPrice"])
        if last <= trigger if algo["side"] == "SELL" else last >= trigger:
            _fire(state, algo)
    for order in state.open_orders(symbol):
        if order["status"] not in OPEN_STATUSES or order["type"] != "LIMIT":
            continue  # an earlier fill may have expired it (reduce-only, position gone)
        limit = Decimal(order["price"])
        if (last >= limit) if order["side"] == "SELL" else (last <= limit):
            fill_resting(state, order, limit)


def _fire(state: FakeExchangeState, algo: dict) -> None:
    symbol = algo["symbol"]
    algo.update(algoStatus="TRIGGERED", triggerTime=state.now_ms, updateTime=state.now_ms)
    qty = Decimal(algo["quantity"])
    if algo["reduceOnly"]:
        qty = min(qty, abs(state.position(symbol).qty))
    if qty <= 0:
        algo["algoStatus"] = "EXPIRED"
        state.algo_event(algo)
        return
    child = state.order_record(symbol, algo["side"], "MARKET", qty, Decimal(0),
                               algo["clientAlgoId"], algo["reduceOnly"])
    child.update(origType="STOP_MARKET", stopPrice=algo["triggerPrice"])
    state.orders[child["orderId"]] = child
    algo["actualOrderId"] = str(child["orderId"])
    state.algo_event(algo)  # TRIGGERED, with the market order's id in `ai`
    state.order_event(child, "NEW")
    fill_taker(state, child)  # a gap fills at the first price past the trigger, and below
    algo["algoStatus"] = "FINISHED"
    state.algo_event(algo, avg_price=Decimal(child["avgPrice"]),
                     filled_qty=Decimal(child["executedQty"]))


def _fillable(state: FakeExchangeState, order: dict) -> Decimal | None:
    """What is left to fill; None (and the order expired) for a reduce-only order that would
    not reduce."""
    qty = Decimal(order["origQty"]) - Decimal(order["executedQty"])
    if not order["reduceOnly"]:
        return qty
    pos = state.position(order["symbol"]).qty
    if pos == 0 or (pos > 0) == (order["side"] == "BUY"):
        _expire(state, order)
        return None
    return min(qty, abs(pos))


def _trade(state: FakeExchangeState, order: dict, price: Decimal, qty: Decimal,
           is_maker: bool) -> None:
    symbol, pos = order["symbol"], state.position(order["symbol"])
    realized = apply_trade(pos, qty if order["side"] == "BUY" else -qty, price)
    pos.update_ms = state.now_ms
    fee = price * qty * (MAKER_FEE if is_maker else TAKER_FEE)
    state.account.wallet_usdt += realized - fee
    executed = Decimal(order["executedQty"]) + qty
    cum_quote = Decimal(order["cumQuote"]) + price * qty
    done = executed == Decimal(order["origQty"])
    order.update(status="FILLED" if done else "PARTIALLY_FILLED", executedQty=_s(executed),
                 avgPrice=_s(cum_quote / executed), cumQuote=_s(cum_quote),
                 updateTime=state.now_ms)
    trade_id = state.next_id()
    state.trades.append({
        "buyer": order["side"] == "BUY", "commission": _s(fee), "commissionAsset": "USDT",
        "id": trade_id, "maker": is_maker, "orderId": order["orderId"],
        "price": _s(price), "qty": _s(qty), "quoteQty": _s(price * qty),
        "realizedPnl": _s(realized), "side": order["side"], "positionSide": "BOTH",
        "symbol": symbol, "time": state.now_ms,
    })
    state.order_event(order, "TRADE", trade_id=trade_id, last_qty=_s(qty),
                      last_price=_s(price), fee=_s(fee), is_maker=is_maker,
                      realized=_s(realized))
    state.record_protection(symbol)
    if pos.qty == 0:  # Binance expires reduce-only orders once the position is gone
        for other in state.open_orders(symbol):
            if other["reduceOnly"] and other is not order:
                _expire(state, other)


def _expire_rest(state: FakeExchangeState, order: dict) -> None:
    if order["status"] in OPEN_STATUSES:
        _expire(state, order)


def _expire(state: FakeExchangeState, order: dict) -> None:
    order.update(status="EXPIRED", updateTime=state.now_ms)
    state.order_event(order, "EXPIRED")
