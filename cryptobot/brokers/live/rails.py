"""Pre-trade rails the live broker enforces itself, whatever the engine decided.

New entries stop when: the kill switch is engaged, the position would exceed the configured max
notional or leverage, the configured number of open positions is reached, or today's (UTC)
realised loss has reached the max daily loss. (Until reconciliation has succeeded the broker
refuses every order before it gets here.)
"""

from __future__ import annotations

from typing import Protocol

from cryptobot.brokers.live.state import LiveState, StoredPosition
from cryptobot.clock import Clock, utc_day_start_ms
from cryptobot.config import Settings
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import OrderRejectedError
from cryptobot.model import OrderIntent, OrderPurpose


class RailedBroker(Protocol):
    """What the rails read from the broker they guard."""

    settings: Settings
    clock: Clock
    state: LiveState
    kill_switch: KillSwitch
    equity_usdt: float | None

    def reference_price(self, symbol: str) -> float: ...


def daily_realised_pnl_usdt(state: LiveState, day_start_ms: int) -> float:
    """Realised PnL of today's fills (exits against their position's entry: (exit - entry) x
    qty for a long, (entry - exit) x qty for a short), fees included."""
    fills = state.fill_amounts(since_ms=day_start_ms)
    positions = state.positions_of({fill.signal_id for fill in fills
                                    if fill.purpose != OrderPurpose.ENTRY.value})
    total = 0.0
    for fill in fills:
        total -= fill.fee_usdt
        if fill.purpose == OrderPurpose.ENTRY.value:
            continue
        position = positions.get(fill.signal_id)
        if position is not None:
            total += position.side.sign * (fill.price - position.entry_price) * fill.qty_base
    return total


def check_entry_rails(broker: RailedBroker, intent: OrderIntent,
                      open_positions: list[StoredPosition]) -> None:
    """Refuse the entry (OrderRejectedError) if a rail stops it; `open_positions`: the state's,
    read by the caller."""
    settings = broker.settings
    who = intent.client_id
    if broker.kill_switch.engaged():
        raise OrderRejectedError(f"{who}: kill switch {broker.kill_switch.path} is present")
    notional = intent.qty_base * broker.reference_price(intent.symbol)
    if notional > settings.risk.max_notional_usdt * (1 + 1e-9):
        raise OrderRejectedError(f"{who}: notional {notional:.2f} USDT is above risk."
                                 f"max_notional_usdt {settings.risk.max_notional_usdt:g}")
    equity = broker.equity_usdt
    if equity:
        cap = equity * min(settings.risk.max_leverage, settings.live.leverage)
        if notional > cap * (1 + 1e-9):
            raise OrderRejectedError(f"{who}: notional {notional:.2f} USDT is above "
                                     f"{cap:.2f} USDT (leverage cap on equity {equity:.2f})")
    cap = settings.portfolio.max_open_positions
    if len(open_positions) >= cap:
        raise OrderRejectedError(f"{who}: {len(open_positions)} open position(s), "
                                 f"portfolio.max_open_positions is {cap}")
    if any(p.symbol == intent.symbol for p in open_positions):
        raise OrderRejectedError(f"{who}: a position in {intent.symbol} is already open")
    if settings.risk.max_daily_loss > 0 and equity:
        pnl = daily_realised_pnl_usdt(broker.state, utc_day_start_ms(broker.clock.now_ms()))
        if pnl <= -settings.risk.max_daily_loss * equity:
            raise OrderRejectedError(f"{who}: today's realised loss {-pnl:.2f} USDT reached "
                                     f"risk.max_daily_loss ({settings.risk.max_daily_loss:g} "
                                     "of equity): no new entries until 00:00 UTC")
