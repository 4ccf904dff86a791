"""Sweeps in the store, on SQLite and PostgreSQL: each result committed as it arrives, read
back in the grid's order whatever order they arrived in; a sweep names its status."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from cryptobot.clock import SimClock
from cryptobot.errors import StoreError
from cryptobot.store.sweeps import SweepInfo, SweepResult, SweepWriter, list_sweeps, read_sweep
from tests.store.backends import BACKENDS, backend_url

GRID = {"grid": {"exits.time_stop_hours": [12.0, 24.0], "costs.funding": [True, False]},
        "samples": None, "seed": 0}


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    yield from backend_url(request, tmp_path)


def _info() -> SweepInfo:
    return SweepInfo(GRID, 0, "local, 2 worker processes", "config/crosscheck.toml",
                     "data/x (a.csv)", ("BTC/USDT:USDT",), 1_722_470_400_000,
                     1_722_556_800_000)


def _result(combination: int, error: str | None = None) -> SweepResult:
    params = {"exits.time_stop_hours": [12.0, 24.0][combination // 2],
              "costs.funding": [True, False][combination % 2]}
    summary = None if error else {"trades": combination, "total_pnl_usdt": 1.5 * combination,
                                  "profit_factor": None, "rejections": {"x": 2}}
    return SweepResult(combination, params, summary, error, 0.25)


def test_results_are_stored_as_they_arrive_and_read_in_the_grids_order(db_url):
    clock = SimClock(1_800_000_000_000)
    writer = SweepWriter(db_url, _info(), clock)
    for combination in (2, 0, 3):  # the order the workers finished in
        writer.add(_result(combination))
    writer.add(_result(1, error="strategy X.on_candle failed: RuntimeError: boom"))
    (listing,) = list_sweeps(db_url)
    assert listing.info.status == "running" and listing.combinations == 4  # already committed
    clock.advance_to(1_800_000_060_000)
    writer.finish("finished")
    writer.close()

    info, results = read_sweep(db_url, writer.sweep_id)
    assert (info.status, info.created_ms, info.finished_ms) == (
        "finished", 1_800_000_000_000, 1_800_000_060_000)
    assert info.grid == GRID and info.symbols == ("BTC/USDT:USDT",)
    assert [r.combination for r in results] == [0, 1, 2, 3]
    assert results[1].summary is None and results[1].error.endswith("boom")
    assert results[3] == _result(3)
    (listing,) = list_sweeps(db_url)
    assert (listing.combinations, listing.errors) == (4, 1)


def test_a_sweep_not_stored_is_one_clear_error(db_url):
    SweepWriter(db_url, _info(), SimClock(0)).close()
    with pytest.raises(StoreError, match="no sweep 7"):
        read_sweep(db_url, 7)


def test_deleting_a_sweep_deletes_its_rows(db_url):
    writer = SweepWriter(db_url, _info(), SimClock(0))
    writer.add(_result(0))
    writer.close()
    engine = create_engine(db_url)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("PRAGMA foreign_keys=ON"))
        connection.execute(text("DELETE FROM sweeps"))
        left = connection.execute(text("SELECT count(*) FROM sweep_results")).scalar_one()
    engine.dispose()
    assert left == 0
