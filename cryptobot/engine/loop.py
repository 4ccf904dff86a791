"""The one event loop that backtest, paper and live all run; it never asks which mode it is in.

The caller advances the injected clock to each event's time and calls the matching method:
`on_base_candle` (closed, usable at its ts_close_ms), `on_open_interest`, `on_funding`,
`on_liquidation`, `on_fill` (bound to the broker), `on_time` (time passed: daily gate, kill
switch, protection retries; live calls it on a timer) and finally `finish`. The engine
aggregates signal candles, asks the strategy, sizes through risk, asks the gate, places orders
through the broker and reports to the recorder; the open trade's fills, stop, targets and exits
are kept in engine/trades.py, its protection in engine/protection.py. Backtests may skip base
candles they prove quiet (runners/quiet_skip.py) through `next_deadline_ms`, `holds_quietly` and
`on_quiet_*`. A restart replays the run's history and restores its position and account
(engine/restart.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptobot.clock import DAY_MS, Clock
from cryptobot.config import Settings
from cryptobot.data.resample import CandleAggregator
from cryptobot.engine.account import Account
from cryptobot.engine.broker import Broker, client_id
from cryptobot.engine.evidence import SpikeWindow, evidence_refusal, measure_evidence
from cryptobot.engine.gate import DecisionsAhead, Gate
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.market_view import KnownMarket, MarketView, signal_interval_ms
from cryptobot.engine.open_trade import (
    OpenTrade,
    PendingEntry,
    open_position_summary,
)
from cryptobot.engine.protection import Protection
from cryptobot.engine.recorder import Recorder
from cryptobot.engine.restart import EngineRestart
from cryptobot.engine.risk import KillSwitch, NeverEngaged, size_position
from cryptobot.engine.trade_orders import (
    TradeOrders,
    trailing_active,
)
from cryptobot.engine.trades import EngineTrades
from cryptobot.errors import TemporaryExchangeError
from cryptobot.model import (
    Candle,
    EvidenceItem,
    FundingRate,
    GateAction,
    GateDecision,
    Liquidation,
    OpenInterest,
    OrderPurpose,
    PositionSide,
    Signal,
    SignalStatus,
    Trade,
)
from cryptobot.strategy.api import (
    Decision,
    Enter,
    Reject,
    Strategy,
    StrategyContext,
)
from cryptobot.strategy.loading import decisions_of, guarded


class Engine(EngineTrades, EngineRestart):
    def __init__(self, settings: Settings, strategy: Strategy, broker: Broker, gate: Gate,
                 recorder: Recorder, clock: Clock, market_rules: MarketRules | None = None, *,
                 kill_switch: KillSwitch | NeverEngaged, known: KnownMarket | None = None,
                 aggregator=None, account: Account | None = None) -> None:
        """One symbol's engine (`settings` of that one symbol). `kill_switch`: the file
        (paper, live) or `NeverEngaged` (backtests), always chosen by the caller. `account`:
        what the symbols of a run share (engine/portfolio.py); a one-symbol run's own when
        None. `known` and `aggregator`: a fast backtest's precomputed market."""
        self.settings = settings
        self.symbol = settings.market.symbol
        self.strategy = strategy
        self.broker = broker
        self.gate = gate
        self.recorder = recorder
        self.clock = clock
        self.market_rules = market_rules
        self.signal_interval_ms = signal_interval_ms(settings)
        self.market = MarketView(
            strategy, self.signal_interval_ms, settings.risk.atr_period,
            settings.risk.volatility_median_days * DAY_MS // self.signal_interval_ms, clock,
            known)
        if known is None:  # paper and live run for months (a fast backtest knows its length)
            self.market.bound_history(settings)
        self.orders = TradeOrders(settings, broker, recorder, clock, market_rules)
        self.protection = Protection(settings.live, self.orders, clock,
                                     lambda trade: self._trade is trade)
        if account is not None and account.kill_switch is not kill_switch:
            raise ValueError("an engine's kill switch must be its account's")
        self.account = account or Account(settings, gate, recorder, kill_switch)
        self.account.join(self)
        self.signals: list[Signal] = []
        self.trades: list[Trade] = []
        self.candles_processed = 0
        self.exposure_ms = 0
        self.funding_seen = False
        self._aggregator: CandleAggregator | None = aggregator
        self._signal_row = -1
        self._pending: PendingEntry | None = None
        self._last_entry: PendingEntry | None = None  # late fills of an ended entry still count
        self._trade: OpenTrade | None = None
        self._strategy_name = type(strategy).__name__
        broker.bind(self.on_fill, self._on_order)

    @property
    def equity_usdt(self) -> float:
        """The run's equity (shared by all its symbols)."""
        return self.account.equity_usdt

    @property
    def killed(self) -> bool:
        return self.account.killed

    # --- the public event API ------------------------------------------------------------

    def warm_up(self, candles: list[Candle]) -> None:
        """History before trading starts: indicators only, no strategy, no orders."""
        for candle in candles:
            self.market.on_base_candle(candle)
            for closed in self._aggregate(candle):
                self._signal_row = self.market.close_signal_candle(closed)

    def on_time(self, now_ms: int | None = None) -> None:
        """Time passed (a timer, or a skipped idle span): daily gate, kill switch, and the
        protection retries that are due."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        self.account.roll_day(now)
        self._protect()

    def decide_gate_ahead(self) -> None:
        """Between events (live): the gate's decision for the next signal candle's close, made
        now, so that an entry then does not wait on it (a gate that can: DecisionsAhead)."""
        if isinstance(self.gate, DecisionsAhead):
            now, interval = self.clock.now_ms(), self.signal_interval_ms
            self.gate.decide_ahead(now - now % interval + interval)

    def on_base_candle(self, candle: Candle) -> None:
        now = self.clock.now_ms()
        if not self.account.day_begun(now):
            self.account.roll_day(now)
        trade_before = self._trade
        self._charge_funding(candle)  # settled by its open: on what was held then
        self.broker.on_base_candle(candle)  # fills first: they happened inside this candle
        self._protect()
        self.market.on_base_candle(candle)
        self.candles_processed += 1
        trade = self._trade
        if trade_before is not None or trade is not None:
            self.exposure_ms += candle.interval_ms
        closed = self._aggregate(candle)
        trade = self._trade
        if (trade is not None and not trade.closing and trade.wanted_exit is None
                and now >= self.next_deadline_ms()):
            self.protection.exit(trade, OrderPurpose.TIME_EXIT)  # the time stop
        for signal_candle in closed:
            self._on_signal_candle(signal_candle)

    def on_open_interest(self, sample: OpenInterest) -> None:
        if self.market.open_interest.add(sample.ts_ms, sample):  # the report draws the
            self.recorder.open_interest(self.symbol, sample)  # samples the rule used

    def on_funding(self, rate: FundingRate) -> None:
        self.funding_seen = True
        self.market.funding.add(rate.ts_ms, rate)

    def on_liquidation(self, event: Liquidation) -> None:
        self.market.liquidations.add(event)

    def on_liquidation_coverage(self, start_ms: int, end_ms: int, known_ms: int | None = None,
                                silence_ms: int = 0) -> None:
        """Recorded liquidations cover [start_ms, end_ms), known from `known_ms` (None: now),
        and a silence after it up to `silence_ms` as it passes (LiquidationBook.cover)."""
        self.market.liquidations.cover(start_ms, end_ms, known_ms, silence_ms)

    def on_liquidation_listening(self, start_ms: int, end_ms: int | None,
                                 symbols: Iterable[str] | None = None) -> None:
        """A stream carrying the venue's liquidations (of `symbols`; None: this one's) is
        listening since `start_ms` (end None), or its connection's last message came at
        `end_ms` (the hole after it is unknown, never quiet)."""
        if symbols is not None and self.symbol not in symbols:
            return
        if end_ms is None:
            self.market.liquidations.listening_since(start_ms)
        else:
            self.market.liquidations.stopped_listening(end_ms)

    def is_idle(self) -> bool:
        """No position, no entry or order working: a backtest may skip quiet candles."""
        return self._trade is None and self._pending is None

    def strategy_waiting(self) -> bool:
        return guarded(self._strategy_name, "waiting", self.strategy.waiting)

    # --- for runners that skip quiet candles (backtests) and restarts -------------------------

    def next_deadline_ms(self) -> int | None:
        """When the engine acts on its own with no price event (the time stop), or None."""
        trade = self._trade
        if trade is None or trade.closing:
            return None
        return trade.entry_ms + int(self.settings.exits.time_stop_hours * 3_600_000)

    def holds_quietly(self) -> bool:
        """A position protected by a working stop, no market order or entry working, and no
        trailing stop running: a signal candle the strategy is not given (not waiting, no
        trigger) changes only the trade's bookkeeping, until the engine is fed again."""
        trade = self._trade
        if trade is None or trade.closing or trade.stop_id is None or self._pending is not None:
            return False
        return not (trailing_active(self.settings.exits, trade) or self.protection.owed(trade))

    def on_quiet_base_candles(self, count: int, interval_ms: int) -> None:
        """Base candles a backtest proved quiet and did not feed: time in the market."""
        if self._trade is not None:
            self.exposure_ms += count * interval_ms

    def on_quiet_signal_candles(self, rows: range) -> None:
        """Signal candles (rows of the known market, in order) skipped while `holds_quietly()`:
        what `_on_signal_candle` would have noted. The backtest records the candles itself."""
        trade = self._trade
        if trade is None or not len(rows):
            return
        best = self.market.best_close(rows, trade.entry_ms, trade.side)
        if best is not None:
            trade.note_close(best)
            trade.atr = self.market.atr(rows.stop - 1)
        self._signal_row = rows.stop - 1

    def open_position(self, last_price: float | None) -> dict | None:
        """The position still held (see `open_position_summary`), or None when flat."""
        return None if self._trade is None else open_position_summary(self._trade, last_price)

    def finish(self) -> None:
        """End of data: what is still open stays open (reported as open, not as a trade)."""
        self.account.finish(self.clock.now_ms())

    # --- signal candles and the strategy -------------------------------------------------

    def _aggregate(self, candle: Candle) -> list[Candle]:
        if self._aggregator is None:
            signal_interval_ms(self.settings, candle.interval_ms)  # a ConfigError, not ValueError
            self._aggregator = CandleAggregator(candle.interval_ms, self.signal_interval_ms)
        return self._aggregator.add(candle)

    def _on_signal_candle(self, candle: Candle) -> None:
        row = self._signal_row = self.market.close_signal_candle(candle)
        self.recorder.signal_candle(self.symbol, candle)
        self.account.check_kill_switch()
        trade = self._trade
        if trade is not None and candle.ts_open_ms >= trade.entry_ms:
            trade.note_close(candle.close)
            trade.atr = self.market.atr(row)
        if trade is not None and not trade.closing:
            self._trail(trade)
        triggered = self.market.triggered(row)
        if not (triggered or self.strategy_waiting()):
            return
        for decision in self._ask_strategy(candle, row, triggered, not self.is_idle()):
            if isinstance(decision, Enter):
                self._enter(decision, candle)
            elif isinstance(decision, Reject):
                gate = self._gate_for_signal(candle)
                self._record_signal(Signal(
                    decision.signal_id, self.symbol, decision.spike_ms, self.clock.now_ms(),
                    SignalStatus.REJECTED, decision.reason, dict(decision.metrics),
                    decision.setup_events, self._evidence(decision.spike_ms, decision.metrics,
                                                          self._strategy_side(), gate)), gate)

    def _ask_strategy(self, candle: Candle, row: int, triggered: bool,
                      has_position: bool) -> Iterable[Decision]:
        ctx = StrategyContext(
            symbol=self.symbol, now_ms=self.clock.now_ms(), candle=candle, index=row,
            ind=self.market.row(row), triggered=triggered, has_position=has_position,
            open_interest=self.market.open_interest, funding=self.market.funding,
            liquidations=self.market.liquidations)
        return decisions_of(self.strategy, ctx)

    def _gate_for_signal(self, candle: Candle) -> GateDecision:
        """The gate's decision at the signal candle's close: what was published by then. The
        clock reads that moment in a backtest; live, the candle's frame comes later, and the
        decision for the close is made before it comes (`decide_gate_ahead`)."""
        decision = self.gate.decide(candle.ts_close_ms)
        self.recorder.gate_decision(decision, "signal")
        return decision

    def _evidence(self, spike_ms: int, metrics: dict, side: PositionSide,
                  gate: GateDecision) -> tuple[EvidenceItem, ...]:
        """The rebound's evidence (engine/evidence.py): an entry's for its side, a rejection's
        for the side its strategy trades."""
        spike = SpikeWindow(spike_ms, self.signal_interval_ms, side, self.clock.now_ms())
        drop = getattr(self.strategy.params, "oi_drop_pct", 0.0)  # the strategy's own rule
        return measure_evidence(self.settings.evidence, spike, metrics, float(drop),
                                self.market.liquidations, self.market.funding, gate)

    def _strategy_side(self) -> PositionSide:
        side = type(self.strategy).side  # checked when the strategy is loaded
        return side if isinstance(side, PositionSide) else PositionSide.LONG

    def _record_signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self.signals.append(signal)
        self.recorder.signal(signal, gate)

    # --- entries -------------------------------------------------------------------------

    def _enter(self, decision: Enter, candle: Candle) -> None:
        now = self.clock.now_ms()
        gate = self._gate_for_signal(candle)
        metrics = dict(decision.metrics)
        evidence = self._evidence(decision.spike_ms, metrics, decision.side, gate)
        reason = (self._entry_blocker(gate, decision)
                  or evidence_refusal(evidence, self.settings.evidence.required_beyond_oi))
        qty = 0.0
        if reason is None:
            atr = self.market.atr(self._signal_row)
            median, history = self.market.atr_pct_median(self._signal_row)
            sized = size_position(
                self.settings.risk, self.equity_usdt, candle.close, decision.stop_price,
                atr / candle.close, median, history * self.signal_interval_ms / DAY_MS,
                gate.size_factor, self.market_rules, decision.side)
            metrics.update({"stop_price": decision.stop_price, "stop_atr": atr,
                            "reference_price": candle.close,
                            "qty_base": sized.qty_base, **sized.details})
            reason, qty = sized.reason, sized.qty_base
            if reason is None:
                reason = self.account.entry_refusal(
                    qty * abs(candle.close - decision.stop_price), now)
        status = SignalStatus.REJECTED if reason else SignalStatus.ENTERED
        signal = Signal(decision.signal_id, self.symbol, decision.spike_ms, now, status,
                        reason or "entered", metrics, decision.setup_events, evidence)
        self._record_signal(signal, gate)
        if reason:
            return
        self.account.entered(now)
        self._pending = self._last_entry = PendingEntry(
            signal, decision.stop_price, metrics["stop_atr"], gate, qty, side=decision.side)
        refused = self.orders.submit_entry(signal.signal_id, qty, decision.stop_price,
                                           decision.side)
        if refused is not None and not isinstance(refused, TemporaryExchangeError):
            self._pending = None  # refused; an unknown outcome stays pending until reconciled
        self._protect()  # what filled while it was placed is covered now

    def _entry_blocker(self, gate: GateDecision, decision: Enter) -> str | None:
        if self.killed:
            return "kill switch engaged"
        if not self.is_idle():
            return "position open"
        blocked = self.account.daily_loss_refusal()
        if blocked:
            return blocked
        if gate.action is GateAction.BLOCK:
            return "gate BLOCK: " + "; ".join(gate.reasons)
        return None

    def _charge_funding(self, candle: Candle) -> None:
        """The funding rates settled while the trade was held, by this candle's open
        (cryptobot.data.funding_times), on what it held then: a long pays a positive rate, a
        short receives it (the open stands in for the mark price). A rate that arrives late
        (a live poll after its candle) is charged as it would have been on time: at the open
        of the first candle opening at or after its settlement, on what was held then."""
        trade = self._trade
        if trade is None or not self.settings.costs.funding:
            return
        due = self.market.funding_due
        due.saw_open(candle)
        for rate in due.at_open_of(candle, trade.entry_ms):
            price, qty = due.held_when_due(rate, candle, trade.remaining_qty, trade.legs)
            trade.funding_usdt += trade.side.sign * qty * price * rate.rate
            due.charged(rate)

    # --- the kill switch ------------------------------------------------------------------

    def engage_kill_switch(self) -> None:
        """The account's kill switch engaged: cancel an entry not filled yet, flatten."""
        if self._pending is not None:
            sid = self._pending.signal.signal_id
            self._pending = None
            self.broker.cancel(client_id(sid, "entry"))
        if self._trade is not None and not self._trade.closing:
            self.protection.exit(self._trade, OrderPurpose.FLATTEN, "kill switch engaged")

    def open_risk_usdt(self) -> float:
        """What this symbol loses if its stop is hit now (0 once the stop locks a profit): an
        open trade's remaining size to its stop, and what a working entry may still fill."""
        trade, entry = self._trade, self._pending
        risk = 0.0
        if trade is not None:
            risk = max(0.0, trade.side.sign * (trade.entry_price - trade.stop_price)
                       * trade.cover_qty)
        if entry is None:
            return risk
        reference = entry.signal.metrics.get("reference_price")
        qty = entry.qty if entry.qty != float("inf") else entry.signal.metrics.get("qty_base")
        if reference is None or qty is None:
            return risk
        return risk + abs(float(reference) - entry.stop_price) * max(0.0, qty - entry.filled)

    def open_since_ms(self) -> int | None:
        """When the position held now was entered, None when flat."""
        return None if self._trade is None else self._trade.entry_ms
