"""The README's example strategy (strategies/capitulation_wick.py), written against the strategy
API alone, runs through the real commands: a backtest and a paper replay of the bundled real
crash window agree trade for trade; its skip of quiet candles is causal; its parameters are
checked. (The live run against the fake exchange is tests/live/test_example_strategy_live.py.)
"""

from __future__ import annotations

import ast
import re

import pytest

from cryptobot.store import open_store
from tests.conftest import DATA_DIR, REPO_ROOT

CRASH = str(DATA_DIR / "btc_2024-08_crash")
STRATEGY_FILE = REPO_ROOT / "strategies" / "capitulation_wick.py"
PATH = "strategies.capitulation_wick:CapitulationWick"


def _config(tmp_path, base: str = "replay.toml", extra: str = "") -> str:
    path = tmp_path / "wick.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / base}"\n'
                    f'[strategy]\npath = "{PATH}"\n{extra}'
                    f'[logging]\ndir = "{tmp_path / "logs"}"\n'
                    f'[risk]\nkill_switch_file = "{tmp_path / "KILL"}"\n')
    return str(path)


def _trades(db: str) -> list:
    store = open_store(db)
    return [trade for trade, _ in store.trades(store.resolve_run(None))]


def test_the_readme_shows_the_example_strategy_file_whole():
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert STRATEGY_FILE.read_text() in blocks


def test_the_example_imports_only_the_strategy_api():
    tree = ast.parse(STRATEGY_FILE.read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    assert modules <= {"__future__", "numpy", "cryptobot.strategy"}


@pytest.mark.slow
def test_backtest_and_paper_replay_trade_the_example_alike(run_cli, tmp_path):
    config = _config(tmp_path)
    window = ("--from", "2024-08-03", "--to", "2024-08-06")
    backtest_db = f"sqlite:///{tmp_path / 'b.sqlite'}"
    code, out, err = run_cli("backtest", "--config", config, "--data", CRASH, *window,
                             "--db", backtest_db)
    assert code == 0, err
    paper_db = f"sqlite:///{tmp_path / 'p.sqlite'}"
    code, out, err = run_cli("paper", "--config", config, "--replay", CRASH, *window,
                             "--no-heartbeat", "--db", paper_db)
    assert code == 0, err
    backtest, paper = _trades(backtest_db), _trades(paper_db)
    assert len(backtest) >= 3, "the comparison is about something"
    assert paper == backtest


def test_an_unknown_parameter_names_the_strategy_and_the_key(run_cli, tmp_path):
    config = _config(tmp_path, "default.toml", "[strategy.params]\nwick_atrr = 2.0\n")
    code, _, err = run_cli("backtest", "--config", config, "--data", CRASH)
    assert code == 2
    assert "strategy.params.wick_atrr: unknown parameter of strategy CapitulationWick" in err
    assert "wick.toml" in err


def test_a_parameter_out_of_bounds_is_refused(run_cli, tmp_path):
    config = _config(tmp_path, "default.toml", "[strategy.params]\nvolume_window = 1\n")
    code, _, err = run_cli("backtest", "--config", config, "--data", CRASH)
    assert code == 2 and "strategy.params.volume_window" in err and "CapitulationWick" in err
