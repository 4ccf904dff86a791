"""User-data-stream events of the fake Binance venue, key for key in the shape of the recorded
payloads in tests/fixtures/binance/user_data_json/ and ws_messages/ (ORDER_TRADE_UPDATE,
ALGO_UPDATE as Binance sends them since the 2025 algo-order migration)."""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """A Decimal as Binance writes numbers: plain digits, no exponent, no trailing zeros."""
    return format(value.normalize(), "f") if value else "0"


def order_trade_update(order: dict, execution_type: str, now_ms: int, *, trade_id: int = 0,
                       last_qty: str = "0", last_price: str = "0", fee: str | None = None,
                       is_maker: bool = False, realized: str = "0") -> dict:
    """`order` is the fake's order record (REST shape); `x` = execution_type."""
    return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": now_ms, "o": {
        "s": order["symbol"], "c": order["clientOrderId"], "S": order["side"],
        "o": order["type"], "f": order["timeInForce"], "q": order["origQty"],
        "p": order["price"], "ap": order["avgPrice"], "sp": order["stopPrice"],
        "x": execution_type, "X": order["status"], "i": order["orderId"], "l": last_qty,
        "z": order["executedQty"], "L": last_price, "N": "USDT" if fee is not None else None,
        "n": fee, "T": now_ms, "t": trade_id, "b": "0", "a": "0", "m": is_maker,
        "R": order["reduceOnly"], "wt": order["workingType"], "ot": order["origType"],
        "ps": order["positionSide"], "cp": order["closePosition"], "AP": None, "cr": None,
        "pP": order["priceProtect"], "si": 0, "ss": 0, "rp": realized, "gtd": 0,
        "W": order["time"], "V": "EXPIRE_MAKER"}}


def algo_update(algo: dict, now_ms: int, avg_price: Decimal | None = None,
                filled_qty: Decimal | None = None) -> dict:
    """`algo` is the fake's algo-order record; `X` its algoStatus."""
    body = {"caid": algo["clientAlgoId"], "aid": algo["algoId"], "at": algo["algoType"],
            "o": algo["orderType"], "s": algo["symbol"], "S": algo["side"],
            "ps": algo["positionSide"], "f": algo["timeInForce"], "q": algo["quantity"],
            "X": algo["algoStatus"], "ai": algo["actualOrderId"]}
    if algo["algoStatus"] != "TRIGGERING":
        body.update(ap=decimal_text(avg_price or Decimal(0)),
                    aq=decimal_text(filled_qty or Decimal(0)),
                    act="MARKET" if algo["actualOrderId"] else "0")
    body.update(tp=algo["triggerPrice"], p=algo["price"], V="EXPIRE_MAKER",
                wt=algo["workingType"], pm=algo["priceMatch"], cp=algo["closePosition"],
                pP=algo["priceProtect"], R=algo["reduceOnly"], tt=algo["triggerTime"],
                gtd=algo["goodTillDate"])
    return {"e": "ALGO_UPDATE", "T": now_ms, "E": now_ms, "o": body}
