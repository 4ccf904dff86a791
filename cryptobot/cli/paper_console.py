"""What `cryptobot paper` and `cryptobot live` print: a heartbeat per closed signal candle, every
signal, order and fill as it happens, and the run's end. It wraps the store's recorder, so printing
and storing see the same events.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from cryptobot.cli.stop_moves import StopMoves
from cryptobot.clock import Clock, iso_utc
from cryptobot.engine.recorder import OrderEvent, Recorder, RunInfo
from cryptobot.exchange.feed import FeedEvent, event_time_ms
from cryptobot.heartbeat import Heartbeat
from cryptobot.model import (
    Candle,
    Fill,
    GateDecision,
    OpenInterest,
    OrderPurpose,
    Side,
    Signal,
    SignalStatus,
    Trade,
)
from cryptobot.runners.stream_session import SessionRun


def run_console() -> Console:
    """The console of a run: a line is never wrapped by us (piped too: no 80-column cut)."""
    return Console(soft_wrap=True)


def _minute(ts_ms: int) -> str:
    return iso_utc(ts_ms)[:16] + "Z"


class ConsoleRecorder:
    """A Recorder that stores through `inner` and prints; also the session's observer.

    With `commit_per_event` (paper and live), the store is committed once what each event
    caused is handled (paper: a base candle, with the samples before it, in one transaction;
    live: a candle, a user-stream event or a timer tick, once the orders it caused are out, and
    before any wait inside it), by `commit`: a crash never leaves a candle half stored, which
    a resume relies on. What an event caused is printed once it is committed, so that whatever
    the console showed is stored. Without it, the store commits as it buffers and lines print
    at once.

    Every line is stamped with the run's `clock` when the run learned of it, so lines are in
    time order and the stop placed on an entry's fill follows it at the same time. A fill's
    own time (the paper simulator's: its candle's open; live: the exchange's) is added when it
    is another minute."""

    def __init__(self, inner: Recorder, console: Console, heartbeat: bool = True,
                 commit_per_event: bool = False, verbose: bool = False,
                 alive: Heartbeat | None = None, clock: Clock | None = None) -> None:
        self.inner = inner
        self.clock = clock  # None: a fill is stamped with its own time
        self.alive = alive  # the run's heartbeat file: beats as the stream's events come
        self.console = console
        self.heartbeat = heartbeat
        self.verbose = verbose  # every order event (else a stop's moves in one line a trade)
        self._stop_moves = StopMoves()
        # lines held until the commit (a heartbeat's: written then, see signal_candle)
        self._held: list[tuple[str | Callable[[], str], dict[str, Any]]] | None = (
            [] if commit_per_event else None)
        self.position_qty = 0.0  # signed: negative for a short
        self.entry_price = 0.0
        self.gate_action = "-"
        self.heartbeats = 0
        self._oi: deque[OpenInterest] = deque(maxlen=256)
        self._several_symbols = False  # then each heartbeat names its symbol
        self.positions: dict[str, tuple[float, float]] = {}  # symbol: signed qty, entry price

    def __getattr__(self, name: str) -> Any:  # run_id, flush, close ... of the store
        return getattr(self.inner, name)

    # --- SessionObserver ---------------------------------------------------------------
    def on_event(self, event: FeedEvent) -> None:
        if self.alive is not None:
            self.alive.beat(event_ms=event_time_ms(event))
        if isinstance(event, OpenInterest):
            self._oi.append(event)  # its row goes with the next candle's (the feed repeats it)
        elif isinstance(event, Candle):
            self.commit()

    def commit(self) -> None:
        """Write what the store holds in one transaction, then print what it said."""
        if self._held is None:
            return
        flush = getattr(self.inner, "flush", None)
        if flush is not None:
            flush()
        held, self._held = self._held, []
        for text, options in held:
            self.console.print(text if isinstance(text, str) else text(), **options)

    def _say(self, text: str, **options: Any) -> None:
        self._held_moves()
        self._print(text, **options)

    def _held_moves(self) -> None:
        """The stop moves folded so far, before any other event's line (heartbeats aside)."""
        for ts_ms, text in self._stop_moves.pending():
            self._print(f"STOP   {_minute(ts_ms)} {escape(text)}")

    def _print(self, text: str | Callable[[], str], **options: Any) -> None:
        """Print `text` (or the line it writes), or hold it until the commit."""
        if self._held is None:
            self.console.print(text if isinstance(text, str) else text(), **options)
        else:
            self._held.append((text, options))

    # --- Recorder ----------------------------------------------------------------------
    def start_run(self, info: RunInfo) -> str:
        self._several_symbols = len(info.symbols) > 1
        self._oi = deque(maxlen=256 * len(info.symbols))
        run_id = self.inner.start_run(info)
        if self.alive is not None:
            self.alive.beat(str(run_id))
        return run_id

    def signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self.inner.signal(signal, gate)
        style = "green" if signal.status is SignalStatus.ENTERED else "yellow"
        gate_text = f" gate {gate.action}" if gate is not None else ""
        named = f"{signal.symbol} " if self._several_symbols else ""
        reason = "" if signal.reason == str(signal.status) else f": {escape(signal.reason)}"
        self._say(f"[{style}]SIGNAL[/] {_minute(signal.decided_ms)} {named}spike "
                  f"{_minute(signal.spike_ms)} {signal.status}{reason}{gate_text}")

    def gate_decision(self, decision: GateDecision, trigger: str) -> None:
        self.inner.gate_decision(decision, trigger)
        self.gate_action = str(decision.action)

    def order(self, event: OrderEvent) -> None:
        self.inner.order(event)
        if event.status == "filled":
            return  # its FILL lines say it, stamped when it filled
        if not self.verbose and self._stop_moves.fold(event):
            return
        intent = event.intent
        price = "" if intent.price is None else f" @ {intent.price:,.2f}"
        detail = f" {escape(event.detail)}" if event.detail else ""
        self._say(f"ORDER  {_minute(event.ts_ms)} {event.status} {intent.purpose} "
                  f"{intent.side} {intent.order_type} {intent.qty_base:.6f}{price} "
                  f"({intent.client_id}){detail}")

    def fill(self, fill: Fill) -> None:
        self.inner.fill(fill)
        self.position_qty, self.entry_price = _after_fill(self.position_qty, self.entry_price,
                                                          fill)
        self.positions[fill.symbol] = _after_fill(*self.positions.get(fill.symbol, (0.0, 0.0)),
                                                  fill)
        named = f"{fill.symbol} " if self._several_symbols else ""
        known_ms = fill.ts_ms if self.clock is None else self.clock.now_ms()
        own = "" if _minute(known_ms) == _minute(fill.ts_ms) else \
            f" fill time {_minute(fill.ts_ms)[11:]}"
        self._say(f"[cyan]FILL[/]   {_minute(known_ms)} {named}{fill.purpose} {fill.side} "
                  f"{fill.qty_base:.6f} @ {fill.price:,.2f}{own} fee {fill.fee_usdt:.4f} "
                  f"({fill.client_id})")

    def trade(self, trade: Trade, gate: GateDecision | None) -> None:
        self.inner.trade(trade, gate)
        self._held_moves()
        self._stop_moves.trade_closed(trade.signal_id)
        side = "long" if trade.side is Side.BUY else "short"  # the entry's side
        named = f"{trade.symbol} {side}" if self._several_symbols else side
        self._say(f"[bold]TRADE[/]  {named} {_minute(trade.entry_ms)} -> "
                  f"{_minute(trade.exit_ms)} PnL {trade.pnl_usdt:+,.2f} USDT "
                  f"({trade.r_multiple:+.2f}R, {trade.exit_reason})")

    def equity(self, ts_ms: int, equity_usdt: float) -> None:
        self.inner.equity(ts_ms, equity_usdt)

    def signal_candle(self, symbol: str, candle: Candle) -> None:
        self.inner.signal_candle(symbol, candle)
        self.heartbeats += 1
        if self.heartbeat:  # held, the line is written at the commit (once the candle's
            # orders are out) from what it shows as of now
            oi, gate = self._oi_change(candle, symbol), self.gate_action
            position = self.position_text(symbol if self._several_symbols else "")
            self._print(lambda: self._heartbeat_text(candle, symbol, oi, gate, position),
                        highlight=False)

    def _heartbeat_text(self, candle: Candle, symbol: str, oi: str, gate: str,
                        position: str) -> str:
        named = f"{symbol} " if self._several_symbols and symbol else ""
        return (f"{_minute(candle.ts_close_ms)} {named}close {candle.close:,.1f}  "
                f"OI {oi}  gate {gate}  {position}")

    def open_interest(self, symbol: str, sample: OpenInterest) -> None:
        self.inner.open_interest(symbol, sample)

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.inner.finish_run(summary)
        self._held_moves()
        self.commit()  # stored by finish_run: print what it held
        if self.alive is not None:
            self.alive.finish(str(summary.get("stopped_early") or "finished"))

    # --- the heartbeat -----------------------------------------------------------------
    def position_text(self, symbol: str = "") -> str:
        """The position held (of `symbol`, in a run of several symbols)."""
        qty, entry = self.positions.get(symbol, (0.0, 0.0)) if symbol else (
            self.position_qty, self.entry_price)
        if abs(qty) <= 1e-12:
            return "flat"
        side = "long" if qty > 0 else "short"
        return f"{side} {abs(qty):.6f} @ {entry:,.2f}"

    def _oi_change(self, candle: Candle, symbol: str = "") -> str:
        """From the last sample (as received) stamped by the candle's open to the last one by
        its close: looked for from the newest back (a live candle's heartbeat is made before
        its orders go out)."""
        before = after = None
        for sample in reversed(self._oi):
            if sample.symbol and symbol and sample.symbol != symbol:
                continue  # another symbol's (an untagged sample is the one symbol's)
            if after is None and sample.ts_ms <= candle.ts_close_ms:
                after = sample
            if sample.ts_ms <= candle.ts_open_ms:
                before = sample
                break
        if before is None or after is None or not before.oi_contracts:
            return "n/a"
        return f"{(after.oi_contracts / before.oi_contracts - 1) * 100:+.2f}%"


def _after_fill(qty: float, entry_price: float, fill: Fill) -> tuple[float, float]:
    """A position (signed quantity, entry price) after `fill`."""
    held = abs(qty)
    if fill.purpose is OrderPurpose.ENTRY:  # signed: a short's entry sells
        entry_price = (entry_price * held + fill.price * fill.qty_base) / (held + fill.qty_base)
        return qty + (fill.qty_base if fill.side is Side.BUY else -fill.qty_base), entry_price
    return math.copysign(max(0.0, held - fill.qty_base), qty), entry_price


def print_session_end(console: Console, run: SessionRun, summary: dict[str, Any],
                      headline: str) -> None:
    """The run's trades, PnL and position, where it is stored and how to review it."""
    engine = run.engine
    assert engine is not None
    console.print(f"\n[bold]{headline}[/]: {len(engine.signals)} signals, "
                  f"{summary['trades']} trades, PnL {summary['total_pnl_usdt']:+,.2f} USDT, "
                  f"position {summary['open_position_detail']}")
    several = len(run.settings.market.symbols) > 1  # then each trade names its symbol
    for trade in engine.trades:
        side = "long" if trade.side is Side.BUY else "short"
        side = f"{trade.symbol} {side}" if several else side
        console.print(f"  {side} {iso_utc(trade.entry_ms)} -> {iso_utc(trade.exit_ms)}  qty "
                      f"{trade.qty_base:.6f}  entry {trade.entry_price:,.2f}  exit "
                      f"{trade.exit_price:,.2f}  PnL {trade.pnl_usdt:+,.2f}  "
                      f"{trade.r_multiple:+.2f}R  {trade.exit_reason}")
    print_where_stored(console, run.db_url, run.run_id)


def print_where_stored(console: Console, db_url: str, run_id: str | None) -> None:
    from cryptobot.store import masked_url

    db_url = masked_url(db_url)  # never a password on the console
    console.print(f"stored in {db_url} (run {run_id}); review it with "
                  f"`cryptobot trades --db {db_url} --run {run_id}` or "
                  f"`cryptobot report --db {db_url} --run {run_id} --out report.html`",
                  markup=False, highlight=False, soft_wrap=True)
