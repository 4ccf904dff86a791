"""Several processes on one new store and one log folder: the fast version of
benchmarks/robust_concurrency.py (3 processes here, 8 there), on SQLite and PostgreSQL."""

from __future__ import annotations

from benchmarks.robust_concurrency import concurrent_backtests, concurrent_logging


def test_three_backtests_started_at_once_on_a_new_database_all_store_their_run(db_url):
    assert concurrent_backtests(lambda: db_url, n=3) == 3


def test_three_processes_logging_at_once_into_one_folder_lose_no_line():
    assert concurrent_logging(n=3, lines_each=1000) == 0
