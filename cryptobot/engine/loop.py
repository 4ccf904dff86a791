"""The one event loop that backtest, paper and live all run.

The caller advances the injected clock to each event's time and calls the matching method:
`on_base_candle` (a closed base candle; usable at its ts_close_ms), `on_open_interest`,
`on_funding`, `on_liquidation`, `on_fill` (bound to the broker), `on_time` (nothing happened, but
time passed: daily gate, kill switch) and finally `finish`. The engine aggregates signal candles,
asks the strategy, sizes through risk, asks the gate, places orders through the broker and
reports everything to the recorder. It never asks which mode it is in.

Backtests may skip base candles they prove quiet (see cryptobot/runners/quiet_skip.py): they ask
`next_deadline_ms` and `holds_quietly`, and report what they skipped with `on_quiet_base_candles`
and `on_quiet_signal_candles`. A runner restarted with a position open calls `restore_position`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptobot.clock import DAY_MS, Clock, utc_day_start_ms
from cryptobot.config import Settings
from cryptobot.data.resample import CandleAggregator
from cryptobot.data.timeframes import ms_to_timeframe, timeframe_to_ms
from cryptobot.engine.broker import Broker, client_id
from cryptobot.engine.gate import Gate
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.open_trade import (
    OpenInterestBook,
    OpenTrade,
    PendingEntry,
    open_position_summary,
    restore_trade,
)
from cryptobot.engine.recorder import OrderEvent, Recorder
from cryptobot.engine.risk import DailyLossLimit, KillSwitch, NeverEngaged, size_position
from cryptobot.errors import ConfigError, ExchangeError, ReconciliationError
from cryptobot.indicators import IncrementalFeatures, SignalIndicators
from cryptobot.model import (
    Candle,
    Fill,
    FundingRate,
    GateAction,
    GateDecision,
    Liquidation,
    OpenInterest,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Position,
    Side,
    Signal,
    SignalStatus,
    Trade,
    TradeLeg,
)
from cryptobot.strategy import (
    EnterLong,
    OpenTradeView,
    Rejected,
    Strategy,
    StrategyContext,
    guarded,
)

FUNDING_INTERVAL_MS = 8 * 3_600_000
_QTY_EPS = 1e-12


def signal_interval_ms(settings: Settings, base_interval_ms: int | None = None) -> int:
    """market.signal_timeframe in ms, checked (against the base candles' interval if known):
    a signal candle must be a whole number of base candles, or buckets would straddle them."""
    text = settings.market.signal_timeframe
    try:
        signal_ms = timeframe_to_ms(text)
    except ValueError as exc:
        raise ConfigError(f"market.signal_timeframe: {exc}") from None
    if base_interval_ms is not None and (base_interval_ms <= 0 or signal_ms % base_interval_ms):
        raise ConfigError(
            f"market.signal_timeframe {text!r} is not a whole multiple of the base candles' "
            f"interval {ms_to_timeframe(base_interval_ms)}")
    return signal_ms



class Engine:
    def __init__(self, settings: Settings, strategy: Strategy, broker: Broker, gate: Gate,
                 recorder: Recorder, clock: Clock, market_rules: MarketRules | None = None,
                 features=None, aggregator=None,
                 kill_switch: KillSwitch | NeverEngaged | None = None) -> None:
        self.settings = settings
        self.symbol = settings.market.symbol
        self.strategy = strategy
        self.broker = broker
        self.gate = gate
        self.recorder = recorder
        self.clock = clock
        self.market_rules = market_rules
        self.signal_interval_ms = signal_interval_ms(settings)
        s = settings.strategy
        self.features = features or IncrementalFeatures(SignalIndicators(
            s.atr_period, s.high_lookback_candles, s.volume_median_candles,
            settings.risk.volatility_median_days * 86_400_000 // self.signal_interval_ms))
        self.open_interest = OpenInterestBook(clock)
        self.equity_usdt = settings.risk.starting_equity_usdt
        self.daily_loss = DailyLossLimit(settings.risk.max_daily_loss)
        # The kill switch is a part the caller wires: paper and live the file (`KillSwitch`), a
        # backtest `NeverEngaged`. Left out, it is the file: forgetting it must not disarm it.
        self.kill_switch = (kill_switch if kill_switch is not None
                            else KillSwitch(settings.risk.kill_switch_file))
        self.killed = False
        self.signals: list[Signal] = []
        self.trades: list[Trade] = []
        self.gate_decisions: list[tuple[GateDecision, str]] = []
        self.candles_processed = 0
        self.exposure_ms = 0
        self.funding_seen = False
        self._funding: dict[int, float] = {}
        # Backtests pass a precomputed aggregator (same `add(candle)` contract).
        self._aggregator: CandleAggregator | None = aggregator
        self._candle_index = 0
        self._day_ms: int | None = None
        self._pending: PendingEntry | None = None
        self._trade: OpenTrade | None = None
        broker.bind(self.on_fill, self._on_order)

    # --- the public event API ------------------------------------------------------------

    def warm_up(self, candles: list[Candle]) -> None:
        """History before trading starts: indicators only, no strategy, no orders."""
        for candle in candles:
            self.features.on_base_candle(candle.ts_open_ms, candle.high, candle.low,
                                         candle.close, candle.volume)
            for closed in self._aggregate(candle):
                _, self._candle_index = self.features.on_signal_candle(
                    closed.ts_open_ms, closed.high, closed.low, closed.close, closed.volume)

    def on_time(self, now_ms: int | None = None) -> None:
        """Time passed (a timer, or a skipped idle span): daily gate, kill switch."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        self._roll_day(now)

    def on_base_candle(self, candle: Candle) -> None:
        now = self.clock.now_ms()
        if self._day_ms is None or now - now % DAY_MS > self._day_ms:
            self._roll_day(now)
        trade_before = self._trade
        self.broker.on_base_candle(candle)  # fills first: they happened inside this candle
        self.features.on_base_candle(candle.ts_open_ms, candle.high, candle.low, candle.close,
                                     candle.volume)
        self.candles_processed += 1
        trade = self._trade
        if trade_before is not None or trade is not None:
            self.exposure_ms += candle.interval_ms
        if trade is not None and self._funding:
            self._charge_funding(candle)
        closed = self._aggregate(candle)
        trade = self._trade
        if trade is not None and not trade.closing:
            self._check_time_stop(now)
        for signal_candle in closed:
            self._on_signal_candle(signal_candle)

    def on_open_interest(self, sample: OpenInterest) -> None:
        if self.open_interest.add(sample):
            self.recorder.open_interest(sample)  # the report draws the samples the rule used

    def on_funding(self, rate: FundingRate) -> None:
        self.funding_seen = True
        self._funding[rate.ts_ms] = rate.rate

    def on_liquidation(self, event: Liquidation) -> None:
        """Optional evidence; the rule does not need it (Binance undercounts)."""

    def is_idle(self) -> bool:
        """No position, no entry or order working: a backtest may skip quiet candles."""
        return self._trade is None and self._pending is None

    # --- for runners that skip quiet candles (backtests) and restarts -------------------------

    def next_deadline_ms(self) -> int | None:
        """When the engine acts on its own with no price event (the time stop), or None."""
        trade = self._trade
        if trade is None or trade.closing:
            return None
        return trade.entry_ms + int(self.settings.exits.time_stop_hours * 3_600_000)

    def holds_quietly(self) -> bool:
        """A position protected by a working stop, no market order or entry working, and a
        strategy that does not trail it now: a signal candle that starts nothing (the strategy
        idle, the candle no candidate) changes only the trade's bookkeeping. The answer holds
        until the engine is fed again (`Strategy.trails` reads the order state only)."""
        trade = self._trade
        if trade is None or trade.closing or trade.stop_id is None or self._pending is not None:
            return False
        return not guarded(type(self.strategy).__name__, "trails", self.strategy.trails,
                           self._trade_view(trade))

    def on_quiet_base_candles(self, count: int, interval_ms: int) -> None:
        """`count` base candles a backtest proved quiet (no working order touched, nothing due,
        no signal candle closed that matters) and did not feed: time in the market moves on."""
        if self._trade is not None:
            self.exposure_ms += count * interval_ms

    def on_quiet_signal_candles(self, ts_open_ms: Sequence[int], close: Sequence[float],
                                atr_after: Sequence[float]) -> None:
        """Signal candles (in order) skipped while `holds_quietly()`: what `_on_signal_candle`
        would have noted for the trade. The backtest records the candles itself."""
        trade = self._trade
        if trade is None or not len(ts_open_ms):
            return
        after_entry = [k for k in range(len(ts_open_ms)) if ts_open_ms[k] >= trade.entry_ms]
        if after_entry:
            trade.highest_close = max(trade.highest_close,
                                      float(max(close[k] for k in after_entry)))
            trade.atr = float(atr_after[after_entry[-1]])

    def restore_position(self, position: Position, *, entry_qty_base: float | None = None,
                         entry_fee_usdt: float = 0.0, legs: tuple[TradeLeg, ...] = (),
                         stop_count: int | None = None,
                         highest_close: float = float("-inf")) -> None:
        """Take over a position after a restart, from the broker's state: `position` (its
        store's row) and the broker's working orders of that signal (`<signal_id>-stopN`,
        `-tp1`, `-tp2`; any stop-market order counts as its stop). A position with no working
        stop gets one at `position.stop_price` at once. `entry_qty_base` (the size at entry)
        tells whether TP1 has filled; `legs` are the exits already filled (from the broker's
        fills), so the finished trade is whole; `stop_count` continues the stop numbering when
        the working stop is not the newest `-stopN`."""
        if not self.is_idle():
            raise ReconciliationError(f"cannot restore {position.signal_id}: the engine already "
                                      "holds a position or an entry")
        trade = restore_trade(position, self.broker.working_orders(), entry_qty_base,
                              entry_fee_usdt, legs, highest_close)
        if stop_count is not None:
            trade.stop_count = max(trade.stop_count, stop_count)
        self._trade = trade
        if trade.stop_id is None:  # never leave a position without a stop
            self._place_stop(trade, position.stop_price)

    def open_position(self, last_price: float | None) -> dict | None:
        """The position still held (see `open_position_summary`), or None when flat."""
        return None if self._trade is None else open_position_summary(self._trade, last_price)

    def finish(self) -> None:
        """End of data: what is still open stays open (reported as open, not as a trade)."""
        self.recorder.equity(self.clock.now_ms(), self.equity_usdt)

    # --- signal candles and the strategy -------------------------------------------------

    def _aggregate(self, candle: Candle) -> list[Candle]:
        if self._aggregator is None:
            signal_interval_ms(self.settings, candle.interval_ms)  # a ConfigError, not ValueError
            self._aggregator = CandleAggregator(candle.interval_ms, self.signal_interval_ms)
        return self._aggregator.add(candle)

    def _on_signal_candle(self, candle: Candle) -> None:
        features, self._candle_index = self.features.on_signal_candle(
            candle.ts_open_ms, candle.high, candle.low, candle.close, candle.volume)
        self.recorder.signal_candle(candle)
        if self.kill_switch.engaged() and not self.killed:
            self._engage_kill_switch()
        trade = self._trade
        if trade is not None and candle.ts_open_ms >= trade.entry_ms:
            trade.highest_close = max(trade.highest_close, candle.close)
            trade.atr = features.atr_after
        ctx = self._context(features)
        if trade is not None and not trade.closing:
            self._trail(ctx, trade)
        name = type(self.strategy).__name__
        for decision in guarded(name, "on_candle", self.strategy.on_candle, candle, ctx):
            if isinstance(decision, EnterLong):
                self._enter(decision, candle)
            elif isinstance(decision, Rejected):
                gate = self._gate_for_signal()
                self._record_signal(Signal(
                    decision.signal_id, self.symbol, decision.spike_ms, self.clock.now_ms(),
                    SignalStatus.REJECTED, decision.reason, decision.metrics,
                    decision.setup_events), gate)

    def _context(self, features) -> StrategyContext:
        return StrategyContext(
            symbol=self.symbol, now_ms=self.clock.now_ms(), candle_index=self._candle_index,
            features=features, open_interest=self.open_interest,
            has_position=not self.is_idle(), day_vwap=self.features.day_vwap,
            prev_day_close=self.features.prev_day_close)

    def _gate_for_signal(self) -> GateDecision:
        decision = self.gate.decide(self.clock.now_ms())
        self.gate_decisions.append((decision, "signal"))
        self.recorder.gate_decision(decision, "signal")
        return decision

    def _record_signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self.signals.append(signal)
        self.recorder.signal(signal, gate)

    # --- entries -------------------------------------------------------------------------

    def _enter(self, decision: EnterLong, candle: Candle) -> None:
        now = self.clock.now_ms()
        gate = self._gate_for_signal()
        metrics = dict(decision.metrics)
        reason = self._entry_blocker(gate)
        qty = 0.0
        if reason is None:
            hist_days = (self.features.atr_pct_history() * self.signal_interval_ms / 86_400_000)
            sized = size_position(
                self.settings.risk, self.equity_usdt, candle.close, decision.stop_price,
                decision.atr / candle.close, self.features.atr_pct_median(), hist_days,
                gate.size_factor, self.market_rules)
            metrics.update({"stop_price": decision.stop_price, "stop_atr": decision.atr,
                            "reference_price": candle.close,
                            "qty_base": sized.qty_base, **sized.details})
            reason, qty = sized.reason, sized.qty_base
        status = SignalStatus.REJECTED if reason else SignalStatus.ENTERED
        signal = Signal(decision.signal_id, self.symbol, decision.spike_ms, now, status,
                        reason or "entered", metrics, decision.setup_events)
        self._record_signal(signal, gate)
        if reason:
            return
        self._pending = PendingEntry(signal, decision.stop_price, decision.atr, gate)
        intent = OrderIntent(client_id(signal.signal_id, "entry"), self.symbol, Side.BUY,
                             OrderType.MARKET, qty, OrderPurpose.ENTRY,
                             stop_price=decision.stop_price)
        try:
            self.broker.submit(intent)
        except ExchangeError as exc:
            self._pending = None
            self.recorder.order(OrderEvent(now, intent, "rejected", str(exc)))

    def _entry_blocker(self, gate: GateDecision) -> str | None:
        if self.killed:
            return "kill switch engaged"
        if not self.is_idle():
            return "position open"
        blocked = self.daily_loss.blocked_reason()
        if blocked:
            return blocked
        if gate.action is GateAction.BLOCK:
            return "gate BLOCK: " + "; ".join(gate.reasons)
        return None

    # --- fills and exits -----------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        self.recorder.fill(fill)
        if fill.purpose is OrderPurpose.ENTRY:
            self._on_entry_fill(fill)
            return
        trade = self._trade
        if trade is None:
            return
        reason = {OrderPurpose.STOP: trade.stop_kind, OrderPurpose.TP1: "tp1",
                  OrderPurpose.TP2: "tp2", OrderPurpose.TIME_EXIT: "time_stop",
                  OrderPurpose.FLATTEN: "flatten"}[fill.purpose]
        trade.legs.append(TradeLeg(fill.ts_ms, fill.price, fill.qty_base, fill.fee_usdt, reason))
        trade.remaining_qty -= fill.qty_base
        if trade.remaining_qty <= _QTY_EPS * max(1.0, trade.qty_base):
            self._close_trade(trade)
        elif fill.purpose is OrderPurpose.TP1:
            trade.tp1_done = True
            new_stop = trade.stop_price
            if self.settings.exits.breakeven_after_tp1 and trade.entry_price > new_stop:
                new_stop, trade.stop_kind = trade.entry_price, "breakeven_stop"
            self._place_stop(trade, new_stop)  # also shrinks the stop to what is left

    def _on_entry_fill(self, fill: Fill) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        sid = pending.signal.signal_id
        trade = OpenTrade(sid, fill.ts_ms, fill.price, fill.qty_base, pending.stop_price,
                           fill.fee_usdt, pending.gate, fill.qty_base, pending.stop_price)
        self._trade = trade
        if fill.price <= pending.stop_price:
            self._flatten(trade, "entry filled at or below the stop")
            return
        self._place_stop(trade, pending.stop_price)
        if trade.closing or self._trade is not trade:
            return
        ctx = self._context(None)
        targets = guarded(type(self.strategy).__name__, "exit_targets",
                          self.strategy.exit_targets, ctx, fill.price, pending.stop_price)
        self._place_targets(trade, targets)

    def _place_targets(self, trade: OpenTrade, targets: tuple[float, ...]) -> None:
        if not targets:
            return
        tp1_qty = trade.qty_base * self.settings.exits.tp1_fraction
        if self.settings.risk.lot_rounding and self.market_rules is not None:
            tp1_qty = self.market_rules.round_qty_down(tp1_qty)
        if tp1_qty <= 0:  # too small to split: all of it exits at TP1 (then nothing is left)
            tp1_qty = trade.qty_base
        legs = [(OrderPurpose.TP1, "tp1", targets[0], tp1_qty)]
        if len(targets) > 1:
            legs.append((OrderPurpose.TP2, "tp2", targets[1], trade.qty_base - tp1_qty))
        for purpose, leg, price, qty in legs:
            if qty <= 0:
                continue
            intent = OrderIntent(client_id(trade.signal_id, leg), self.symbol, Side.SELL,
                                 OrderType.LIMIT, qty, purpose, price=price, reduce_only=True)
            try:
                self.broker.submit(intent)
                trade.tp_ids.append(intent.client_id)
            except ExchangeError as exc:  # the stop still protects; the trade rides it
                self.recorder.order(OrderEvent(self.clock.now_ms(), intent, "rejected", str(exc)))

    def _place_stop(self, trade: OpenTrade, price: float) -> None:
        trade.stop_count += 1
        intent = OrderIntent(client_id(trade.signal_id, f"stop{trade.stop_count}"), self.symbol,
                             Side.SELL, OrderType.STOP_MARKET, trade.remaining_qty,
                             OrderPurpose.STOP, price=price, reduce_only=True)
        try:
            if trade.stop_id is None:
                self.broker.submit(intent)  # a live broker closes at market itself if this fails
            else:
                self.broker.replace_stop(trade.stop_id, intent)
        except ExchangeError as exc:
            self.recorder.order(OrderEvent(self.clock.now_ms(), intent, "rejected", str(exc)))
            # Never leave a position without a stop, unless the broker already closed it (its
            # FLATTEN fill reported) or is closing it (its FLATTEN order open).
            if trade.stop_id is None and self._trade is trade and not trade.closing:
                self._flatten(trade, f"stop could not be placed: {exc}")
            return
        trade.stop_id, trade.stop_price = intent.client_id, price

    def _trade_view(self, trade: OpenTrade) -> OpenTradeView:
        return OpenTradeView(trade.entry_price, trade.stop_price, trade.entry_price,
                             trade.tp1_done, trade.highest_close, trade.atr)

    def _trail(self, ctx: StrategyContext, trade: OpenTrade) -> None:
        view = self._trade_view(trade)
        level = guarded(type(self.strategy).__name__, "trailing_stop",
                        self.strategy.trailing_stop, ctx, view)
        if level is not None and level > trade.stop_price:  # never down
            trade.stop_kind = "trailing_stop" if level > trade.entry_price else trade.stop_kind
            self._place_stop(trade, level)

    def _check_time_stop(self, now_ms: int) -> None:
        trade = self._trade
        limit_ms = int(self.settings.exits.time_stop_hours * 3_600_000)
        if now_ms - trade.entry_ms >= limit_ms:
            self._market_exit(trade, OrderPurpose.TIME_EXIT, "time")

    def _flatten(self, trade: OpenTrade, why: str) -> None:
        self.recorder.order(OrderEvent(self.clock.now_ms(), OrderIntent(
            client_id(trade.signal_id, "flat"), self.symbol, Side.SELL, OrderType.MARKET,
            trade.remaining_qty, OrderPurpose.FLATTEN, reduce_only=True), "submitted", why))
        self._market_exit(trade, OrderPurpose.FLATTEN, "flat")

    def _market_exit(self, trade: OpenTrade, purpose: OrderPurpose, leg: str) -> None:
        for order_id in [*trade.tp_ids, trade.stop_id]:
            if order_id is not None:
                self.broker.cancel(order_id)
        trade.tp_ids, trade.stop_id = [], None
        trade.closing = True
        self.broker.submit(OrderIntent(client_id(trade.signal_id, leg), self.symbol, Side.SELL,
                                       OrderType.MARKET, trade.remaining_qty, purpose,
                                       reduce_only=True))

    def _close_trade(self, trade: OpenTrade) -> None:
        for order_id in [*trade.tp_ids, trade.stop_id]:
            if order_id is not None:
                self.broker.cancel(order_id)
        self._trade = None
        done = Trade(trade.signal_id, self.symbol, Side.BUY, trade.entry_ms, trade.entry_price,
                     trade.qty_base, trade.initial_stop, tuple(trade.legs),
                     trade.entry_fee_usdt, trade.funding_usdt)
        self.trades.append(done)
        self.equity_usdt += done.pnl_usdt
        self.daily_loss.add(done.pnl_usdt)
        self.recorder.trade(done, trade.gate)
        self.recorder.equity(self.clock.now_ms(), self.equity_usdt)

    def _on_order(self, event: OrderEvent) -> None:
        self.recorder.order(event)
        intent = event.intent
        if event.status == "rejected" and intent.purpose is OrderPurpose.ENTRY:
            self._pending = None
        trade = self._trade
        if (trade is not None and intent.purpose is OrderPurpose.FLATTEN
                and event.status in ("open", "filled")
                and intent.client_id.startswith(trade.signal_id + "-")):
            trade.closing = True  # the broker is closing it itself: no second market close

    def _charge_funding(self, candle: Candle) -> None:
        if not (self.settings.costs.funding and self._funding):
            return
        end = candle.ts_close_ms
        due = end - end % FUNDING_INTERVAL_MS
        if not (candle.ts_open_ms < due <= end):
            return
        rate = self._funding.get(due)
        if rate is None or due > self.clock.now_ms():
            return
        # A long pays a positive rate on its notional (the candle close stands in for mark).
        trade = self._trade
        trade.funding_usdt += trade.remaining_qty * candle.close * rate

    # --- days and the kill switch --------------------------------------------------------

    def _roll_day(self, now_ms: int) -> None:
        today = utc_day_start_ms(now_ms)
        if self._day_ms is not None and today <= self._day_ms:
            return
        first = today if self._day_ms is None else self._day_ms + 86_400_000
        for day in range(first, today + 1, 86_400_000):  # every UTC day, even a skipped one
            decision = self.gate.decide(day)
            self.gate_decisions.append((decision, "daily"))
            self.recorder.gate_decision(decision, "daily")
            self.recorder.equity(day, self.equity_usdt)
        self._day_ms = today
        self.daily_loss.roll(today, self.equity_usdt)
        if self.kill_switch.engaged() and not self.killed:
            self._engage_kill_switch()

    def _engage_kill_switch(self) -> None:
        self.killed = True
        if self._pending is not None:  # an entry not filled yet: cancel it
            sid = self._pending.signal.signal_id
            self._pending = None
            self.broker.cancel(client_id(sid, "entry"))
        if self._trade is not None and not self._trade.closing:
            self._flatten(self._trade, "kill switch engaged")
