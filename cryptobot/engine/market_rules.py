"""A market's trading rules (lot size, minimum notional) from Binance exchangeInfo.

The recorded exchangeInfo in data/exchange/ is used offline; a live broker may build the same
object from a fresh `GET /fapi/v1/exchangeInfo`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from cryptobot.errors import DataError
from cryptobot.exchange.symbols import market_id

DEFAULT_EXCHANGE_INFO = Path(__file__).resolve().parents[2] / "data" / "exchange" / \
    "binance_usdm_exchange_info.json"


@dataclass(frozen=True, slots=True)
class MarketRules:
    symbol: str  # venue id, e.g. BTCUSDT
    lot_step: float
    min_qty: float
    min_notional_usdt: float
    tick_size: float = 0.0

    def round_qty_down(self, qty_base: float) -> float:
        """Down to a whole number of lot steps (a hair of tolerance for float noise)."""
        steps = math.floor(qty_base / self.lot_step + 1e-9)
        decimals = max(0, -int(math.floor(math.log10(self.lot_step))))
        return round(steps * self.lot_step, decimals)

    def check(self, qty_base: float, price: float) -> str | None:
        """None if the order is allowed, else why not (one line)."""
        if qty_base < self.min_qty:
            return f"quantity {qty_base} is below the minimum {self.min_qty} {self.symbol}"
        if qty_base * price < self.min_notional_usdt:
            return (f"notional {qty_base * price:.2f} USDT is below the minimum "
                    f"{self.min_notional_usdt:g} USDT")
        return None


def load_market_rules(symbol: str, path: str | Path = DEFAULT_EXCHANGE_INFO) -> MarketRules:
    path = Path(path)
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: exchange info file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    wanted = market_id(symbol)
    for entry in info.get("symbols", []):
        if entry.get("symbol") != wanted:
            continue
        filters = {f.get("filterType"): f for f in entry.get("filters", [])}
        try:
            lot = filters["LOT_SIZE"]
            return MarketRules(
                symbol=wanted,
                lot_step=float(lot["stepSize"]),
                min_qty=float(lot["minQty"]),
                min_notional_usdt=float(filters.get("MIN_NOTIONAL", {}).get("notional", 0.0)),
                tick_size=float(filters.get("PRICE_FILTER", {}).get("tickSize", 0.0)),
            )
        except (KeyError, ValueError) as exc:
            raise DataError(f"{path}: symbol {wanted}: bad LOT_SIZE/MIN_NOTIONAL filter: {exc}") \
                from None
    raise DataError(f"{path}: symbol {wanted} not found in exchange info")
