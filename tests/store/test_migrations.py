"""The schema is Alembic-managed: old stores are upgraded in place and keep their runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert

from cryptobot.clock import LiveClock
from cryptobot.store import SqlRecorder, open_store
from cryptobot.store.database import head_revision, upgrade
from cryptobot.store.tables import Base, RunRow, TradeLegRow, TradeRow


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as raw:
        return raw.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_migrations_create_exactly_the_models(db_url):
    SqlRecorder(db_url, clock=LiveClock()).close()
    engine = create_engine(db_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_store_at_first_revision_is_upgraded_and_keeps_its_run(tmp_path, sample_run):
    path = tmp_path / "old.sqlite"
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    upgrade(engine, url, "0001")
    assert _revision(path) == "0001"
    with sqlite3.connect(path) as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert "signal_candles" not in tables  # 0002 adds it
    with engine.begin() as connection:  # a run as the first version stored it
        connection.execute(
            insert(RunRow).values(
                id=1,
                mode="paper",
                exchange="binanceusdm",
                symbol="BTC/USDT:USDT",
                start_ms=None,
                end_ms=None,
                data_source="stream",
                oi_synthetic=False,
                settings_json={},
                created_ms=1722816000000,
                finished_ms=None,
                summary_json=None,
            )
        )
        connection.execute(
            insert(TradeRow).values(
                run_id=1,
                seq=1,
                signal_id="s1",
                symbol="BTC/USDT:USDT",
                side="buy",
                entry_ms=1722816000000,
                exit_ms=1722819600000,
                entry_price=54000.5,
                qty_base=0.01,
                initial_stop=53000.0,
                entry_fee_usdt=0.27,
                funding_usdt=0.0,
                pnl_usdt=None,
                r_multiple=None,
                exit_reason="tp2",
                gate_seq=None,
            )
        )
        connection.execute(
            insert(TradeLegRow).values(
                run_id=1,
                trade_seq=1,
                leg_index=0,
                ts_ms=1722819600000,
                price=55000.0,
                qty_base=0.01,
                fee_usdt=0.11,
                reason="tp2",
            )
        )
    engine.dispose()

    # opening upgrades to head, then records run 2
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        sample_run.record_sample_run(recorder)

    assert _revision(path) == head_revision() != "0001"
    store = open_store(url)
    assert [run.run_id for run in store.runs()] == ["1", "2"]
    old_trade, gate = store.trades(1)[0]
    assert (old_trade.entry_price, old_trade.legs[0].price, gate) == (54000.5, 55000.0, None)
    assert old_trade.pnl_usdt == pytest.approx((55000.0 - 54000.5) * 0.01 - 0.27 - 0.11)
    assert store.candles(1) == [] and len(store.candles(2)) > 0


def test_reading_an_old_store_upgrades_it_too(tmp_path):
    path = tmp_path / "old.sqlite"
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    upgrade(engine, url, "0001")
    with engine.begin() as connection:
        connection.execute(
            insert(RunRow).values(
                id=1,
                mode="backtest",
                exchange="bybit",
                symbol="ETH/USDT:USDT",
                start_ms=1,
                end_ms=2,
                data_source="x",
                oi_synthetic=False,
                settings_json={},
                created_ms=3,
            )
        )
    engine.dispose()
    store = open_store(url)
    assert store.open_interest(1) == [] and store.runs()[0].symbol == "ETH/USDT:USDT"
    assert _revision(path) == head_revision()
