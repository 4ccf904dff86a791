"""Stored rows back as model objects: one function per table, nothing else.

A row that does not convert raises one of `CORRUPTION`; the reader turns that into a StoreError
naming the table and the row.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

from cryptobot.engine.recorder import OrderEvent, RunInfo
from cryptobot.model import (
    EvidenceItem,
    Fill,
    GateAction,
    GateDecision,
    OpenInterest,
    OrderIntent,
    OrderPurpose,
    OrderType,
    SetupEvent,
    Side,
    Signal,
    SignalStatus,
    Trade,
    TradeLeg,
)

CORRUPTION = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, AttributeError)


def number(value: Decimal | float | None) -> float:
    if value is None:
        raise ValueError("missing number")
    return float(value)


def run_symbols(run: Any) -> tuple[str, ...]:
    """The run's symbols, as stored: a non-empty JSON list of text."""
    symbols = run.symbols_json
    if not isinstance(symbols, list) or not symbols or not all(
            isinstance(symbol, str) and symbol for symbol in symbols):
        raise ValueError(f"symbols is not a list of symbols: {symbols!r}")
    return tuple(symbols)


def run_info(run: Any) -> RunInfo:
    return RunInfo(
        mode=run.mode,
        exchange=run.exchange,
        symbols=run_symbols(run),
        start_ms=run.start_ms,
        end_ms=run.end_ms,
        data_source=run.data_source,
        settings=dict(run.settings_json),
    )


def gate_decision(row: Any) -> tuple[GateDecision, str]:
    decision = GateDecision(
        ts_ms=int(row.ts_ms),
        action=GateAction(row.action),
        size_factor=float(row.size_factor),
        reasons=tuple(str(reason) for reason in row.reasons_json),
        inputs=dict(row.inputs_json),
    )
    return decision, row.trigger


def signal(row: Any) -> Signal:
    return Signal(
        signal_id=row.signal_id,
        symbol=row.symbol,
        spike_ms=int(row.spike_ms),
        decided_ms=int(row.decided_ms),
        status=SignalStatus(row.status),
        reason=row.reason,
        metrics=dict(row.metrics_json),
        setup_events=tuple(SetupEvent(int(ts), str(kind), float(price))
                           for ts, kind, price in row.setup_events_json),
        evidence=tuple(EvidenceItem.from_dict(item) for item in row.evidence_json or ()),
    )


def trade_leg(row: Any) -> TradeLeg:
    return TradeLeg(
        ts_ms=int(row.ts_ms),
        price=number(row.price),
        qty_base=number(row.qty_base),
        fee_usdt=number(row.fee_usdt),
        reason=row.reason,
    )


def trade(row: Any, legs: dict[int, list[TradeLeg]]) -> Trade:
    if row.seq not in legs:
        raise ValueError("trade has no exit legs")
    return Trade(
        signal_id=row.signal_id,
        symbol=row.symbol,
        side=Side(row.side),
        entry_ms=int(row.entry_ms),
        entry_price=number(row.entry_price),
        qty_base=number(row.qty_base),
        initial_stop=number(row.initial_stop),
        legs=tuple(legs[row.seq]),
        entry_fee_usdt=number(row.entry_fee_usdt),
        funding_usdt=number(row.funding_usdt),
    )


def order_event(row: Any) -> OrderEvent:
    intent = OrderIntent(
        client_id=row.client_id,
        symbol=row.symbol,
        side=Side(row.side),
        order_type=OrderType(row.order_type),
        qty_base=number(row.qty_base),
        purpose=OrderPurpose(row.purpose),
        price=None if row.price is None else float(row.price),
        reduce_only=bool(row.reduce_only),
    )
    return OrderEvent(int(row.ts_ms), intent, row.status, row.detail)


def fill(row: Any) -> Fill:
    return Fill(
        client_id=row.client_id,
        symbol=row.symbol,
        ts_ms=int(row.ts_ms),
        side=Side(row.side),
        price=number(row.price),
        qty_base=number(row.qty_base),
        fee_usdt=number(row.fee_usdt),
        is_maker=bool(row.is_maker),
        purpose=OrderPurpose(row.purpose),
    )


def equity_point(row: Any) -> tuple[int, float]:
    return int(row.ts_ms), number(row.equity_usdt)


def oi_sample(row: Any) -> OpenInterest:
    return OpenInterest(
        int(row.ts_ms),
        float(row.oi_contracts),
        None if row.oi_value_usdt is None else float(row.oi_value_usdt),
        str(row.symbol),
    )


def describe(exc: BaseException) -> str:
    """What is wrong with a stored value, in words (a decimal error's repr says nothing)."""
    if isinstance(exc, decimal.InvalidOperation):
        return "a stored number is not a number"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
