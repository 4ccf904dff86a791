"""Signal candles stored as columns (`signal_candle_chunks`, migration 0008): a real backtest reads
back exactly as it ran, a paper run's candles one chunk each, stores of 0007 carried over
without loss (and back), and a damaged chunk is one clear error."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine

from cryptobot.clock import LiveClock
from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.recorder import MemoryRecorder, RunInfo
from cryptobot.errors import StoreError
from cryptobot.model import Candle
from cryptobot.runners.backtest import run_backtest
from cryptobot.store import SqlRecorder, open_store
from cryptobot.store.database import head_revision
from cryptobot.store.tables import SignalCandleChunkRow
from cryptobot.strategy.loading import load_strategy
from tests.conftest import DATA_DIR, REPO_ROOT, backtest_parts
from tests.store.test_migrations import _alembic_config, _at_revision, _insert, _revision

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
M15, H1 = 900_000, 3_600_000
T0 = 1_722_816_000_000


def _backtest(recorder) -> None:
    settings = load_settings(REPO_ROOT / "config" / "crosscheck.toml")
    market = load_market_data(DATA_DIR / "btc_2024-08_crash", BTC)
    recorder.start_run(RunInfo("backtest", "binanceusdm", (BTC,), None, None, "crash", {}))
    run_backtest(settings, market, load_strategy(settings, BTC), PassThroughGate(), recorder,
                 *backtest_parts(settings), skip_quiet=True)


def _chunk_count(url: str, run_id: int = 1) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(sa.text(
            f"SELECT COUNT(*) FROM signal_candle_chunks WHERE run_id = {run_id}")).scalar_one()
    engine.dispose()
    return count


def test_a_real_backtest_reads_back_as_it_ran(db_url):
    memory = MemoryRecorder()
    _backtest(memory)
    with SqlRecorder(db_url, clock=LiveClock(), flush_every=None) as recorder:  # as the CLI
        _backtest(recorder)
    stored = open_store(db_url).load_run(1)
    assert len(memory.candles) > 2000
    assert stored.candles == memory.candles  # every value exact, in order, tagged
    assert stored.signals == memory.signals and stored.trades == memory.trades
    assert stored.fills == memory.fills and stored.equity_points == memory.equity_points
    assert _chunk_count(db_url) == 1  # one symbol's candles: one row


def test_a_paper_run_writes_each_candle_as_it_comes_and_numbers_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    candles = [Candle(T0 + i * M15, M15, 100.0 + i, 101.5 + i, 99.25, 100.5, 7.0 + i)
               for i in range(3)]
    recorder = SqlRecorder(url, clock=LiveClock(), flush_every=None)
    recorder.start_run(RunInfo("paper", "binanceusdm", (BTC,), None, None, "stream", {}))
    for candle in candles[:2]:
        recorder.signal_candle(BTC, candle)
        recorder.flush()  # as paper does once each candle is handled
    # no close: what a crash leaves is already stored
    assert open_store(url).candles(1) == [_tagged(c) for c in candles[:2]]
    recorder._engine.dispose()
    resumed = SqlRecorder(url, clock=LiveClock(), flush_every=None)
    resumed.resume_run(1, {SignalCandleChunkRow: open_store(url).signal_candle_chunk_count(1)},
                       [])
    resumed.signal_candle(BTC, candles[2])
    resumed.close()
    assert open_store(url).candles(1) == [_tagged(c) for c in candles]
    assert _chunk_count(url) == 3


def _tagged(candle: Candle, symbol: str = BTC) -> Candle:
    return replace(candle, symbol=symbol)


def _row(run_id, seq, symbol, ts_open_ms, interval_ms, open_, high, low, close, volume):
    return dict(run_id=run_id, seq=seq, symbol=symbol, ts_open_ms=ts_open_ms,
                interval_ms=interval_ms, open=open_, high=high, low=low, close=close,
                volume=volume)


OLD_ROWS = [  # as 0007 held them: one row a candle, symbols and an interval interleaved
    _row(1, 1, BTC, T0, M15, 54000.5, 54100.25, 53900.0, 54050.0, 12.5),
    _row(1, 2, BTC, T0 + M15, M15, 54050.0, 54060.0, 0.1 + 0.2, 1e-05, 1e16),
    _row(1, 3, ETH, T0, M15, 2500.0, 2501.0, 2499.0, 2500.5, 30.0),
    _row(1, 4, BTC, T0 + 2 * M15, M15, 54000.0, 54001.0, 53999.0, 54000.5, 3.0),
    _row(1, 5, BTC, T0, H1, 54000.5, 54200.0, 53800.0, 54100.0, 40.0),
    _row(2, 1, ETH, T0, M15, 2500.0, 2510.0, 2490.0, 2505.0, 1.0),
]


def test_a_0007_store_keeps_every_candle_in_order_and_downgrades_back(db_url):
    engine = _at_revision(db_url, "0007")
    with engine.begin() as connection:
        for symbols in ([BTC, ETH], [ETH]):  # runs 1 and 2
            _insert(connection, "runs", mode="paper", exchange="binanceusdm",
                    symbols_json=symbols, start_ms=None, end_ms=None, data_source="stream",
                    oi_synthetic=False, settings_json={}, created_ms=T0, finished_ms=None,
                    summary_json=None)
        for row in OLD_ROWS:
            _insert(connection, "signal_candles", **row)
    engine.dispose()

    store = open_store(db_url)  # opening upgrades
    assert _revision(db_url) == head_revision()
    expected = [Candle(r["ts_open_ms"], r["interval_ms"], r["open"], r["high"], r["low"],
                       r["close"], r["volume"], r["symbol"]) for r in OLD_ROWS[:5]]
    assert store.candles(1) == expected  # the exact floats, in seq order
    assert store.candles(1, symbols=[ETH]) == [expected[2]]
    assert store.candles(2) == [Candle(T0, M15, 2500.0, 2510.0, 2490.0, 2505.0, 1.0, ETH)]
    assert store.signal_candle_chunk_count(1) == 4  # BTC, ETH, BTC 15m, BTC 1h
    store.close()
    if db_url.startswith("postgresql"):  # the arrays are stored as they are, not compressed
        engine = create_engine(db_url)
        with engine.connect() as connection:
            storage = connection.execute(sa.text(
                "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = "
                "'signal_candle_chunks'::regclass AND attname IN ('ts_open_ms', 'open', "
                "'high', 'low', 'close', 'volume')")).all()
        engine.dispose()
        assert sorted(kind for _, kind in storage) == ["e"] * 6

    engine = create_engine(db_url)
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0007")
    with engine.connect() as connection:
        back = connection.execute(sa.text(
            "SELECT run_id, seq, symbol, ts_open_ms, interval_ms, open, high, low, close, "
            "volume FROM signal_candles ORDER BY run_id, seq")).all()
    engine.dispose()
    assert [_row(*row) for row in back] == OLD_ROWS


def test_a_damaged_chunk_is_one_clear_error(stored_sqlite_run):
    url, _ = stored_sqlite_run
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE signal_candle_chunks SET close = X'0001' "
                                   "WHERE seq = 1"))
    engine.dispose()
    store = open_store(url)
    with pytest.raises(StoreError, match="run 1: corrupted row in signal_candle_chunks "
                                         r"\(seq 1\): .*close: 2 bytes for") as exc:
        store.candles(1)
    assert "\n" not in str(exc.value)


def test_blocks_and_single_candles_join_one_chunk_without_touching_the_callers_lists(tmp_path):
    from cryptobot.engine.recorder import CandleBlock

    url = f"sqlite:///{tmp_path / 'mixed.sqlite'}"
    candles = [Candle(T0 + i * M15, M15, 100.0 + i, 102.0 + i, 99.0, 101.0, 5.0 + i, BTC)
               for i in range(6)]
    columns = [[getattr(c, key) for c in candles[:3]]
               for key in ("ts_open_ms", "open", "high", "low", "close", "volume")]
    kept = [list(column) for column in columns]
    with SqlRecorder(url, clock=LiveClock(), flush_every=None) as recorder:
        recorder.start_run(RunInfo("backtest", "binanceusdm", (BTC,), None, None, "x", {}))
        recorder.signal_candles(BTC, CandleBlock(M15, *columns))
        recorder.signal_candle(BTC, candles[3])
        recorder.signal_candle(BTC, candles[4])
        recorder.signal_candle(BTC, candles[5])
        recorder.finish_run({})
    assert columns == kept
    assert open_store(url).candles(1) == candles
    assert _chunk_count(url) == 1
