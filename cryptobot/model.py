"""Frozen domain objects shared by every part of the bot.

Times are UTC epoch milliseconds (`*_ms`); candle times are open times, as Binance stamps them.
Quantities are in the base asset (`qty_base`), prices and money in the quote asset (USDT).
Floats are fine in memory; the store keeps money as exact decimals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Candle:
    ts_open_ms: int
    interval_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    symbol: str = ""  # the market it is of, as feeds tag it ("": untagged, a one-symbol run)

    @property
    def ts_close_ms(self) -> int:
        """The first millisecond after the candle: when it is closed and may be used."""
        return self.ts_open_ms + self.interval_ms


@dataclass(frozen=True, slots=True)
class OpenInterest:
    """An open-interest sample, usable only at or after `ts_ms`."""

    ts_ms: int
    oi_contracts: float
    oi_value_usdt: float | None = None
    symbol: str = ""


@dataclass(frozen=True, slots=True)
class Liquidation:
    ts_ms: int
    side: str  # the liquidated order's side: "sell" liquidates a long
    price: float
    qty_base: float
    symbol: str = ""


@dataclass(frozen=True, slots=True)
class FundingRate:
    ts_ms: int
    rate: float
    symbol: str = ""


class GateAction(StrEnum):
    ALLOW = "ALLOW"
    REDUCE = "REDUCE"
    BLOCK = "BLOCK"


@dataclass(frozen=True, slots=True)
class GateDecision:
    ts_ms: int
    action: GateAction
    size_factor: float
    reasons: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class PositionSide(StrEnum):
    """The side of a position (and of the strategy's intent): long buys first, short sells."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> float:
        """+1 for a long, -1 for a short: a price move times this is the position's gain."""
        return 1.0 if self is PositionSide.LONG else -1.0

    @property
    def entry_side(self) -> Side:
        return Side.BUY if self is PositionSide.LONG else Side.SELL

    @property
    def exit_side(self) -> Side:
        """The side of its stop, take-profits and market exits."""
        return Side.SELL if self is PositionSide.LONG else Side.BUY

    @staticmethod
    def of(entry_side: Side) -> PositionSide:
        return PositionSide.LONG if Side(entry_side) is Side.BUY else PositionSide.SHORT


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"


class OrderPurpose(StrEnum):
    ENTRY = "entry"
    STOP = "stop"
    TP1 = "tp1"
    TP2 = "tp2"
    TIME_EXIT = "time_exit"
    FLATTEN = "flatten"  # kill switch, or a stop that could not be placed


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the bot wants on the venue. `client_id` is deterministic (signal + leg)."""

    client_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty_base: float
    purpose: OrderPurpose
    price: float | None = None  # limit price, or trigger price for a stop
    reduce_only: bool = False
    # An entry's planned protective stop, so a broker restarted mid-entry can still place it.
    stop_price: float | None = None
    # "GTC" (resting limits), "IOC" (a capped entry: what does not fill at once is cancelled);
    # None: the order type's default (market orders have none).
    time_in_force: str | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    client_id: str
    symbol: str
    ts_ms: int
    side: Side
    price: float
    qty_base: float
    fee_usdt: float
    is_maker: bool
    purpose: OrderPurpose


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty_base: float
    entry_price: float
    stop_price: float
    opened_ms: int
    signal_id: str
    side: PositionSide = PositionSide.LONG


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """A position a journal holds open, as a restart reads it: a paper run's store
    (runners/restore.py) or the live broker's state (which adds whether it was adopted)."""

    signal_id: str
    symbol: str
    qty_base: float
    entry_price: float
    stop_price: float | None  # the planned stop (None: unknown)
    opened_ms: int
    side: PositionSide = PositionSide.LONG


@dataclass(frozen=True, slots=True)
class TradeLeg:
    ts_ms: int
    price: float
    qty_base: float
    fee_usdt: float
    reason: str  # stop, breakeven_stop, trailing_stop, tp1, tp2, time_stop, flatten


@dataclass(frozen=True, slots=True)
class Trade:
    signal_id: str
    symbol: str
    side: Side
    entry_ms: int
    entry_price: float
    qty_base: float
    initial_stop: float
    legs: tuple[TradeLeg, ...]
    entry_fee_usdt: float
    funding_usdt: float = 0.0

    @property
    def exit_ms(self) -> int:
        return self.legs[-1].ts_ms

    @property
    def exit_price(self) -> float:
        """Quantity-weighted over the staged exits."""
        total = sum(leg.qty_base for leg in self.legs)
        return sum(leg.price * leg.qty_base for leg in self.legs) / total

    @property
    def exit_reason(self) -> str:
        return self.legs[-1].reason

    @property
    def fees_usdt(self) -> float:
        return self.entry_fee_usdt + sum(leg.fee_usdt for leg in self.legs)

    @property
    def pnl_usdt(self) -> float:
        sign = 1.0 if self.side is Side.BUY else -1.0
        gross = sum(sign * (leg.price - self.entry_price) * leg.qty_base for leg in self.legs)
        return gross - self.fees_usdt - self.funding_usdt

    @property
    def r_multiple(self) -> float:
        risk_usdt = abs(self.entry_price - self.initial_stop) * self.qty_base
        return self.pnl_usdt / risk_usdt if risk_usdt else 0.0


class SignalStatus(StrEnum):
    ENTERED = "entered"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SetupEvent:
    """One step of a setup's life, for the report: spike, new_low, candidate, confirmed, expired."""

    ts_ms: int
    kind: str
    price: float


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One sign that a cascade has run its course, measured for a signal (engine/evidence.py).

    `holds` is None when the data to judge it is missing: unknown, never "no"."""

    name: str  # open_interest, liquidations, funding_flushed, credit_holding, repo_calm
    value: float | None  # the number measured (None: nothing to measure)
    holds: bool | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """The stored and exported shape: {"name", "value", "holds", "detail"}."""
        value = self.value if self.value is None or math.isfinite(self.value) else None
        return {"name": self.name, "value": value, "holds": self.holds, "detail": self.detail}

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> EvidenceItem:
        value, holds = item.get("value"), item.get("holds")
        return cls(str(item["name"]), None if value is None else float(value),
                   None if holds is None else bool(holds), str(item.get("detail", "")))


@dataclass(frozen=True, slots=True)
class Signal:
    """A candidate the strategy saw, and what became of it.

    `metrics` holds the measured numbers (body_atr, volume_ratio, drop_from_high_pct,
    oi_change_pct, ...), so a rejection can always say by how much it missed.
    """

    signal_id: str
    symbol: str
    spike_ms: int
    decided_ms: int
    status: SignalStatus
    reason: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    setup_events: tuple[SetupEvent, ...] = ()
    evidence: tuple[EvidenceItem, ...] = ()  # the rebound's evidence, as the engine measured it
