"""Run the engine over stored market data: the backtest runner.

Two ways to feed the same engine: `fast=False` hands it every base candle (the path live uses);
`fast=True` (runners/quiet_skip.py) precomputes the signal candles and indicators with numpy
and skips base candles that provably change nothing. tests/engine/test_fast_path.py proves both
give identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock
from cryptobot.config import Settings
from cryptobot.data.frames import CANDLE_COLUMNS
from cryptobot.data.market_data import MarketData
from cryptobot.engine.gate import Gate
from cryptobot.engine.loop import Engine
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.market_view import signal_interval_ms
from cryptobot.engine.recorder import Recorder
from cryptobot.engine.risk import NeverEngaged
from cryptobot.model import Candle, FundingRate, OpenInterest
from cryptobot.report.summary import cost_notes, summarize
from cryptobot.runners.quiet_skip import PrecomputedAggregator, precompute, run_fast
from cryptobot.strategy import Strategy

Progress = Callable[[int, int], None]  # (base candles done, total)


@dataclass
class BacktestResult:
    engine: Engine
    summary: dict
    candles_processed: int  # base candles in the traded span (skipped ones included)
    start_ms: int
    end_ms: int


def run_backtest(settings: Settings, market: MarketData, strategy: Strategy, gate: Gate,
                 recorder: Recorder, broker: PaperBroker, clock: SimClock, *, skip_quiet: bool,
                 start_ms: int | None = None, end_ms: int | None = None,
                 market_rules: MarketRules | None = None,
                 progress: Progress | None = None) -> BacktestResult:
    """Candles before `start_ms` only warm the indicators up; trading runs [start_ms, end_ms).

    The caller chooses the parts: the fill simulator `broker` on `clock` (moved to the start
    of the run: it must not be ahead of it), and whether quiet candles are skipped
    (`skip_quiet`, proven identical) or every base candle is fed. The kill switch of a
    backtest never engages: history does not depend on a file on disk.
    """
    signal_ms = signal_interval_ms(settings, market.base_interval_ms)  # both paths: one error
    start, end = traded_span(settings, market, start_ms, end_ms)
    arrays = backtest_arrays(market, signal_ms, end)
    clock.advance_to(start)
    first_trade = int(np.searchsorted(arrays["ts_open_ms"], start))
    total = len(arrays["ts_open_ms"]) - first_trade
    if skip_quiet:
        pre = precompute(arrays, signal_ms, market.base_interval_ms)
        engine = Engine(settings, strategy, broker, gate, recorder, clock, market_rules,
                        kill_switch=NeverEngaged(), known=pre.known,
                        aggregator=PrecomputedAggregator(pre, signal_ms))
        last_close_ms = int(arrays["ts_open_ms"][-1]) + market.base_interval_ms if total else start
        # Every sample up to the last candle's close goes in up front, as the every-candle path
        # would deliver them: the book never shows one later than the clock.
        _feed_oi(engine, _oi_rows(market), 0, last_close_ms)
        _feed_funding(engine, _funding_rows(market), 0, last_close_ms)
        if total:  # the day the every-candle path starts in: its first candle's close
            engine.on_time(int(arrays["ts_open_ms"][first_trade]) + market.base_interval_ms)
        run_fast(engine, pre, first_trade, market.base_interval_ms, clock, recorder, progress)
    else:
        engine = Engine(settings, strategy, broker, gate, recorder, clock, market_rules,
                        kill_switch=NeverEngaged())
        _run_every_candle(engine, arrays, first_trade, market, clock, progress, total)
    clock.advance_to(max(clock.now_ms(), end))
    engine.on_time()  # the daily gate through the last day, however the candles were fed
    engine.finish()
    closes = arrays["close"][first_trade:]
    opens = arrays["open"][first_trade:]
    summary = summarize(
        engine.trades, engine.signals, settings.risk.starting_equity_usdt,
        first_price=float(opens[0]) if total else None,
        last_price=float(closes[-1]) if total else None,
        span_ms=end - start, exposure_ms=engine.exposure_ms,
        funding_charged=settings.costs.funding and not market.funding.empty,
        oi_synthetic=market.oi_synthetic, oi_samples=len(market.open_interest),
        open_position=engine.open_position(float(closes[-1]) if total else None))
    summary.update(cost_notes(settings.costs, not market.funding.empty))
    recorder.finish_run(summary)
    return BacktestResult(engine, summary, total, start, end)


def backtest_arrays(market: MarketData, signal_ms: int, end_ms: int) -> dict[str, np.ndarray]:
    """The base candles a backtest feeds, as columns: from the first whole signal bucket (a
    partial first bucket is dropped) to `end_ms`; sorted, so a slice, not a copy."""
    frame = market.candles
    ts = frame["ts_open_ms"].to_numpy(dtype=np.int64)
    first_bucket = -(-int(ts[0]) // signal_ms) * signal_ms
    a, b = np.searchsorted(ts, (first_bucket, end_ms))
    return {name: frame[name].to_numpy(dtype=np.int64 if name == "ts_open_ms"
                                       else np.float64)[a:b] for name in CANDLE_COLUMNS}


def traded_span(settings: Settings, market: MarketData, start_ms: int | None,
                end_ms: int | None) -> tuple[int, int]:
    """[start, end) that `run_backtest` trades: from the first whole signal bucket at or after
    `start_ms` (or the data's start) to `end_ms` (or the last candle's close). The CLI stores
    this span, so a run without --from/--to still says what it covered."""
    signal_ms = signal_interval_ms(settings, market.base_interval_ms)
    ts = market.candles["ts_open_ms"]
    first_bucket = -(-int(ts.iloc[0]) // signal_ms) * signal_ms
    start = max(first_bucket, start_ms if start_ms is not None else first_bucket)
    start = -(-start // signal_ms) * signal_ms
    end = end_ms if end_ms is not None else int(ts.iloc[-1]) + market.base_interval_ms
    return start, end


def _candle(arrays: dict, i: int, interval_ms: int) -> Candle:
    return Candle(int(arrays["ts_open_ms"][i]), interval_ms, float(arrays["open"][i]),
                  float(arrays["high"][i]), float(arrays["low"][i]), float(arrays["close"][i]),
                  float(arrays["volume"][i]))


def _run_every_candle(engine: Engine, arrays: dict, first_trade: int, market: MarketData,
                      clock: SimClock, progress: Progress | None, total: int) -> None:
    interval = market.base_interval_ms
    engine.warm_up([_candle(arrays, i, interval) for i in range(first_trade)])
    oi_rows = _oi_rows(market)
    funding = _funding_rows(market)
    now = clock.now_ms()
    # Samples published before the traded span are history the engine may look up.
    oi_i = _feed_oi(engine, oi_rows, 0, now)
    fund_i = _feed_funding(engine, funding, 0, now)
    ts = arrays["ts_open_ms"]
    for i in range(first_trade, len(ts)):
        close_ms = int(ts[i]) + interval
        # Samples are delivered at their own time, before the candle that closes after them.
        while oi_i < len(oi_rows) and oi_rows[oi_i][0] <= close_ms:
            clock.advance_to(max(clock.now_ms(), oi_rows[oi_i][0]))
            oi_i = _feed_oi(engine, oi_rows, oi_i, oi_rows[oi_i][0])
        fund_i = _feed_funding(engine, funding, fund_i, close_ms)
        clock.advance_to(close_ms)
        engine.on_base_candle(_candle(arrays, i, interval))
        if progress is not None and (i - first_trade) % 20_000 == 0:
            progress(i - first_trade, total)


def _oi_rows(market: MarketData) -> list[tuple]:
    oi = market.open_interest
    return list(zip(oi["ts_ms"].to_numpy(dtype=np.int64).tolist(), oi["oi_contracts"].tolist(),
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
