"""Pre-trade rails the live broker enforces itself, whatever the engine decided.

New entries stop when: the kill-switch file exists, reconciliation has not succeeded, the
position would exceed the configured max notional or leverage, the configured number of open
positions is reached, or today's (UTC) realised loss has reached the max daily loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptobot.clock import utc_day_start_ms
from cryptobot.errors import OrderRejectedError
from cryptobot.model import OrderIntent, OrderPurpose

if TYPE_CHECKING:
    from cryptobot.brokers.live.broker import LiveBroker


def daily_realised_pnl_usdt(broker: LiveBroker, day_start_ms: int) -> float:
    """Realised PnL of today's fills (exits against their position's entry), fees included."""
    total = 0.0
    for fill in broker.state.fills():
        if fill.ts_ms < day_start_ms:
            continue
        total -= float(fill.fee_usdt)
        if fill.purpose == OrderPurpose.ENTRY.value:
            continue
        position = broker.state.position(fill.signal_id)
        if position is not None:
            total += (float(fill.price) - position.entry_price) * float(fill.qty_base)
    return total


def check_entry_rails(broker: LiveBroker, intent: OrderIntent) -> None:
    from cryptobot.brokers.live.broker import kill_switch_present

    settings = broker.settings
    who = intent.client_id
    if kill_switch_present(settings):
        raise OrderRejectedError(f"{who}: kill switch {settings.risk.kill_switch_file} is present")
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
    open_positions = broker.state.positions()
    if len(open_positions) >= settings.risk.max_open_positions:
        raise OrderRejectedError(f"{who}: {len(open_positions)} open position(s), "
                                 f"risk.max_open_positions is {settings.risk.max_open_positions}")
    if any(p.symbol == intent.symbol for p in open_positions):
        raise OrderRejectedError(f"{who}: a position in {intent.symbol} is already open")
    if settings.risk.max_daily_loss > 0 and equity:
        pnl = daily_realised_pnl_usdt(broker, utc_day_start_ms(broker.clock.now_ms()))
        if pnl <= -settings.risk.max_daily_loss * equity:
            raise OrderRejectedError(f"{who}: today's realised loss {-pnl:.2f} USDT reached "
                                     f"risk.max_daily_loss ({settings.risk.max_daily_loss:g} "
                                     "of equity): no new entries until 00:00 UTC")
