"""Store fixtures: a SQLite store holding the hand-made sample run (see sample_run.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def load_sample_run_module():
    """tests/ is not a package (importlib mode): load the shared builder by path."""
    name = "cryptobot_tests_sample_run"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "sample_run.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def sample_run():
    return load_sample_run_module()


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'cryptobot.sqlite'}"


@pytest.fixture
def stored_run(db_url, sample_run):
    """(url, what was sent) after one sample run was recorded into a fresh store."""
    from cryptobot.store import SqlRecorder

    with SqlRecorder(db_url) as recorder:
        sent = sample_run.record_sample_run(recorder)
    return db_url, sent
