"""Paths to the real files the data tests read."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
DUMPS_DIR = REPO_ROOT / "tests" / "fixtures" / "dumps"


@pytest.fixture
def dumps_dir() -> Path:
    return DUMPS_DIR


@pytest.fixture
def data_dir() -> Path:
    return DATA_DIR
