"""The live state's order-path statements (brokers/live/statements.py): SQLite's held driver
connection stores and reads the very values SQLAlchemy Core does, a write is one transaction
rolled back whole on an error (raised as SQLAlchemy's), and a read sees another connection's
commit at once (nothing is cached)."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cryptobot.brokers.live.state import FILLS, ORDERS, POSITIONS, FillAmount, LiveState
from cryptobot.brokers.live.statements import CoreStatements, SqliteStatements
from cryptobot.store.tables import LiveFillRow, LiveOrderRow
from tests.store.backends import BACKENDS, backend_url


def order_values(client_id: str, qty: float, price: float | None, reduce_only: bool) -> dict:
    return {"client_id": client_id, "signal_id": client_id.rsplit("-", 1)[0],
            "symbol": "BTC/USDT:USDT", "purpose": "stop", "side": "sell",
            "order_type": "stop_market", "qty_base": qty, "price": price,
            "reduce_only": reduce_only, "status": "pending", "exchange_order_id": None,
            "created_ms": 1_000, "updated_ms": 1_000, "detail": ""}


VALUES = [(0.1, 61000.5, True), (1e-08, None, False), (123456.789012345, 2.5e-7, True),
          (3.0, float("inf"), False)]  # inf: stored as absent, as Core stores it


@pytest.fixture
def both(tmp_path):
    state = LiveState(f"sqlite:///{tmp_path / 'live.sqlite'}")
    tables = (ORDERS, FILLS, POSITIONS)
    yield state, SqliteStatements(state._engine, tables), CoreStatements(state._engine, tables)
    state.close()


def test_the_driver_path_stores_and_reads_what_core_does(both, tmp_path):
    state, fast, core = both
    for index, (qty, price, reduce_only) in enumerate(VALUES):
        fast.write(upserts=[(ORDERS, order_values(f"f{index}-stop", qty, price, reduce_only))])
        core.write(upserts=[(ORDERS, order_values(f"c{index}-stop", qty, price, reduce_only))])
    fast.write(updates=[(ORDERS, "f1-stop", {"status": "open", "exchange_order_id": "7",
                                             "price": 0.30000000000000004})])
    core.write(updates=[(ORDERS, "c1-stop", {"status": "open", "exchange_order_id": "7",
                                             "price": 0.30000000000000004})])
    with closing(sqlite3.connect(tmp_path / "live.sqlite")) as raw:
        stored = {row[0]: row[1:] for row in raw.execute(
            "SELECT client_id, qty_base, price, reduce_only, status, exchange_order_id "
            "FROM live_orders")}
    with Session(state._engine) as session:
        orm = {row.client_id: row for row in session.scalars(select(LiveOrderRow))}
    for index in range(len(VALUES)):
        assert stored[f"f{index}-stop"] == stored[f"c{index}-stop"]  # the same text, 0/1
        rows = [reader.rows(ORDERS, "client_id = ?", (f"{who}{index}-stop",))[0]
                for reader in (fast, core) for who in "fc"]
        assert all(row == {**rows[0], "client_id": row["client_id"],
                           "signal_id": row["signal_id"]} for row in rows)
        assert type(rows[0]["qty_base"]) is Decimal and type(rows[0]["reduce_only"]) is bool
        assert rows[0]["qty_base"] == orm[f"c{index}-stop"].qty_base
        assert rows[0]["price"] == orm[f"c{index}-stop"].price
    assert fast.rows(ORDERS, "client_id = ?", ("f3-stop",))[0]["price"] is None  # inf
    assert [row["client_id"] for row in fast.rows(ORDERS, "status = ?", ("open",),
                                                  order_by="client_id")] == ["c1-stop",
                                                                            "f1-stop"]


def test_a_failed_write_is_rolled_back_whole_and_raised_as_sqlalchemy_does(both):
    state, fast, _ = both
    broken = {**order_values("x1-stop", 1.0, 2.0, True), "symbol": None}  # NOT NULL
    with pytest.raises(IntegrityError):
        fast.write(upserts=[(ORDERS, order_values("x0-stop", 1.0, 2.0, True)),
                            (ORDERS, broken)])
    assert state.order("x0-stop") is None  # the first statement went with the second
    fast.write(upserts=[(ORDERS, order_values("x2-stop", 1.0, 2.0, True))])  # usable again
    assert state.order("x2-stop").status == "pending"


def test_a_read_sees_another_connections_commit_at_once(tmp_path):
    """`cryptobot kill` writes the same tables while a bot runs: nothing may be cached."""
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot, other = LiveState(url), LiveState(url)
    assert bot.order("s1-close0") is None and bot.positions() == []
    other.open_position("s1", "BTC/USDT:USDT", 0.5, 60000.0, 59000.0, 5)
    other.record_intent(LiveOrderRow(**order_values("s1-close0", 0.5, None, True)).intent(),
                        "s1", 6)
    assert bot.order("s1-close0").status == "pending"
    assert [(p.signal_id, p.qty_base) for p in bot.positions()] == [("s1", 0.5)]
    other.update_position("s1", close_reason="cryptobot kill")
    assert bot.positions() == [] and bot.position("s1").qty_base == 0.5
    bot.close()
    other.close()


def test_a_failed_checkpoint_is_logged_and_tried_again_later(tmp_path, monkeypatch, caplog):
    """As SQLite's own checkpoint inside a commit: its failure stops nothing."""
    from sqlalchemy.exc import OperationalError

    from cryptobot.brokers.live import state as state_module

    state = LiveState(f"sqlite:///{tmp_path / 'live.sqlite'}")
    monkeypatch.setattr(state_module, "CHECKPOINT_AFTER_WRITES", 1)
    tried: list[int] = []

    def failing() -> None:
        tried.append(state._statements.writes)
        state._statements.writes = 0
        raise OperationalError("PRAGMA wal_checkpoint(PASSIVE)", None, Exception("disk I/O"))

    monkeypatch.setattr(state._statements, "checkpoint", failing)
    state.checkpoint_if_due()
    assert tried == []  # nothing written yet
    state.open_position("s1", "BTC/USDT:USDT", 0.5, 60000.0, 59000.0, 5)
    state.checkpoint_if_due()
    assert tried == [1] and "checkpoint of the live state's WAL failed" in caplog.text
    state.checkpoint_if_due()
    assert tried == [1]  # again after the next writes
    state.close()


@pytest.fixture(params=BACKENDS)
def state_url(request, tmp_path):
    yield from backend_url(request, tmp_path)


def test_the_state_reads_back_what_it_wrote_on_each_database(state_url):
    """SQLite's held connection, or Core's statements (PostgreSQL: `?` bound by position,
    `is_open` a boolean)."""
    state = LiveState(state_url)
    try:
        state.open_position("s1", "BTC/USDT:USDT", 0.5, 60000.0, 59000.0, 5)
        state.record_intent(LiveOrderRow(**order_values("s1-stop", 0.5, 59000.1, True)).intent(),
                            "s1", 6)
        state.record_intent(LiveOrderRow(**order_values("s1-stop", 0.5, 59000.2, True)).intent(),
                            "s1", 7)  # the same id again: overwritten, one row
        state.update_order("s1-stop", 8, status="open", exchange_order_id="42")
        row = state.order("s1-stop")
        assert (row.status, row.exchange_order_id, row.price, row.reduce_only) == \
            ("open", "42", Decimal("59000.2"), True)
        assert [o.client_id for o in state.orders()] == ["s1-stop"]
        assert [p.signal_id for p in state.positions()] == ["s1"]
        state.update_position("s1", close_reason="stopped")
        assert state.positions() == [] and state.position("s1").qty_base == 0.5
        assert [p.signal_id for p in state.positions(open_only=False)] == ["s1"]
        assert state.order_by_exchange_id("BTC/USDT:USDT", "42").client_id == "s1-stop"
        assert state.order_by_exchange_id("ETH/USDT:USDT", "42") is None  # per symbol
        for trade_id, signal_id, ts_ms in (("t3", "s1", 30), ("t1", "s1", 10), ("t2", "s2", 20)):
            state.record_fill(LiveFillRow(
                trade_id=trade_id, client_id=f"{signal_id}-entry", signal_id=signal_id,
                symbol="BTC/USDT:USDT", ts_ms=ts_ms, side="buy", price=Decimal("60000.1"),
                qty_base=Decimal("0.25"), fee_usdt=Decimal("0.01"), is_maker=False,
                purpose="entry"))
        assert state.has_fill("t2") and not state.has_fill("t9")
        assert [f.trade_id for f in state.fills()] == ["t1", "t2", "t3"]  # in time order
        assert [f.trade_id for f in state.fills("s1")] == ["t1", "t3"]
        assert state.fill_amounts(since_ms=20) == [  # in time order, only these columns
            FillAmount("s2", "entry", 60000.1, 0.25, 0.01),
            FillAmount("s1", "entry", 60000.1, 0.25, 0.01)]
        assert state.fill_amounts(since_ms=31) == []
        assert set(state.positions_of({"s1", "s9"})) == {"s1"}  # closed too; none for s9
        assert state.positions_of({"s1"})["s1"] == state.position("s1")
        assert state.positions_of(set()) == {}
        state.open_position("s3", "ETH/USDT:USDT", 1.0, 3000.0, 2900.0, 9)
        assert state.open_positions_and("s1") == (state.positions(), state.position("s1"))
        assert state.open_positions_and("s3") == ([state.position("s3")], state.position("s3"))
        assert state.open_positions_and("s9") == ([state.position("s3")], None)
        assert state.fills("s1")[0].price == Decimal("60000.1")
    finally:
        state.close()


def test_sql_names_a_column_by_its_name_quoted_and_a_row_by_its_key(tmp_path):
    """A column whose Python key is not its SQL name, and names SQL reserves."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine

    table = Table("order", MetaData(), Column("group", String, primary_key=True),
                  Column("select", Integer, key="size"))
    engine = create_engine(f"sqlite:///{tmp_path / 'named.sqlite'}")
    table.metadata.create_all(engine)
    statements = SqliteStatements(engine, (table,))
    statements.write(upserts=[(table, {"group": "a", "size": 1})])
    statements.write(upserts=[(table, {"group": "a", "size": 2})])
    assert statements.write(updates=[(table, "a", {"size": 3})]) == 1
    assert statements.rows(table, '"group" = ?', ("a",)) == [{"group": "a", "size": 3}]
    statements.close()
    engine.dispose()


def test_the_held_connection_refuses_another_thread(both):
    """It has no lock: two threads' statements would mix inside one write's transaction."""
    _, fast, _ = both
    failed: list[BaseException] = []

    def read() -> None:
        try:
            fast.rows(ORDERS, "client_id = ?", ("x",))
        except RuntimeError as exc:
            failed.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    assert len(failed) == 1 and "other than the one that opened it" in str(failed[0])
    assert fast.rows(ORDERS, "client_id = ?", ("x",)) == []  # its own thread still reads


def test_an_sqlite_without_upsert_gets_core(tmp_path, monkeypatch):
    """INSERT ... ON CONFLICT came in SQLite 3.24: an older library keeps Core's statements."""
    from cryptobot.brokers.live import statements as statements_module

    monkeypatch.setattr(statements_module.sqlite3, "sqlite_version_info", (3, 23, 1))
    state = LiveState(f"sqlite:///{tmp_path / 'live.sqlite'}")
    assert isinstance(state._statements, CoreStatements)
    state.open_position("s1", "BTC/USDT:USDT", 0.5, 60000.0, 59000.0, 5)
    assert [p.signal_id for p in state.positions()] == ["s1"]
    state.close()


def test_todays_fills_are_found_by_the_time_index_not_a_scan(tmp_path):
    """The rails read today's fills before every entry: by `ix_live_fills_ts_ms` (migration
    0009), not by scanning every fill the bot ever made."""
    path = tmp_path / "live.sqlite"
    LiveState(f"sqlite:///{path}").close()
    with closing(sqlite3.connect(path)) as raw:
        plan = raw.execute("EXPLAIN QUERY PLAN SELECT signal_id FROM live_fills "
                           "WHERE ts_ms >= ? ORDER BY ts_ms, trade_id", (0,)).fetchall()
    assert "USING INDEX ix_live_fills_ts_ms" in " ".join(str(step[-1]) for step in plan)


def test_a_signals_fills_are_found_by_the_signal_index_not_a_scan(tmp_path):
    """A signal's fills are read as each fill is recorded and once an order's fills are read:
    by `ix_live_fills_signal_id` (migration 0010), not by scanning every fill ever made."""
    path = tmp_path / "live.sqlite"
    LiveState(f"sqlite:///{path}").close()
    with closing(sqlite3.connect(path)) as raw:
        plan = raw.execute("EXPLAIN QUERY PLAN SELECT trade_id FROM live_fills "
                           "WHERE signal_id = ? ORDER BY ts_ms, trade_id", ("s1",)).fetchall()
    assert "USING INDEX ix_live_fills_signal_id" in " ".join(str(step[-1]) for step in plan)
