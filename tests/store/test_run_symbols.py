"""A run of several symbols: stored with its symbol list, every per-symbol row readable for
some symbols only (the scripted two-symbol run of two_symbol_run.py, on real candles)."""

from __future__ import annotations

import pytest

from cryptobot.clock import LiveClock
from cryptobot.engine.recorder import MemoryRecorder, RunInfo
from cryptobot.store import SqlRecorder, open_store
from tests.store.two_symbol_run import (
    BTC,
    ETH,
    SYMBOLS,
    real_candles,
    record_scripted_two_symbol_run,
)


@pytest.fixture
def two_symbol_store(db_url):
    with SqlRecorder(db_url, clock=LiveClock()) as recorder:
        sent = record_scripted_two_symbol_run(recorder)
    store = open_store(db_url)
    yield store, sent
    store.close()


def test_the_run_keeps_its_symbol_list_in_order(two_symbol_store):
    store, sent = two_symbol_store
    assert store.runs()[0].symbols == SYMBOLS == (BTC, ETH)
    assert store.run_symbols(1) == SYMBOLS and store.run_info(1).symbols == SYMBOLS
    assert store.runs()[0].trade_count == len(sent["trades"]) == 3


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_each_symbols_rows_read_back_alone(two_symbol_store, symbol):
    store, sent = two_symbol_store
    mine = sent["by_symbol"][symbol]
    only = [symbol]
    assert store.candles(1, symbols=only) == mine["candles"]
    assert {c.symbol for c in store.candles(1, symbols=only)} == {symbol}
    assert store.open_interest(1, symbols=only) == mine["oi"]
    assert store.signals(1, symbols=only) == mine["signals"]
    assert store.trades(1, symbols=only) == mine["trades"]
    assert store.orders(1, symbols=only) == mine["orders"]
    assert store.fills(1, symbols=only) == mine["fills"]
    loaded = store.load_run(1, symbols=only)
    assert [t for t, _ in loaded.trades] == [t for t, _ in mine["trades"]]
    assert loaded.equity_points == sent["equity"]  # the equity is the whole run's
    assert loaded.info.symbols == SYMBOLS


def test_without_a_filter_or_with_every_symbol_all_rows_come_back(two_symbol_store):
    store, sent = two_symbol_store
    assert store.trades(1) == sent["trades"] == store.trades(1, symbols=SYMBOLS)
    assert store.signals(1) == sent["signals"]
    assert len(store.candles(1)) == sum(len(sent["by_symbol"][s]["candles"]) for s in SYMBOLS)
    assert store.trades(1, symbols=[]) == [] and store.candles(1, symbols=["SOL/USDT:USDT"]) == []
    assert [t.symbol for t, _ in store.trades(1)] == [BTC, ETH, BTC]


def test_the_memory_recorder_holds_the_same_tagged_rows_as_the_store(two_symbol_store):
    store, _ = two_symbol_store
    memory = MemoryRecorder()
    record_scripted_two_symbol_run(memory)
    stored = store.load_run(1)
    assert memory.candles == stored.candles  # BTC one by one, ETH in blocks: all tagged
    assert memory.oi_samples == stored.oi_samples
    assert [c.symbol for c in memory.candles[:25]] == [BTC] * 24 + [ETH]


def test_a_candle_is_stored_as_the_symbol_it_is_recorded_for(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    btc_candle = real_candles(BTC)[0]
    memory = MemoryRecorder()
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        for each in (recorder, memory):
            each.start_run(RunInfo("paper", "binanceusdm", (ETH,), None, None, "x", {}))
            each.signal_candle(ETH, btc_candle)  # the recorder's argument, not the candle's tag
    assert [c.symbol for c in open_store(url).candles(1)] == [ETH]
    assert [c.symbol for c in memory.candles] == [ETH]


def test_run_info_wants_a_tuple_of_symbols():
    with pytest.raises(TypeError, match="tuple of symbols"):
        RunInfo("paper", "binanceusdm", BTC, None, None, "x", {})  # type: ignore[arg-type]
    assert RunInfo("paper", "binanceusdm", [BTC], None, None, "x", {}).symbols == (BTC,)
