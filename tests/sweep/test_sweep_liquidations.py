"""A sweep loads recorded liquidations as `cryptobot backtest` does: with `[evidence]
required_beyond_oi = 1` on the crash window and a (SYNTHETIC) forceOrder folder, each row equals
the plain backtest of its settings. Without the records a row of `required_beyond_oi = 1` saw
the liquidation item as unknown and refused entries the backtest took."""

from __future__ import annotations

import json

from tests.conftest import REPO_ROOT
from tests.sweep.conftest import CRASH, write_config, write_grid

LIQUIDATIONS = REPO_ROOT / "tests" / "fixtures" / "liquidations_SYNTHETIC"
CROSSCHECK = REPO_ROOT / "config" / "crosscheck.toml"


def test_each_row_with_recorded_liquidations_equals_a_plain_backtest(tmp_path, run_cli):
    base = write_config(tmp_path, {"evidence.liquidations_dir": str(LIQUIDATIONS),
                                   "logging.dir": str(tmp_path / "logs")},
                        name="base.toml", extends=CROSSCHECK)
    grid = write_grid(tmp_path, {"evidence.required_beyond_oi": [0, 1]})
    code, out, err = run_cli("sweep", "--config", str(base), "--data", str(CRASH), "--grid",
                             str(grid), "--workers", "1", "--json",
                             "--db", f"sqlite:///{tmp_path / 'sweeps.sqlite'}")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [row["params"]["evidence.required_beyond_oi"] for row in rows] == [0, 1]
    for n, row in enumerate(rows):
        config = write_config(tmp_path, row["params"], name=f"c{n}.toml", extends=base)
        code, out, err = run_cli("backtest", "--data", str(CRASH), "--config", str(config),
                                 "--db", f"sqlite:///{tmp_path / 'plain.sqlite'}", "--json")
        assert code == 0, err
        plain = json.loads(out)["summary"]
        assert "liquidations (binance_forceOrder_BTCUSDT_SYNTHETIC.csv)" in plain["liquidations"]
        assert {k: plain[k] for k in row["summary"]} == row["summary"]
    assert rows[1]["summary"]["trades"] > 2  # the evidence lets entries through
