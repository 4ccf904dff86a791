"""Trades and signals as plain dicts: the one JSON shape of `backtest --json` and the reviews.

Times are ISO-8601 UTC strings like 2025-10-10T21:15:00Z; non-finite numbers become null.
"""

from __future__ import annotations

import math
from typing import Any

from cryptobot.clock import iso_utc
from cryptobot.model import GateDecision, PositionSide, Signal, Trade

# The spike and OI numbers the rules measure, in this order and null when not measured. A
# short's rule measures the rise from the low where a long's measures the drop from the high.
MEASURED = ("body_atr", "volume_ratio", "drop_from_high_pct", "oi_change_pct")
SHORT_MEASURES = {"drop_from_high_pct": "rise_from_low_pct"}


def measured_names(metrics: dict[str, float | None]) -> tuple[str, ...]:
    """`MEASURED` as this signal's rule measured them (a short's names where it has them)."""
    return tuple(SHORT_MEASURES[name] if SHORT_MEASURES.get(name) in metrics else name
                 for name in MEASURED)


def _num(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def trade_to_dict(trade: Trade) -> dict[str, Any]:
    return {
        "signal_id": trade.signal_id,
        "symbol": trade.symbol,
        "side": str(PositionSide.of(trade.side)),  # long or short
        "entry_time": iso_utc(trade.entry_ms),
        "exit_time": iso_utc(trade.exit_ms),
        "qty": trade.qty_base,
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "initial_stop": trade.initial_stop,
        "pnl_usdt": trade.pnl_usdt,
        "fees_usdt": trade.fees_usdt,
        "funding_usdt": trade.funding_usdt,
        "r_multiple": trade.r_multiple,
        "exit_reason": trade.exit_reason,
        "legs": [
            {
                "time": iso_utc(leg.ts_ms),
                "price": leg.price,
                "qty": leg.qty_base,
                "fee_usdt": leg.fee_usdt,
                "reason": leg.reason,
            }
            for leg in trade.legs
        ],
    }


def signal_to_dict(signal: Signal) -> dict[str, Any]:
    metrics = {key: _num(value) for key, value in signal.metrics.items()}
    return {
        "signal_id": signal.signal_id,
        "symbol": signal.symbol,
        "time": iso_utc(signal.spike_ms),
        "decided_time": iso_utc(signal.decided_ms),
        "status": str(signal.status),
        "reason": signal.reason,
        **{name: metrics.pop(name, None) for name in measured_names(metrics)},
        **metrics,
        "setup_events": [
            {"time": iso_utc(event.ts_ms), "kind": event.kind, "price": event.price}
            for event in signal.setup_events
        ],
        "evidence": [item.as_dict() for item in signal.evidence],
    }


def gate_to_dict(decision: GateDecision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "time": iso_utc(decision.ts_ms),
        "action": str(decision.action),
        "size_factor": decision.size_factor,
        "reasons": list(decision.reasons),
    }
