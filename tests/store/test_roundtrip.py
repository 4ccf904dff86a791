"""A run recorded through SqlRecorder reads back as the very same model objects."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from cryptobot.clock import LiveClock
from cryptobot.engine.recorder import Recorder
from cryptobot.store import SqlRecorder, open_store


def test_sql_recorder_satisfies_the_recorder_protocol(db_url):
    recorder: Recorder = SqlRecorder(db_url, clock=LiveClock())  # type-checks against the protocol
    for name in Recorder.__dict__:
        if not name.startswith("_"):
            assert callable(getattr(recorder, name)), name


def test_everything_reads_back_identical(stored_run):
    url, sent = stored_run
    store = open_store(url)
    run = store.resolve_run(None)
    assert str(run) == sent["run_id"]
    assert store.trades(run) == sent["trades"]
    assert store.signals(run) == sent["signals"]
    assert store.candles(run) == sent["candles"]
    assert store.open_interest(run) == sent["oi"]
    assert store.orders(run) == sent["orders"]
    assert store.fills(run) == sent["fills"]
    assert store.equity(run) == sent["equity"]
    daily = [decision for decision, trigger in store.gate_decisions(run) if trigger == "daily"]
    assert daily == sent["gates"]


def test_trade_numbers_are_exact_not_rounded(stored_run):
    url, sent = stored_run
    trade, _ = open_store(url).trades(1)[0]
    original = sent["trades"][0][0]
    assert trade.pnl_usdt == original.pnl_usdt  # bit-identical floats
    assert trade.r_multiple == original.r_multiple
    engine = create_engine(url)
    with engine.connect() as connection:
        fee, pnl = connection.execute(
            text("SELECT entry_fee_usdt, pnl_usdt FROM trades WHERE seq = 1")
        ).one()
    engine.dispose()
    expected = (repr(original.entry_fee_usdt), repr(original.pnl_usdt))
    if url.startswith("sqlite"):  # the exact decimal text (its NUMERIC would be a binary float)
        assert (fee, pnl) == expected
    else:  # an exact NUMERIC
        assert (fee, pnl) == tuple(Decimal(number) for number in expected)


def test_run_metadata_and_summary(stored_run):
    url, sent = stored_run
    store = open_store(url)
    info = store.run_info(1)
    assert (info.mode, info.exchange) == ("backtest", "binanceusdm")
    assert info.symbols == ("BTC/USDT:USDT",)
    assert "SYNTHETIC" in info.data_source and store.oi_synthetic(1)
    assert info.settings["risk"]["risk_per_trade"] == 0.005
    summary = store.summary(1)
    assert summary["trades"] == 2
    assert summary["profit_factor"] is None  # inf is not portable JSON: stored as absent


def test_gate_decision_at_entry_is_stored_once(stored_run):
    url, sent = stored_run
    store = open_store(url)
    signal_gate = sent["signals"][1][1]
    stored = [decision for decision, _ in store.gate_decisions(1)]
    assert stored.count(signal_gate) == 1
    assert store.trades(1)[0][1] == signal_gate == store.signals(1)[1][1]


def test_second_run_appends(stored_run, sample_run):
    url, _ = stored_run
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        second = sample_run.record_sample_run(recorder, oi_synthetic=False)
    store = open_store(url)
    listings = store.runs()
    assert [r.run_id for r in listings] == ["1", second["run_id"]] == ["1", "2"]
    assert store.resolve_run(None) == 2
    assert not store.oi_synthetic(2) and store.oi_synthetic(1)
    assert store.trades(1) == store.trades(2)
    assert listings[0].trade_count == 2
    # Summed as exact decimals, so only float-close to a float sum.
    assert listings[0].pnl_usdt == pytest.approx(sum(t.pnl_usdt for t, _ in second["trades"]))


def test_load_run_has_the_memory_recorder_shape(stored_run):
    url, sent = stored_run
    loaded = open_store(url).load_run(1)
    assert loaded.trades == sent["trades"] and loaded.candles == sent["candles"]
    assert loaded.info.symbols == ("BTC/USDT:USDT",) and loaded.summary["trades"] == 2


@pytest.mark.parametrize("values", [
    [0.1, 34641.3, -0.0, 1.0, None, 123456789.123],  # the common case: reprs in one pass
    [0.1, 1e-07, 2.5e+16, None],  # an exponent: the Decimal's text
    [1.0, float("nan"), float("inf"), None],  # not finite: absent
    [1, True, Decimal("1.10"), 0.5],  # not floats
])
def test_a_decimal_column_binds_as_its_values_one_by_one(values):
    from sqlalchemy.dialects import postgresql, sqlite

    from cryptobot.store.types import ExactDecimal

    column_type = ExactDecimal()
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        one_by_one = [column_type._cached_bind_processor(dialect)(value) for value in values]
        assert column_type.bind_column(values, dialect) == one_by_one


def test_gate_decisions_equal_as_json_are_stored_once_and_others_apart(db_url):
    from cryptobot.engine.recorder import RunInfo
    from cryptobot.model import GateAction, GateDecision

    def decision(size_factor=1.0, inputs=None):
        return GateDecision(1_700_000_000_000, GateAction.REDUCE, size_factor, ("vix high",),
                            inputs or {})

    with SqlRecorder(db_url, clock=LiveClock(), flush_every=None) as recorder:
        recorder.start_run(RunInfo("backtest", "binanceusdm", ("BTC/USDT:USDT",), None, None,
                                   "test", {}))
        for gate in (decision(), decision(), decision(inputs={"vix": 31.5, "dxy": None}),
                     decision(inputs={"dxy": None, "vix": 31.5}), decision(inputs={"vix": 31}),
                     decision(inputs={"vix": float("nan")}), decision(inputs={"vix": None}),
                     decision(size_factor=0.5), decision(size_factor=-0.0),
                     decision(size_factor=0.0)):
            recorder.gate_decision(gate, "daily")
    stored = open_store(db_url).gate_decisions(1)
    # equal JSON, one row: the same decision twice, the same inputs in another order, and NaN
    # stored as null beside null; 31 and 31.5, 0.0 and -0.0 apart
    assert len(stored) == 7
