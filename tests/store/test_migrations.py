"""The schema is Alembic-managed: one head; old stores are upgraded in place and keep their
runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, inspect

from cryptobot.clock import LiveClock
from cryptobot.store import SqlRecorder, open_store
from cryptobot.store.database import MIGRATIONS_DIR, head_revision, upgrade
from cryptobot.store.tables import Base, RunRow, TradeLegRow, TradeRow


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return revision


def test_the_migrations_have_exactly_one_head():
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1, f"several Alembic heads: {script.get_heads()}"
    assert len(script.get_bases()) == 1
    revisions = list(script.walk_revisions())  # head to base, one line
    assert [r.down_revision for r in revisions[:-1]] == [r.revision for r in revisions[1:]]
    assert revisions[0].revision == head_revision()


def test_migrations_create_exactly_the_models(db_url):
    SqlRecorder(db_url, clock=LiveClock()).close()
    engine = create_engine(db_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_store_at_first_revision_is_upgraded_and_keeps_its_run(db_url, sample_run):
    url = db_url
    if url.startswith("sqlite"):
        _sqlite_folder(url).mkdir(parents=True)
    engine = create_engine(url)
    upgrade(engine, url, "0001")
    assert _revision(url) == "0001"
    assert "signal_candles" not in inspect(engine).get_table_names()  # 0002 adds it
    with engine.begin() as connection:  # a run as the first version stored it (as run 1)
        connection.execute(
            insert(RunRow).values(
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

    assert _revision(url) == head_revision() != "0001"
    store = open_store(url)
    assert [run.run_id for run in store.runs()] == ["1", "2"]
    old_trade, gate = store.trades(1)[0]
    assert (old_trade.entry_price, old_trade.legs[0].price, gate) == (54000.5, 55000.0, None)
    assert old_trade.pnl_usdt == pytest.approx((55000.0 - 54000.5) * 0.01 - 0.27 - 0.11)
    assert store.candles(1) == [] and len(store.candles(2)) > 0


def test_reading_an_old_store_upgrades_it_too(db_url):
    url = db_url
    if url.startswith("sqlite"):
        _sqlite_folder(url).mkdir(parents=True)
    engine = create_engine(url)
    upgrade(engine, url, "0001")
    with engine.begin() as connection:
        connection.execute(
            insert(RunRow).values(
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
    store.close()
    assert _revision(url) == head_revision()


def _sqlite_folder(url: str):
    from pathlib import Path

    return Path(url.removeprefix("sqlite:///")).parent
