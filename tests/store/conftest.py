"""Store fixtures: every store test runs on SQLite and on PostgreSQL (see backends.py); the
PostgreSQL case skips, saying why, only when no server is reachable."""

from __future__ import annotations

import pytest

from tests.store.backends import BACKENDS, backend_url, record_sample


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """The URL of a store that does not exist yet, on each backend."""
    yield from backend_url(request, tmp_path)


@pytest.fixture
def stored_run(db_url, sample_run):
    """(url, what was sent) after one sample run was recorded into a fresh store."""
    return db_url, record_sample(db_url, sample_run)


@pytest.fixture
def stored_sqlite_run(tmp_path, sample_run):
    """The same on SQLite only: for rows PostgreSQL's column types would refuse to hold."""
    url = f"sqlite:///{tmp_path / 'store' / 'cryptobot.sqlite'}"
    return url, record_sample(url, sample_run)
