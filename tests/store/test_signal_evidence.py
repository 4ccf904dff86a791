"""Each signal's evidence is stored and read back (SQLite, and PostgreSQL where one is reachable):
by the store reader, in the signal dict (`"evidence"`), by `cryptobot signals` and its exports;
signals stored before migration 0006 read back with none."""

from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa
from sqlalchemy import create_engine

from cryptobot.clock import LiveClock
from cryptobot.config import Settings
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.recorder import RunInfo
from cryptobot.report.serialize import signal_to_dict
from cryptobot.runners.backtest import run_backtest
from cryptobot.store import SqlRecorder, open_store
from cryptobot.store.database import upgrade
from cryptobot.strategy.loading import load_strategy
from tests.conftest import backtest_parts
from tests.store.sample_run import REPO_ROOT

CRASH = REPO_ROOT / "data" / "btc_2024-08_crash"  # its open interest is SYNTHETIC (labelled)
SYMBOL = "BTC/USDT:USDT"


def record_crash_backtest(url: str):
    settings = Settings().model_copy(update={"market": Settings().market.model_copy(
        update={"base_timeframe": "5m"})})
    market = load_market_data(CRASH, SYMBOL)
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        recorder.start_run(RunInfo("backtest", "binanceusdm", (SYMBOL,), None, None,
                                   "btc_2024-08_crash (SYNTHETIC OI)", {}))
        return run_backtest(settings, market, load_strategy(settings, SYMBOL), PassThroughGate(),
                            recorder, *backtest_parts(settings), skip_quiet=True)


def test_evidence_is_stored_and_read_back(db_url):
    result = record_crash_backtest(db_url)
    sent = result.engine.signals
    store = open_store(db_url)
    read = [signal for signal, _ in store.signals(store.resolve_run(None))]
    store.close()
    assert [s.evidence for s in read] == [s.evidence for s in sent]
    assert all(len(s.evidence) == 5 for s in read)
    first = signal_to_dict(read[0])["evidence"]
    assert [set(item) for item in first] == [{"name", "value", "holds", "detail"}] * 5
    assert first[0]["value"] == sent[0].metrics["oi_change_pct"]


def test_signals_shows_and_exports_the_evidence(db_url, run_cli):
    result = record_crash_backtest(db_url)
    entered = [s for s in result.engine.signals if s.status.value == "entered"]
    code, out, err = run_cli("signals", "--db", db_url)
    assert code == 0, err
    for name in ("OI fell", "liq xmed", "fund flush", "credit", "repo calm"):
        assert name in out
    assert f"yes {entered[0].metrics['oi_change_pct']:+.2f}%" in out

    code, out, _ = run_cli("signals", "--db", db_url, "--json")
    exported = json.loads(out)["signals"]
    assert code == 0 and [s["evidence"] for s in exported] == \
        [[item.as_dict() for item in s.evidence] for s in result.engine.signals]

    code, out, _ = run_cli("signals", "--db", db_url, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == len(result.engine.signals)
    by_id = {row["signal_id"]: row for row in rows}
    for signal in entered:
        row = by_id[signal.signal_id]
        assert row["evidence_open_interest"] == "yes"
        assert row["evidence_liquidations"] == "unknown"
        assert row["evidence_funding_flushed"] == "no"
        assert float(row["evidence_open_interest_value"]) == signal.metrics["oi_change_pct"]

    code, _, err = run_cli("signals", "--db", db_url, "--json", "--csv")
    assert code == 2 and "error: --json and --csv: choose one" in err


def test_a_signal_stored_before_0006_reads_back_with_no_evidence(db_url, tmp_path):
    if db_url.startswith("sqlite"):
        (tmp_path / "store").mkdir(exist_ok=True)
    engine = create_engine(db_url)
    upgrade(engine, db_url, "0005")
    with engine.begin() as connection:
        connection.execute(sa.table("runs", *(sa.column(c) for c in (
            "mode", "exchange", "symbols_json", "data_source", "oi_synthetic", "settings_json",
            "created_ms"))).insert().values(
            mode="backtest", exchange="binanceusdm", symbols_json=sa.literal([SYMBOL], sa.JSON),
            data_source="x", oi_synthetic=False, settings_json=sa.literal({}, sa.JSON),
            created_ms=1))
        connection.execute(sa.table("signals", *(sa.column(c) for c in (
            "run_id", "seq", "signal_id", "symbol", "spike_ms", "decided_ms", "status", "reason",
            "metrics_json", "setup_events_json"))).insert().values(
            run_id=1, seq=1, signal_id="old", symbol=SYMBOL, spike_ms=1, decided_ms=2,
            status="rejected", reason="no open-interest data",
            metrics_json=sa.literal({}, sa.JSON), setup_events_json=sa.literal([], sa.JSON)))
    engine.dispose()
    store = open_store(db_url)
    ((signal, _),) = store.signals(1)
    store.close()
    assert signal.signal_id == "old" and signal.evidence == ()
    assert signal_to_dict(signal)["evidence"] == []
