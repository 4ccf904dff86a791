"""Run the engine over stored market data: the backtest runner.

Two ways to feed the same engine: `fast=False` hands it every base candle (the path live uses);
`fast=True` precomputes the signal candles and indicators with numpy and skips base candles while
nothing can happen (no position, no order, no setup, and the next signal candle cannot be a
spike). tests/engine/test_fast_path.py proves both give identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cryptobot.brokers.market_rules import MarketRules
from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import DAY_MS, SimClock
from cryptobot.config import Settings
from cryptobot.data.market_data import MarketData
from cryptobot.engine import Engine, timeframe_ms
from cryptobot.gate import Gate
from cryptobot.indicators import PrecomputedFeatures, rolling_max_including
from cryptobot.model import Candle, FundingRate, OpenInterest
from cryptobot.recorder import Recorder
from cryptobot.report.summary import summarize
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
                 recorder: Recorder, start_ms: int | None = None, end_ms: int | None = None,
                 market_rules: MarketRules | None = None, fast: bool = True,
                 progress: Progress | None = None) -> BacktestResult:
    """Candles before `start_ms` only warm the indicators up; trading runs [start_ms, end_ms)."""
    signal_ms = timeframe_ms(settings.market.signal_timeframe)
    frame = market.candles
    ts = frame["ts_open_ms"].to_numpy(dtype=np.int64)
    first_bucket = -(-int(ts[0]) // signal_ms) * signal_ms  # drop a partial first bucket
    start = max(first_bucket, start_ms if start_ms is not None else first_bucket)
    start = -(-start // signal_ms) * signal_ms
    end = end_ms if end_ms is not None else int(ts[-1]) + market.base_interval_ms
    keep = (ts >= first_bucket) & (ts < end)
    arrays = {name: frame[name].to_numpy()[keep] for name in
              ("ts_open_ms", "open", "high", "low", "close", "volume")}
    clock = SimClock(start)
    broker = PaperBroker(settings.costs, clock)
    features = _precompute(settings, arrays, signal_ms, strategy) if fast else None
    engine = Engine(settings, strategy, broker, gate, recorder, clock, market_rules,
                    features=features[0] if features else None)
    first_trade = int(np.searchsorted(arrays["ts_open_ms"], start))
    total = len(arrays["ts_open_ms"]) - first_trade
    if fast:
        _run_fast(engine, strategy, arrays, first_trade, features, market, clock, recorder,
                  progress, total)
    else:
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
        open_position=not engine.is_idle())
    recorder.finish_run(summary)
    return BacktestResult(engine, summary, total, start, end)


def _candle(arrays: dict, i: int, interval_ms: int) -> Candle:
    return Candle(int(arrays["ts_open_ms"][i]), interval_ms, float(arrays["open"][i]),
                  float(arrays["high"][i]), float(arrays["low"][i]), float(arrays["close"][i]),
                  float(arrays["volume"][i]))


def _run_every_candle(engine: Engine, arrays: dict, first_trade: int, market: MarketData,
                      clock: SimClock, progress: Progress | None, total: int) -> None:
    interval = market.base_interval_ms
    engine.warm_up([_candle(arrays, i, interval) for i in range(first_trade)])
    oi = market.open_interest
    oi_ts = oi["ts_ms"].to_numpy(dtype=np.int64)
    oi_rows = list(zip(oi_ts.tolist(), oi["oi_contracts"].tolist(),
                       oi["oi_value_usdt"].tolist(), strict=True))
    funding = list(zip(market.funding["ts_ms"].tolist(), market.funding["rate"].tolist(),
                       strict=True))
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


def _run_fast(engine: Engine, strategy: Strategy, arrays: dict, first_trade: int, features,
              market: MarketData, clock: SimClock, recorder: Recorder,
              progress: Progress | None, total: int) -> None:
    precomputed, signal, bucket_starts, mask = features
    interval = market.base_interval_ms
    # Every sample goes in up front: the book never shows one later than the clock.
    oi = market.open_interest
    _feed_oi(engine, list(zip(oi["ts_ms"].tolist(), oi["oi_contracts"].tolist(),
                              oi["oi_value_usdt"].tolist(), strict=True)), 0, 2**62)
    _feed_funding(engine, list(zip(market.funding["ts_ms"].tolist(),
                                   market.funding["rate"].tolist(), strict=True)), 0, 2**62)
    signal_ms = int(precomputed.signal_ts[1] - precomputed.signal_ts[0]) if len(
        precomputed.signal_ts) > 1 else interval
    k = int(np.searchsorted(bucket_starts, first_trade))
    n_buckets = len(bucket_starts)
    candidates = np.flatnonzero(mask)
    engine.on_time(clock.now_ms())
    sig_rows = [column.tolist() for column in signal]  # plain floats: cheap Candle building
    base_rows = [arrays[name].tolist() for name in
                 ("ts_open_ms", "open", "high", "low", "close", "volume")]
    ts = arrays["ts_open_ms"]
    next_report = 0
    while k < n_buckets:
        if engine.is_idle() and strategy.is_idle() and not mask[k]:
            nxt = candidates[np.searchsorted(candidates, k)] if candidates.size and \
                candidates[-1] >= k else n_buckets
            for j in range(k, nxt):  # the report still draws every signal candle
                recorder.signal_candle(Candle(sig_rows[0][j], signal_ms, sig_rows[1][j],
                                              sig_rows[2][j], sig_rows[3][j], sig_rows[4][j],
                                              sig_rows[5][j]))
            k = nxt
            if k < n_buckets:
                clock.advance_to(int(ts[bucket_starts[k]]))
                engine.on_time()
            continue
        stop = bucket_starts[k + 1] if k + 1 < n_buckets else len(ts)
        for i in range(bucket_starts[k], stop):
            clock.advance_to(base_rows[0][i] + interval)
            engine.on_base_candle(Candle(base_rows[0][i], interval, base_rows[1][i],
                                         base_rows[2][i], base_rows[3][i], base_rows[4][i],
                                         base_rows[5][i]))
        k += 1
        if progress is not None and stop - first_trade >= next_report:
            progress(stop - first_trade, total)
            next_report += 20_000
    if progress is not None:
        progress(total, total)


def _precompute(settings: Settings, arrays: dict, signal_ms: int, strategy: Strategy):
    """Signal candles, their indicators and the spike pre-filter, all with numpy."""
    ts = arrays["ts_open_ms"]
    bucket = ts - ts % signal_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    sig_ts = bucket[starts]
    o = arrays["open"][starts]
    c = arrays["close"][ends - 1]
    h = np.maximum.reduceat(arrays["high"], starts)
    lo = np.minimum.reduceat(arrays["low"], starts)
    v = _sequential_bucket_sums(arrays["volume"], starts, ends)
    s = settings.strategy
    prev_c = np.r_[np.nan, c[:-1]]
    tr = np.maximum(h - lo, np.maximum(np.abs(h - prev_c), np.abs(lo - prev_c)))
    tr[0] = h[0] - lo[0]
    atr = _wilder(tr.tolist(), s.atr_period)
    high_24h = rolling_max_including(h, s.high_lookback_candles)
    atr_pct = atr / c
    vwap, prev_close = _session_arrays(arrays)
    atr_pct_window = settings.risk.volatility_median_days * DAY_MS // signal_ms
    precomputed = PrecomputedFeatures(ts, vwap, prev_close, sig_ts, atr, high_24h, v, atr_pct,
                                      s.volume_median_candles, atr_pct_window)
    mask = strategy.candidate_mask(o, h, lo, c, v, atr)
    return precomputed, (sig_ts, o, h, lo, c, v), starts, mask


def _sequential_bucket_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Sums added left to right, exactly as the incremental aggregator adds them."""
    lengths = ends - starts
    out = np.zeros(len(starts), dtype=np.float64)
    for offset in range(int(lengths.max()) if len(lengths) else 0):
        take = lengths > offset
        out[take] = out[take] + values[starts[take] + offset]
    return out


def _wilder(tr: list[float], period: int) -> np.ndarray:
    out = [0.0] * len(tr)
    atr = 0.0
    for i, value in enumerate(tr):
        atr = value if i == 0 else atr + (value - atr) / period
        out[i] = atr
    return np.array(out, dtype=np.float64)


def _session_arrays(arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per base candle: running VWAP of its UTC day, and the previous day's last close."""
    ts = arrays["ts_open_ms"]
    typical = (arrays["high"] + arrays["low"] + arrays["close"]) / 3.0
    pv = typical * arrays["volume"]
    vol = arrays["volume"]
    day = ts - ts % DAY_MS
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    vwap = np.empty(len(ts))
    prev_close = np.full(len(ts), np.nan)
    for n, (a, b) in enumerate(zip(starts, ends, strict=True)):
        cum_pv = np.cumsum(pv[a:b])
        cum_v = np.cumsum(vol[a:b])
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap[a:b] = np.where(cum_v > 0, cum_pv / cum_v, typical[a:b])
        if n > 0 and day[a] - day[starts[n - 1]] == DAY_MS:
            prev_close[a:b] = arrays["close"][a - 1]
    return vwap, prev_close
