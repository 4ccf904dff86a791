"""The live broker's state lives in the store (migration 0003), and an older bot's own
live_state.sqlite comes in whole, once: on SQLite and PostgreSQL.

The old file is tests/fixtures/live_state_v1.sqlite, written by the old `LiveState` itself
(tests/fixtures/make_live_state_v1.py): a closed trade (entry filled in two trades, stop1, tp1,
tp2, the stop moved to break-even) and an open position with its stop and take-profits working.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, create_engine, inspect, select

from cryptobot.brokers.live.restore import LiveJournal
from cryptobot.brokers.live.state import LiveFillRow, LiveState
from cryptobot.config import load_settings
from cryptobot.errors import ConfigError, StoreError
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from cryptobot.runners.restore import restore_open_position
from cryptobot.store.database import head_revision, upgrade
from cryptobot.store.live_import import import_legacy_live_state, import_live_state
from cryptobot.store.tables import LiveOrderRow, LivePositionRow
from cryptobot.store.types import ExactDecimal

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "live_state_v1.sqlite"
LIVE_TABLES = (LiveOrderRow, LiveFillRow, LivePositionRow)
OPEN_SIGNAL = "BTCUSDT-20240806T1400"


def _old_file(folder: Path, name: str = "live_state.sqlite") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(FIXTURE, folder / name))


def _typed(table, row) -> dict:
    """A row with the store's types: exact decimals, booleans (the old file holds text, 0/1)."""
    typed = {}
    for column in table.__table__.columns:
        if column.name not in row.keys():  # noqa: SIM118 (sqlite3.Row: `in` looks at values)
            # added since the old file (live_positions.side): the store's default for it
            typed[column.name] = column.default.arg
            continue
        value = row[column.name]
        if value is not None and isinstance(column.type, ExactDecimal):
            value = Decimal(value)
        elif value is not None and isinstance(column.type, Boolean):
            value = bool(value)
        typed[column.name] = value
    return typed


def _source_rows(path: Path) -> dict[str, list[dict]]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return {t.__tablename__: sorted(
            (_typed(t, row) for row in connection.execute(f"SELECT * FROM {t.__tablename__}")),
            key=lambda r, t=t: r[t.__table__.primary_key.columns[0].name]) for t in LIVE_TABLES}


def _store_rows(url: str) -> dict[str, list[dict]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {t.__tablename__: sorted(
                (_typed(t, row) for row in connection.execute(select(t.__table__)).mappings()),
                key=lambda r, t=t: r[t.__table__.primary_key.columns[0].name])
                for t in LIVE_TABLES}
    finally:
        engine.dispose()


def test_a_fresh_store_has_the_live_tables_at_head(db_url):
    LiveState(db_url).close()
    engine = create_engine(db_url)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    assert {"live_orders", "live_fills", "live_positions", "runs", "orders"} <= tables
    assert revision == head_revision()


def test_live_state_writes_and_reads_back_across_a_restart(db_url):
    state = LiveState(db_url)
    stop = OrderIntent("S1-stop1", "BTC/USDT:USDT", Side.SELL, OrderType.STOP_MARKET, 0.004,
                       OrderPurpose.STOP, price=53012.4, reduce_only=True)
    state.record_intent(stop, "S1", 1000)
    state.update_order("S1-stop1", 1100, status="open", exchange_order_id="77")
    state.record_fill(LiveFillRow(trade_id="t1", client_id="S1-entry", signal_id="S1",
                                  symbol="BTC/USDT:USDT", ts_ms=900, side="buy", price=54010.75,
                                  qty_base=0.004, fee_usdt=0.0864172, is_maker=False,
                                  purpose="entry"))
    state.open_position("S1", "BTC/USDT:USDT", 0.004, 54010.75, 53012.4, 900)
    state.update_position("S1", stop_price=54010.8)
    state.close()

    again = LiveState(db_url)  # a restarted bot
    assert again.order("S1-stop1").intent() == stop
    assert [r.client_id for r in again.orders(("open",), signal_id="S1")] == ["S1-stop1"]
    assert again.order_by_exchange_id("BTC/USDT:USDT", "77").status == "open"
    assert again.order_by_exchange_id("ETH/USDT:USDT", "77") is None  # ids are per symbol
    assert again.has_fill("t1") and not again.has_fill("t2")
    (fill,) = again.fills("S1")
    assert (fill.price, fill.qty_base, fill.fee_usdt) == (
        Decimal("54010.75"), Decimal("0.004"), Decimal("0.0864172"))
    (held,) = again.positions()
    assert (held.qty_base, held.entry_price, held.stop_price) == (0.004, 54010.75, 54010.8)
    again.update_position("S1", qty_base=0.0)
    assert again.positions() == [] and again.position("S1").qty_base == 0.0
    again.close()


def test_the_old_file_is_imported_row_for_row_exactly(db_url, tmp_path):
    old = _old_file(tmp_path / "logs")
    source = _source_rows(old)
    counts = import_live_state(db_url, old)
    assert (counts.orders, counts.fills, counts.positions) == (9, 5, 2)
    assert _store_rows(db_url) == source
    assert not old.exists() and counts.renamed_to == old.with_name("live_state.sqlite.imported")
    assert counts.renamed_to.is_file()


def test_importing_again_imports_nothing_and_keeps_the_store_rows(db_url, tmp_path):
    import_live_state(db_url, _old_file(tmp_path))
    state = LiveState(db_url)  # the bot moved on since: its rows win over the old file's
    state.update_order(f"{OPEN_SIGNAL}-tp1", 1722960000000, status="canceled")
    state.close()
    before = _store_rows(db_url)
    counts = import_live_state(db_url, _old_file(tmp_path))
    assert counts.total == 0
    assert _store_rows(db_url) == before
    assert counts.renamed_to.name == "live_state.sqlite.imported.2"  # the first one is kept


@pytest.mark.parametrize("content", ["text", "other sqlite", "store"])
def test_a_file_that_is_not_an_old_live_state_is_refused_and_the_store_untouched(
        db_url, tmp_path, content):
    state = LiveState(db_url)
    state.open_position("S9", "BTC/USDT:USDT", 0.01, 60000.0, 59000.0, 1)
    state.close()
    before = _store_rows(db_url)
    bad = tmp_path / "bad.sqlite"
    if content == "text":
        bad.write_text("order,fill\n1,2\n")
    elif content == "other sqlite":
        with sqlite3.connect(bad) as connection:
            connection.execute("CREATE TABLE candles (ts_open_ms INTEGER)")
    else:
        LiveState(f"sqlite:///{bad}").close()
    with pytest.raises(StoreError) as error:
        import_live_state(db_url, bad)
    message = str(error.value)
    assert message.startswith(f"{bad}: ") and "\n" not in message
    assert ("is a cryptobot store" if content == "store" else "not a live state file") in message
    assert bad.is_file()  # not renamed
    assert _store_rows(db_url) == before


def test_a_config_that_sets_live_state_url_is_refused_with_where_it_went(tmp_path):
    config = tmp_path / "live.toml"
    config.write_text('extends = "{}"\n[live]\nstate_url = "sqlite:///logs/live_state.sqlite"\n'
                      .format(Path(__file__).resolve().parents[2] / "config" /
                              "live.example.toml"))
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert message.startswith(f"{config}: live.state_url: ") and "\n" not in message
    assert "store.url" in message and "cryptobot db import-live-state" in message


def test_cli_imports_a_file_and_refuses_a_missing_one(run_cli, db_url, tmp_path):
    old = _old_file(tmp_path / "elsewhere", "state.sqlite")
    code, out, err = run_cli("db", "import-live-state", str(old), "--db", db_url)
    assert code == 0, err
    assert "9 orders, 5 fills, 2 positions" in out and "state.sqlite.imported" in out
    assert [p.signal_id for p in LiveState(db_url).positions()] == [OPEN_SIGNAL]

    code, out, err = run_cli("db", "import-live-state", str(old), "--db", db_url)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {old}: no such file")


def test_live_start_imports_the_old_default_file_once(db_url, tmp_path, caplog):
    log_dir = tmp_path / "logs"
    old = _old_file(log_dir)
    logger = logging.getLogger("cryptobot.store.live_import")
    logger.addHandler(caplog.handler)  # whatever an earlier test's logging set-up left behind
    try:
        with caplog.at_level("WARNING", logger=logger.name):
            counts = import_legacy_live_state(db_url, log_dir)
    finally:
        logger.removeHandler(caplog.handler)
    assert counts.total == 16 and not old.exists()
    (line,) = {r.getMessage() for r in caplog.records if "old live state" in r.getMessage()}
    assert "9 orders, 5 fills, 2 positions" in line
    assert import_legacy_live_state(db_url, log_dir) is None  # nothing left to import


def test_a_store_that_was_also_the_state_file_keeps_its_live_rows(tmp_path):
    """`live.state_url` = `store.url`: the old broker's `create_all` put its tables into the
    store; 0003 keeps them, and the start-up import leaves the store file alone."""
    path = tmp_path / "logs" / "live_state.sqlite"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    upgrade(engine, url, "0002")
    engine.dispose()
    with sqlite3.connect(path) as store, sqlite3.connect(FIXTURE) as old:
        for (ddl,) in old.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"):
            store.execute(ddl)
        for table in LIVE_TABLES:
            rows = old.execute(f"SELECT * FROM {table.__tablename__}").fetchall()
            marks = ",".join("?" * len(rows[0]))
            store.executemany(f"INSERT INTO {table.__tablename__} VALUES ({marks})", rows)
    assert import_legacy_live_state(url, path.parent) is None and path.is_file()
    state = LiveState(url)
    assert [p.signal_id for p in state.positions()] == [OPEN_SIGNAL]
    assert len(state.orders()) == 9
    state.close()


class _RestoringEngine:
    symbol = "BTC/USDT:USDT"

    def __init__(self) -> None:
        self.restored: list[tuple] = []

    def restore_position(self, position, **details) -> None:
        self.restored.append((position, details))

    def restore_entry(self, signal, stop_price, gate) -> None:
        raise AssertionError("the fixture has no pending entry")


def test_the_imported_open_position_is_restored_with_its_working_orders(db_url, tmp_path):
    import_live_state(db_url, _old_file(tmp_path))
    engine = _RestoringEngine()
    state = LiveState(db_url)
    assert restore_open_position(engine, LiveJournal(state)) == OPEN_SIGNAL
    state.close()
    ((position, details),) = engine.restored
    assert (position.signal_id, position.qty_base, position.entry_price, position.stop_price,
            position.opened_ms) == (OPEN_SIGNAL, 0.005, 56233.9, 55101.7, 1722952800140)
    assert details["entry_qty_base"] == 0.005 and details["entry_fee_usdt"] == 0.1124678
    assert details["legs"] == () and details["stop_count"] == 1
    assert details["initial_stop"] == 55101.7
