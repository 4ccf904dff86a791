"""A live run's bounded history (signal candles and indicator series in a fixed-size buffer, open
interest for the evidence's look-back) changes nothing the strategy or the engine sees.

The same real stream (the August 2024 crash: 5m candles, open interest, funding) is fed candle by
candle, as paper and live feed it, to two engines: one with the bound (a small one, so its buffer
is compacted several times) and one that keeps everything. On every signal candle both must give
the same trigger and bit-identical values of every declared indicator, the engine's ATR and its
ATR% median; at the end the same signals and trades.
"""

from __future__ import annotations

import math

import pytest

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import DAY_MS, SimClock
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.loop import Engine
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.engine.risk import NeverEngaged
from cryptobot.exchange.replay import CandleColumns
from cryptobot.model import FundingRate, OpenInterest
from cryptobot.strategy.api import Params, Strategy
from cryptobot.strategy.loading import load_strategy
from tests.engine.conftest import REPO, settings_with

SYMBOL = "BTC/USDT:USDT"
CRASH = REPO / "data" / "btc_2024-08_crash"


def _stream(market):
    """Candles, open interest and funding in time order: (time usable, kind, item)."""
    events = [(c.ts_close_ms, 0, c) for c in CandleColumns.from_frame(market.candles,
                                                                     market.base_interval_ms)]
    oi = market.open_interest
    events += [(int(ts), 1, OpenInterest(int(ts), float(contracts)))
               for ts, contracts in zip(oi["ts_ms"], oi["oi_contracts"], strict=True)]
    events += [(int(ts), 2, FundingRate(int(ts), float(rate)))
               for ts, rate in zip(market.funding["ts_ms"], market.funding["rate"], strict=True)]
    return sorted(events, key=lambda event: event[:2])


def _run(settings, events, bounded: bool):
    """Per signal candle: (trigger, indicator values, ATR, ATR% median); and the engine."""
    clock = SimClock(events[0][0])
    engine = Engine(settings, load_strategy(settings, SYMBOL), PaperBroker(settings.costs, clock),
                    PassThroughGate(), MemoryRecorder(), clock, kill_switch=NeverEngaged())
    market = engine.market
    if not bounded:
        market.retain_rows(None)
        market.open_interest.retain(None)
    seen, names = [], list(market.indicators)
    for ts_ms, kind, item in events:
        clock.advance_to(max(ts_ms, clock.now_ms()))
        if kind == 1:
            engine.on_open_interest(item)
        elif kind == 2:
            engine.on_funding(item)
        else:
            rows_before = len(market.candles)
            engine.on_base_candle(item)
            if len(market.candles) > rows_before:
                row = len(market.candles) - 1
                values = market.row(row)
                seen.append((row, market.triggered(row),
                             tuple(getattr(values, name) for name in names),
                             market.atr(row), market.atr_pct_median(row)))
    return seen, engine


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN (a window not full yet)."""
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("strategy_path", [
    "strategies.liquidation_rebound:LiquidationRebound",
    "strategies.capitulation_wick:CapitulationWick",
])
def test_bounded_history_gives_identical_values_signals_and_trades(strategy_path):
    market = load_market_data(CRASH, SYMBOL)
    settings = settings_with(risk={"volatility_median_days": 1})  # a bound of 193 rows
    settings = settings.model_copy(update={"strategy": settings.strategy.model_copy(
        update={"path": strategy_path})})
    events = _stream(market)
    bounded, engine = _run(settings, events, bounded=True)
    whole, reference = _run(settings, events, bounded=False)

    candles = engine.market.candles
    assert len(candles) == len(reference.market.candles) == len(bounded) > 2700
    assert candles.first_row > 1500  # compacted: the oldest rows are gone ...
    assert len(candles.column("close")) <= 1024  # ... and the buffer stayed its size
    assert reference.market.candles.first_row == 0
    for mine, theirs in zip(bounded, whole, strict=True):
        assert _same(mine, theirs), (mine, theirs)
    assert sum(triggered for _, triggered, *_ in bounded) > 0
    assert engine.signals == reference.signals
    assert engine.trades == reference.trades
    assert len(engine.market.open_interest) == len(reference.market.open_interest)


def test_open_interest_kept_for_the_lookback_then_forgotten():
    """A lookup inside the span kept finds what it found before; older ones answer None."""
    market = load_market_data(CRASH, SYMBOL)
    events = [event for event in _stream(market) if event[1] == 1]
    clock = SimClock(events[0][0])
    settings = settings_with()
    engine = Engine(settings, load_strategy(settings, SYMBOL), PaperBroker(settings.costs, clock),
                    PassThroughGate(), MemoryRecorder(), clock, kill_switch=NeverEngaged())
    book = engine.market.open_interest
    for ts_ms, _, sample in events:
        clock.advance_to(ts_ms)
        engine.on_open_interest(sample)
    now_ms = clock.now_ms()
    setup_ms = (16 + 1) * 15 * 60_000  # the default setup_expiry_candles on 15m candles, + 1
    keep_ms = (settings.evidence.liquidation_median_days + 2) * DAY_MS + setup_ms
    assert book.all_stamps_ms()[0] >= now_ms - keep_ms - DAY_MS - 300_000
    assert len(book) == len(events)
    by_time = {ts_ms: sample for ts_ms, _, sample in events}
    for ts_ms in range(now_ms - keep_ms, now_ms, 3_600_000):
        expected = by_time[max(t for t in by_time if t <= ts_ms)]
        assert book.last_at_or_before(ts_ms) == expected
    assert book.last_at_or_before(events[0][0]) is None


def test_a_series_not_read_for_longer_than_the_bound_is_still_exact():
    """The engine reads its ATR only while a trade is open: a series nobody asked for is
    extended before its candles are forgotten, so its first value asked is the whole history's."""
    market = load_market_data(CRASH, SYMBOL)
    settings = settings_with(risk={"volatility_median_days": 1})
    candles = list(CandleColumns.from_frame(market.candles, market.base_interval_ms))
    views = []
    for bounded in (True, False):
        engine = Engine(settings, load_strategy(settings, SYMBOL),
                        PaperBroker(settings.costs, SimClock(0)), PassThroughGate(),
                        MemoryRecorder(), SimClock(0), kill_switch=NeverEngaged())
        if not bounded:
            engine.market.retain_rows(None)
        engine.warm_up(candles)  # indicators only: nothing reads a series meanwhile
        views.append(engine.market)
    mine, whole = views
    assert mine.candles.first_row > 1500
    last = len(whole.candles) - 1
    assert mine.atr(last) == whole.atr(last)
    assert mine.atr_pct_median(last) == whole.atr_pct_median(last)
    assert mine.row(last).atr_before == whole.row(last).atr_before
    with pytest.raises(IndexError, match="forgotten"):  # never a silent wrap to the end
        mine.atr(0)


def test_cached_series_shift_with_the_candles_they_were_computed_on():
    """Every kind of series the cache holds (recursive, windowed, a lag of each, read as whole
    series) follows its candles when they are compacted."""
    from cryptobot.strategy.candles import SignalCandles
    from cryptobot.strategy.indicators import ATR, SMA, Lag, RollingMax, SeriesCache

    market = load_market_data(CRASH, SYMBOL)
    candles = list(CandleColumns.from_frame(market.candles, market.base_interval_ms))
    indicators = (ATR(14), Lag(ATR(14), 3), RollingMax("high", 20), Lag(SMA("volume", 10), 2))
    bounded, whole = SignalCandles(300_000), SignalCandles(300_000)
    bounded.retain(40)
    caches = SeriesCache(bounded), SeriesCache(whole)
    for candle in candles:
        row = bounded.close(candle)
        assert whole.close(candle) == row
        if bounded.full():
            caches[0].extend_all(())
            caches[0].drop_rows(bounded.compact())
        first = bounded.first_row
        for indicator in indicators:
            assert _same(float(caches[0].series(indicator)[row - first]),
                         float(caches[1].series(indicator)[row]))
    assert bounded.first_row > len(candles) - 1024


def _open_interest_book_after(settings, events, strategy=None):
    clock = SimClock(events[0][0])
    engine = Engine(settings, strategy or load_strategy(settings, SYMBOL),
                    PaperBroker(settings.costs, clock),
                    PassThroughGate(), MemoryRecorder(), clock, kill_switch=NeverEngaged())
    for ts_ms, _, sample in events:
        clock.advance_to(ts_ms)
        engine.on_open_interest(sample)
    return engine.market.open_interest, clock.now_ms()


def test_open_interest_is_kept_as_long_as_the_strategys_setups_run():
    """A setup may decide up to setup_expiry_candles after its spike, and reads the spike's
    open interest: 1,000 15m candles (10.4 days) is longer than the evidence's 9 days."""
    events = [event for event in _stream(load_market_data(CRASH, SYMBOL)) if event[1] == 1]
    book, now_ms = _open_interest_book_after(
        settings_with(params={"setup_expiry_candles": 1000}), events)
    spike_ms = now_ms - 1000 * 15 * 60_000
    assert now_ms - spike_ms > 9 * DAY_MS
    expected = [sample for ts_ms, _, sample in events if ts_ms <= spike_ms][-1]
    assert book.last_at_or_before(spike_ms) == expected


def test_a_strategy_that_does_not_say_how_long_its_setups_run_keeps_all_open_interest():
    events = [event for event in _stream(load_market_data(CRASH, SYMBOL)) if event[1] == 1]
    book, _ = _open_interest_book_after(settings_with(), events, Strategy(Params(), SYMBOL))
    assert book.all_stamps_ms()[0] == events[0][0]
