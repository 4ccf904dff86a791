"""A sample of benchmarks/robust_bad_inputs.py (which tries 60 and more): each bad input, run as
a `cryptobot` subprocess, ends in one `error:` line and exit code 2 (a wrong stream message: a
counted warning, and the replay's trades as without it), with no traceback and the store's rows
as they were."""

from __future__ import annotations

import importlib.util
import shutil
import stat
import sys

import pytest

from tests.conftest import REPO_ROOT

SAMPLE = (
    "config: string for a boolean", "config: banana timeframe", "config: base longer than signal",
    "config: inf equity", "config: binary file", "config: a folder",
    "data, backtest: zero close", "data, replay: zero close", "cli: --json true",
    "db: corrupt SQLite file", "stream: another-market (insert)",
    "stream: future-dated-and-stamped (replace)",
)


def _benchmark():
    path = REPO_ROOT / "benchmarks" / "robust_bad_inputs.py"
    spec = importlib.util.spec_from_file_location("robust_bad_inputs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


BENCH = _benchmark()
CASES = {case.name: case for case in BENCH.all_cases()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    lab = BENCH.Lab(root)
    clean = BENCH.prepare(lab, clean_replay=False)
    yield lab, clean
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(stat.S_IRWXU)
    shutil.rmtree(root, ignore_errors=True)


def test_the_benchmark_tries_sixty_and_more_of_every_kind():
    families = [case.family for case in CASES.values()]
    assert len(families) >= 60
    assert {family: families.count(family) >= 8 for family in set(families)} == \
        dict.fromkeys(("config", "data", "cli", "db", "stream"), True)
    assert set(SAMPLE) <= CASES.keys()


@pytest.mark.parametrize("name", SAMPLE)
def test_a_bad_input_gets_one_clear_answer(lab, name):
    lab, clean = lab
    case = CASES[name]
    before = BENCH.store_hash(lab.store)
    outcome = BENCH.run_case(case, lab)
    assert not outcome.traceback, outcome.err
    assert outcome.clear(), (outcome.code, outcome.err)
    assert BENCH.store_hash(lab.store) == before
    if case.family == "stream":
        assert outcome.result() == clean(lab)
