"""The engines of a live run: one per symbol, over one Account, each talking to its own view of
the run's one LiveBroker (brokers/live/symbol_broker.py); warmed up and restored together (the
session summarises them as paper's: runners/stream_session.py). A one-symbol run is a portfolio
of one: the same code.

Restore: each symbol's engine gets back its own open position (with its stop, targets, filled
legs) from the broker's reconciled state, through the one restore paper runs use too
(runners/restore.py, fed `LiveJournal(state, symbol)`); a trade that closed while the bot was
away is booked in its symbol's engine (the first one's when the run no longer watches that
symbol: the equity is the run's either way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptobot.brokers.live.broker import LiveBroker
from cryptobot.brokers.live.restore import LiveJournal, trades_closed_away, unrecorded_fills
from cryptobot.brokers.live.state import OPEN_STATUSES
from cryptobot.brokers.live.symbol_broker import symbol_brokers
from cryptobot.clock import Clock, LiveClock
from cryptobot.config import Settings
from cryptobot.engine.account import HOUR_MS, Account
from cryptobot.engine.gate import DecisionsAhead
from cryptobot.engine.loop import Engine
from cryptobot.engine.market_rules import load_market_rules
from cryptobot.engine.portfolio import Portfolio
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import ConfigError
from cryptobot.exchange.backfill import WarmUp, load_warm_up
from cryptobot.model import OrderPurpose
from cryptobot.runners.restore import restore_open_position
from cryptobot.runners.stream_session import SessionRecorder, SessionRun, warm_up_engine
from cryptobot.strategy.loading import load_strategy


def build_portfolio(settings: Settings, broker: LiveBroker, recorder: SessionRecorder,
                    clock: Clock, kill_switch: KillSwitch) -> Portfolio:
    """An engine per symbol (its own strategy state, market rules and broker view), one
    account (equity, day, kill switch, portfolio caps) and one macro gate for all."""
    from cryptobot.macro import build_gate

    # the macro caches age by the wall clock; decisions for the next signal close are made
    # between events (DecisionsAhead)
    gate = DecisionsAhead(build_gate(settings, LiveClock()))
    account = Account(settings, gate, recorder, kill_switch)
    views = symbol_brokers(broker, settings.market.symbols)
    engines = []
    for symbol, view in views.items():
        one = settings.for_symbol(symbol)
        rules = load_market_rules(symbol) if settings.market.exchange == "binanceusdm" else None
        engines.append(Engine(one, load_strategy(one, symbol), view, gate, recorder, clock,
                              rules, kill_switch=kill_switch, account=account))
    return Portfolio(engines)


async def warm_up_portfolio(portfolio: Portfolio, rest: Any, settings: Settings,
                            interval_ms: int, signal_ms: int, now_ms: int,
                            between_symbols: Callable[[], bool]) -> dict[str, WarmUp]:
    """Each symbol's REST history into its engine; returns what each got. Before each symbol
    `between_symbols()` runs (the broker's timer: a long warm-up of many symbols still
    reconciles); when it says stop (the kill switch), the rest is not warmed up."""
    loaded = {}
    for symbol, engine in portfolio.engines.items():
        if between_symbols():
            break
        warm = await load_warm_up(rest, symbol, interval_ms, now_ms, settings.feed.warmup_days,
                                  with_open_interest=settings.market.exchange == "binanceusdm")
        warm_up_engine(engine, warm, signal_ms)
        loaded[symbol] = warm
    return loaded


def refuse_unwatched_symbols(broker: LiveBroker, symbols: tuple[str, ...]) -> None:
    """One clear error when the bot holds a position or an order in a symbol this run does
    not watch: no engine would manage it (no break-even, trailing or time stop)."""
    held = {p.symbol for p in broker.state.positions()}
    held |= {row.symbol for row in broker.state.orders(OPEN_STATUSES)}
    unwatched = sorted(held - set(symbols))
    if unwatched:
        raise ConfigError(f"the bot holds positions or orders in {', '.join(unwatched)}, which "
                          "this run does not watch: add them to market.symbols (or --symbol), "
                          "or close them first (`cryptobot kill`)")


def restore_portfolio(portfolio: Portfolio, broker: LiveBroker, run: SessionRun) -> list[str]:
    """Every symbol's open position taken over (returns their signal ids, in the run's symbol
    order), and the trades closed while the bot was away booked."""
    recorder = run.recorder
    restored = []
    for symbol, engine in portfolio.engines.items():
        signal_id = restore_open_position(engine, LiveJournal(broker.state, symbol))
        if signal_id:
            restored.append(signal_id)
            for fill in unrecorded_fills(broker.state, signal_id):
                recorder.fill(fill)  # the restored trade's legs hold them already
    first = next(iter(portfolio.engines.values()))
    for trade, fills in trades_closed_away(broker.state):
        for fill in fills:
            recorder.fill(fill)
        portfolio.engines.get(trade.symbol, first).book_trade_closed_away(trade)
        recorder.commit()  # stored, and its lines printed, before this one
        recorder.console.print(f"booked {trade.signal_id}: closed while the bot was away, "
                               f"PnL {trade.pnl_usdt:+.2f} USDT")
    now_ms = portfolio.clock.now_ms()
    entries = sorted(row.created_ms for row in broker.state.orders()
                     if row.purpose == OrderPurpose.ENTRY.value and row.status != "not_sent"
                     and row.created_ms > now_ms - HOUR_MS)
    for sent_ms in entries:  # the entries of the last hour count again, after a restart too
        portfolio.account.entered(sent_ms)
    recorder.commit()
    for signal_id in restored:  # the console's position lines, as taken over
        taken = broker.state.position(signal_id)
        qty = taken.side.sign * taken.qty_base  # signed: a short's is negative
        recorder.positions[taken.symbol] = (qty, taken.entry_price)
        if len(portfolio.engines) == 1:
            recorder.position_qty, recorder.entry_price = qty, taken.entry_price
        side = "long" if taken.side.sign > 0 else "short"
        recorder.console.print(f"took over the open position {signal_id}: {taken.symbol} "
                               f"{side} {taken.qty_base:.6f} @ {taken.entry_price:,.2f}")
    return restored
