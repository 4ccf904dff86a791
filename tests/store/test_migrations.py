"""The schema is Alembic-managed: one head; old stores are upgraded in place and keep their
runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from cryptobot.clock import LiveClock
from cryptobot.store import SqlRecorder, open_store
from cryptobot.store.database import MIGRATIONS_DIR, head_revision, upgrade
from cryptobot.store.tables import Base

M15 = 15 * 60_000


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


def _insert(connection, table: str, **values) -> None:
    """A row as an older revision's table holds it (today's models have other columns)."""
    columns = [sa.column(name, sa.JSON() if isinstance(value, (dict, list)) else None)
               for name, value in values.items()]
    connection.execute(sa.table(table, *columns).insert().values(**values))


def _old_run(connection, symbol: str, **changes) -> None:
    values = dict(mode="paper", exchange="binanceusdm", symbol=symbol, start_ms=None,
                  end_ms=None, data_source="stream", oi_synthetic=False, settings_json={},
                  created_ms=1722816000000, finished_ms=None, summary_json=None)
    _insert(connection, "runs", **{**values, **changes})


def _old_trade(connection, run_id: int, symbol: str) -> None:
    _insert(connection, "trades", run_id=run_id, seq=1, signal_id="s1", symbol=symbol,
            side="buy", entry_ms=1722816000000, exit_ms=1722819600000, entry_price=54000.5,
            qty_base=0.01, initial_stop=53000.0, entry_fee_usdt=0.27, funding_usdt=0.0,
            pnl_usdt=None, r_multiple=None, exit_reason="tp2", gate_seq=None)
    _insert(connection, "trade_legs", run_id=run_id, trade_seq=1, leg_index=0,
            ts_ms=1722819600000, price=55000.0, qty_base=0.01, fee_usdt=0.11, reason="tp2")


def _at_revision(url: str, revision: str):
    if url.startswith("sqlite"):
        _sqlite_folder(url).mkdir(parents=True)
    engine = create_engine(url)
    upgrade(engine, url, revision)
    assert _revision(url) == revision
    return engine


def test_store_at_first_revision_is_upgraded_and_keeps_its_run(db_url, sample_run):
    url = db_url
    engine = _at_revision(url, "0001")
    assert "signal_candles" not in inspect(engine).get_table_names()  # 0002 adds it
    with engine.begin() as connection:  # a run as the first version stored it (as run 1)
        _old_run(connection, "BTC/USDT:USDT")
        _old_trade(connection, 1, "BTC/USDT:USDT")
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
    engine = _at_revision(url, "0001")
    with engine.begin() as connection:
        _old_run(connection, "ETH/USDT:USDT", mode="backtest", exchange="bybit", start_ms=1,
                 end_ms=2, data_source="x", created_ms=3)
    engine.dispose()
    store = open_store(url)
    assert store.open_interest(1) == [] and store.runs()[0].symbols == ("ETH/USDT:USDT",)
    store.close()
    assert _revision(url) == head_revision()


def test_a_0004_store_upgrades_to_one_symbol_runs_with_tagged_market_data(db_url, sample_run):
    """Runs stored before 0005 held one symbol: they read as one-symbol lists, and their
    candles and OI samples as that symbol's, read back by symbol through the new index."""
    url = db_url
    engine = _at_revision(url, "0004")
    eth, btc = "ETH/USDT:USDT", "BTC/USDT:USDT"
    with engine.begin() as connection:
        _old_run(connection, eth)
        _old_run(connection, btc, mode="backtest", start_ms=1722816000000, end_ms=1722902400000)
        _old_trade(connection, 2, btc)
        for run_id, price in ((1, 2500.0), (2, 54000.0)):
            for seq in (1, 2, 3):
                _insert(connection, "signal_candles", run_id=run_id, seq=seq,
                        ts_open_ms=1722816000000 + seq * M15, interval_ms=M15, open=price,
                        high=price + seq, low=price - seq, close=price + 0.5, volume=10.0 * seq)
        _insert(connection, "oi_samples", run_id=1, seq=1, ts_ms=1722816000000,
                oi_contracts=1_500_000.0, oi_value_usdt=None)
    engine.dispose()

    with SqlRecorder(url, clock=LiveClock()) as recorder:  # opening upgrades; records run 3
        sample_run.record_sample_run(recorder)

    assert _revision(url) == head_revision()
    store = open_store(url)
    assert [run.symbols for run in store.runs()] == [(eth,), (btc,), (btc,)]
    assert store.run_info(1).symbols == (eth,) and store.run_symbols(2) == (btc,)
    eth_candles = store.candles(1)
    assert [c.symbol for c in eth_candles] == [eth] * 3
    assert [c.high for c in eth_candles] == [2501.0, 2502.0, 2503.0]
    assert store.candles(1, symbols=[eth]) == eth_candles
    assert store.candles(1, symbols=[btc]) == []
    assert [c.symbol for c in store.candles(2, symbols=[btc])] == [btc] * 3
    assert [(s.symbol, s.oi_contracts) for s in store.open_interest(1)] == [(eth, 1_500_000.0)]
    assert store.open_interest(2) == []
    assert [t.symbol for t, _ in store.trades(2, symbols=[btc])] == [btc]
    assert store.trades(2, symbols=[eth]) == []
    store.close()

    engine = create_engine(url)
    inspector = inspect(engine)
    for table in ("signal_candle_chunks", "oi_samples"):  # 0008 packs signal candles
        indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(table)}
        assert indexes[f"ix_{table}_run_symbol"] == ["run_id", "symbol", "seq"]
        assert not _column(inspector, table, "symbol")["nullable"]
    assert not _column(inspector, "runs", "symbols_json")["nullable"]
    assert "symbol" not in {column["name"] for column in inspector.get_columns("runs")}
    engine.dispose()


def test_0005_downgrades_one_symbol_runs_and_refuses_several(tmp_path, sample_run):
    from tests.store.two_symbol_run import record_scripted_two_symbol_run

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        sample_run.record_sample_run(recorder)
    engine = create_engine(url)
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0004")
    with engine.connect() as connection:
        symbols = connection.execute(sa.text("SELECT symbol FROM runs")).scalars().all()
    assert symbols == ["BTC/USDT:USDT"] and _revision(url) == "0004"
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    engine.dispose()

    with SqlRecorder(url, clock=LiveClock()) as recorder:
        record_scripted_two_symbol_run(recorder)
    engine = create_engine(url)
    with pytest.raises(RuntimeError, match="runs 2 hold several symbols"), \
            engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0004")
    engine.dispose()
    assert _revision(url) == head_revision()  # the refused downgrade changed nothing


def _alembic_config(connection) -> Config:
    """Alembic on `connection`, as the store's own upgrade configures it (env.py reads it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _column(inspector, table: str, name: str) -> dict:
    return next(column for column in inspector.get_columns(table) if column["name"] == name)


def _sqlite_folder(url: str):
    from pathlib import Path

    return Path(url.removeprefix("sqlite:///")).parent
