"""Store fixtures: a SQLite store holding the hand-made sample run (see sample_run.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'cryptobot.sqlite'}"


@pytest.fixture
def stored_run(db_url, sample_run):
    """(url, what was sent) after one sample run was recorded into a fresh store."""
    from cryptobot.clock import LiveClock
    from cryptobot.store import SqlRecorder

    with SqlRecorder(db_url, clock=LiveClock()) as recorder:
        sent = sample_run.record_sample_run(recorder)
    return db_url, sent
