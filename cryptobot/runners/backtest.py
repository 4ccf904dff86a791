"""Run the engine over stored market data: the backtest runner.

Two ways to feed the same engine: `fast=False` hands it every base candle (the path live uses);
`fast=True` (runners/quiet_skip.py) precomputes the signal candles and indicators with numpy
and skips base candles that provably change nothing. tests/engine/test_fast_path.py proves both
give identical results.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock
from cryptobot.config import Settings
from cryptobot.data.frames import CANDLE_COLUMNS
from cryptobot.data.funding_times import settlement_ms
from cryptobot.data.liquidation_files import LiquidationRecords
from cryptobot.data.market_data import MarketData
from cryptobot.engine.account import Account
from cryptobot.engine.gate import Gate
from cryptobot.engine.loop import Engine
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.market_view import signal_interval_ms
from cryptobot.engine.portfolio import Portfolio
from cryptobot.engine.recorder import Recorder
from cryptobot.engine.risk import NeverEngaged
from cryptobot.model import Candle, FundingRate, OpenInterest
from cryptobot.report.summary import FundingFacts
from cryptobot.runners.portfolio_summary import SymbolFacts, summarize_portfolio
from cryptobot.runners.quiet_skip import FastRunner, PrecomputedAggregator, precompute, run_fast
from cryptobot.strategy import Strategy

Progress = Callable[[int, int], None]  # (base candles done, total)


@dataclass(frozen=True)
class SymbolInputs:
    """What one symbol of a backtest brings: its data, its strategy (state is per symbol), its
    fill simulator, its market rules (lot size, minimum notional; None: not checked) and its
    recorded liquidations (None: unknown throughout)."""

    market: MarketData
    strategy: Strategy
    broker: PaperBroker
    market_rules: MarketRules | None = None
    liquidations: LiquidationRecords | None = None


@dataclass
class BacktestResult:
    portfolio: Portfolio
    summary: dict
    candles_processed: int  # base candles in the traded span, all symbols (skipped included)
    start_ms: int
    end_ms: int

    @property
    def engine(self) -> Engine:
        """The engine of a one-symbol run."""
        (engine,) = self.portfolio.engines.values()
        return engine


def run_backtest(settings: Settings, market: MarketData, strategy: Strategy, gate: Gate,
                 recorder: Recorder, broker: PaperBroker, clock: SimClock, *, skip_quiet: bool,
                 start_ms: int | None = None, end_ms: int | None = None,
                 market_rules: MarketRules | None = None,
                 progress: Progress | None = None) -> BacktestResult:
    """A one-symbol backtest (`run_portfolio_backtest` of one symbol)."""
    return run_portfolio_backtest(
        settings.with_symbols((market.symbol,)) if settings.market.symbols != (market.symbol,)
        else settings, {market.symbol: SymbolInputs(market, strategy, broker, market_rules)},
        gate, recorder, clock, skip_quiet=skip_quiet, start_ms=start_ms, end_ms=end_ms,
        progress=progress)


def run_portfolio_backtest(settings: Settings, inputs: Mapping[str, SymbolInputs], gate: Gate,
                           recorder: Recorder, clock: SimClock, *, skip_quiet: bool,
                           start_ms: int | None = None, end_ms: int | None = None,
                           progress: Progress | None = None) -> BacktestResult:
    """Candles before `start_ms` only warm the indicators up; trading runs [start_ms, end_ms).

    All symbols' base candles go in time order through one clock and one account (ties in the
    order of `inputs`, the config's). The caller chooses the parts: each symbol's fill
    simulator on `clock` (moved to the start of the run: it must not be ahead of it), and
    whether quiet candles are skipped (`skip_quiet`, proven identical) or every base candle is
    fed. The kill switch of a backtest never engages: history does not depend on a file on
    disk.
    """
    if tuple(inputs) != settings.market.symbols:
        raise ValueError(f"inputs for {', '.join(inputs)}, settings for "
                         f"{', '.join(settings.market.symbols)}")
    signal_ms = {s: signal_interval_ms(settings, i.market.base_interval_ms)  # one error, both
                 for s, i in inputs.items()}                                 # paths
    spans = [traded_span(settings, i.market, start_ms, end_ms) for i in inputs.values()]
    start, end = min(a for a, _ in spans), max(b for _, b in spans)
    arrays = {s: backtest_arrays(i.market, signal_ms[s], end) for s, i in inputs.items()}
    clock.advance_to(start)
    first_trade = {s: int(np.searchsorted(a["ts_open_ms"], start)) for s, a in arrays.items()}
    total = sum(len(a["ts_open_ms"]) - first_trade[s] for s, a in arrays.items())
    account = Account(settings, gate, recorder, NeverEngaged())
    if skip_quiet:
        runners, engines = [], []
        for symbol, parts in inputs.items():
            if not len(arrays[symbol]["ts_open_ms"]):  # no candles before the end: nothing to
                engines.append(_engine(settings, symbol, parts, gate, recorder, clock,  # feed
                                       account))
                continue
            pre = precompute(arrays[symbol], signal_ms[symbol], parts.market.base_interval_ms)
            aggregator = PrecomputedAggregator(pre, signal_ms[symbol])
            engine = _engine(settings, symbol, parts, gate, recorder, clock, account,
                             known=pre.known, aggregator=aggregator)
            _feed_samples_up_front(engine, parts, arrays[symbol], first_trade[symbol], start)
            runners.append(FastRunner(engine, pre, aggregator, first_trade[symbol],
                                      parts.market.base_interval_ms, clock, recorder))
            engines.append(engine)
        portfolio = Portfolio(engines)
        first_closes = [r.first_close_ms() for r in runners if r.first_close_ms() is not None]
        if first_closes:  # the day the every-candle path starts in: its first candle's close
            portfolio.on_time(min(first_closes))
        run_fast(runners, clock, progress)
    else:
        portfolio = Portfolio([_engine(settings, symbol, parts, gate, recorder, clock, account)
                               for symbol, parts in inputs.items()])
        _run_every_candle(portfolio, inputs, arrays, first_trade, clock, progress, total)
    clock.advance_to(max(clock.now_ms(), end))
    portfolio.on_time()  # the daily gate through the last day, however the candles were fed
    portfolio.finish()
    summary = summarize_portfolio(settings, portfolio, _facts(inputs, arrays, first_trade,
                                                              portfolio, (start, end)),
                                  end - start)
    recorder.finish_run(summary)
    return BacktestResult(portfolio, summary, total, start, end)


def _engine(settings: Settings, symbol: str, parts: SymbolInputs, gate: Gate,
            recorder: Recorder, clock: SimClock, account: Account, **fast) -> Engine:
    return Engine(settings.for_symbol(symbol), parts.strategy, parts.broker, gate, recorder,
                  clock, parts.market_rules, kill_switch=account.kill_switch, account=account,
                  **fast)


def _feed_samples_up_front(engine: Engine, parts: SymbolInputs, arrays: dict,
                           first_trade: int, start_ms: int) -> None:
    """The fast path: every sample up to the last candle's close goes in up front, as the
    every-candle path would deliver them: the book never shows one later than the clock."""
    market, ts = parts.market, arrays["ts_open_ms"]
    last_close_ms = (int(ts[-1]) + market.base_interval_ms if len(ts) > first_trade
                     else start_ms)
    _feed_oi(engine, _oi_rows(market), 0, last_close_ms)
    _feed_funding(engine, _funding_rows(market), 0, last_close_ms)
    _feed_liquidations(engine, _liquidation_events(engine, parts), 0, last_close_ms)


def _liquidation_events(engine: Engine, parts: SymbolInputs) -> tuple:
    """The recorded liquidations, after telling the engine which span each one shows covered
    from its own time on (a book answers only as of its clock, so they may go in first: the
    fast and the every-candle paths learn the coverage alike, never ahead of the clock)."""
    records = parts.liquidations
    if records is None:
        return ()
    for event, (start_ms, end_ms) in zip(records.events, records.reveals, strict=True):
        engine.on_liquidation_coverage(start_ms, end_ms, event.ts_ms, records.gap_ms)
    return records.events


def _feed_liquidations(engine: Engine, events: tuple, i: int, until_ms: int) -> int:
    while i < len(events) and events[i].ts_ms <= until_ms:
        engine.on_liquidation(events[i])
        i += 1
    return i


def _facts(inputs: Mapping[str, SymbolInputs], arrays: Mapping[str, dict],
           first_trade: Mapping[str, int], portfolio: Portfolio,
           span: tuple[int, int]) -> dict[str, SymbolFacts]:
    facts = {}
    for symbol, parts in inputs.items():
        a, i, market = arrays[symbol], first_trade[symbol], parts.market
        traded = len(a["close"]) > i
        facts[symbol] = SymbolFacts(
            float(a["open"][i]) if traded else None, float(a["close"][-1]) if traded else None,
            _funding_facts(market, portfolio.engines[symbol], span), market.oi_synthetic,
            len(market.open_interest))
    return facts


def _funding_facts(market: MarketData, engine: Engine, span: tuple[int, int]) -> FundingFacts:
    """The data's rates that settled in the traded span, and the ones the engine charged."""
    stamps = market.funding["ts_ms"]
    settled = settlement_ms(stamps)
    in_span = stamps[(settled >= span[0]) & (settled < span[1])]
    source = ", ".join(market.funding_sources) or ("the data's funding rows" if len(stamps)
                                                   else "")
    return FundingFacts.of(source, (int(ts) for ts in in_span),
                           engine.market.funding_due.charged_ms)


def backtest_arrays(market: MarketData, signal_ms: int, end_ms: int) -> dict[str, np.ndarray]:
    """The base candles a backtest feeds, as columns: from the first whole signal bucket (a
    partial first bucket is dropped) to `end_ms`; sorted, so a slice, not a copy."""
    frame = market.candles
    ts = frame["ts_open_ms"]
    first_bucket = -(-int(ts[0]) // signal_ms) * signal_ms
    a, b = np.searchsorted(ts, (first_bucket, end_ms))
    return {name: frame[name][a:b] for name in CANDLE_COLUMNS}


def traded_span(settings: Settings, market: MarketData, start_ms: int | None,
                end_ms: int | None) -> tuple[int, int]:
    """[start, end) that `run_backtest` trades: from the first whole signal bucket at or after
    `start_ms` (or the data's start) to `end_ms` (or the last candle's close). The CLI stores
    this span, so a run without --from/--to still says what it covered."""
    signal_ms = signal_interval_ms(settings, market.base_interval_ms)
    ts = market.candles["ts_open_ms"]
    first_bucket = -(-int(ts[0]) // signal_ms) * signal_ms
    start = max(first_bucket, start_ms if start_ms is not None else first_bucket)
    start = -(-start // signal_ms) * signal_ms
    end = end_ms if end_ms is not None else int(ts[-1]) + market.base_interval_ms
    return start, end


def _candle(arrays: dict, i: int, interval_ms: int) -> Candle:
    return Candle(int(arrays["ts_open_ms"][i]), interval_ms, float(arrays["open"][i]),
                  float(arrays["high"][i]), float(arrays["low"][i]), float(arrays["close"][i]),
                  float(arrays["volume"][i]))


def _run_every_candle(portfolio: Portfolio, inputs: Mapping[str, SymbolInputs],
                      arrays: Mapping[str, dict], first_trade: Mapping[str, int],
                      clock: SimClock, progress: Progress | None, total: int) -> None:
    """Every base candle of every symbol, merged by close time (ties in symbol order)."""
    feeds = []
    for order, (symbol, parts) in enumerate(inputs.items()):
        engine, interval = portfolio.engines[symbol], parts.market.base_interval_ms
        a, first = arrays[symbol], first_trade[symbol]
        engine.warm_up([_candle(a, i, interval) for i in range(first)])
        feed = _SymbolFeed(engine, a, interval, _oi_rows(parts.market),
                           _funding_rows(parts.market), first, order,
                           _liquidation_events(engine, parts))
        now = clock.now_ms()
        # Samples published before the traded span are history the engine may look up.
        feed.oi_i = _feed_oi(engine, feed.oi_rows, 0, now)
        feed.fund_i = _feed_funding(engine, feed.funding, 0, now)
        feed.liq_i = _feed_liquidations(engine, feed.liquidations, 0, now)
        feeds.append(feed)
    queue = [(feed.next_close_ms(), feed.order) for feed in feeds if not feed.done()]
    heapq.heapify(queue)
    done = 0
    while queue:
        close_ms, order = heapq.heappop(queue)
        feed = feeds[order]
        feed.feed_next(clock, close_ms)
        if not feed.done():
            heapq.heappush(queue, (feed.next_close_ms(), order))
        if progress is not None and done % 20_000 == 0:
            progress(done, total)
        done += 1


@dataclass
class _SymbolFeed:
    engine: Engine
    arrays: dict
    interval_ms: int
    oi_rows: list
    funding: list
    i: int
    order: int
    liquidations: tuple = ()
    oi_i: int = 0
    fund_i: int = 0
    liq_i: int = 0

    def done(self) -> bool:
        return self.i >= len(self.arrays["ts_open_ms"])

    def next_close_ms(self) -> int:
        return int(self.arrays["ts_open_ms"][self.i]) + self.interval_ms

    def feed_next(self, clock: SimClock, close_ms: int) -> None:
        engine, oi_rows = self.engine, self.oi_rows
        # Samples are delivered at their own time, before the candle that closes after them.
        while self.oi_i < len(oi_rows) and oi_rows[self.oi_i][0] <= close_ms:
            clock.advance_to(max(clock.now_ms(), oi_rows[self.oi_i][0]))
            self.oi_i = _feed_oi(engine, oi_rows, self.oi_i, oi_rows[self.oi_i][0])
        self.fund_i = _feed_funding(engine, self.funding, self.fund_i, close_ms)
        self.liq_i = _feed_liquidations(engine, self.liquidations, self.liq_i, close_ms)
        clock.advance_to(close_ms)
        engine.on_base_candle(_candle(self.arrays, self.i, self.interval_ms))
        self.i += 1


def _oi_rows(market: MarketData) -> list[tuple]:
    oi = market.open_interest
    return list(zip(oi["ts_ms"].tolist(), oi["oi_contracts"].tolist(),
                    oi["oi_value_usdt"].tolist(), strict=True))


def _funding_rows(market: MarketData) -> list[tuple]:
    return list(zip(market.funding["ts_ms"].tolist(), market.funding["rate"].tolist(),
                    strict=True))


def _feed_oi(engine: Engine, rows: list, i: int, until_ms: int) -> int:
    while i < len(rows) and rows[i][0] <= until_ms:
        ts_ms, contracts, value = rows[i]
        engine.on_open_interest(OpenInterest(int(ts_ms), float(contracts),
                                             None if value != value else float(value)))
        i += 1
    return i


def _feed_funding(engine: Engine, rows: list, i: int, until_ms: int) -> int:
    while i < len(rows) and rows[i][0] <= until_ms:
        engine.on_funding(FundingRate(int(rows[i][0]), float(rows[i][1])))
        i += 1
    return i
