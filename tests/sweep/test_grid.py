"""Grid files: every key and every combination checked against the real Settings before
anything runs (one `error:` line, exit 2, no store written); draws repeat with their seed."""

from __future__ import annotations

import pytest

from cryptobot.config import load_settings
from cryptobot.errors import ConfigError
from cryptobot.sweep.grid import read_grid, settings_for_grid
from cryptobot.sweep.windows import parse_walk_forward, windows_over
from tests.sweep.conftest import CRASH, DEFAULT_CONFIG, write_grid

DAY_MS = 86_400_000


@pytest.mark.parametrize(("grid", "message"), [
    ({"exits.nope": [1.0]}, "grid.exits.nope: not a config path (exits has no 'nope')"),
    ({"nope.x": [1]}, "grid.nope.x: not a config path (the config has no 'nope')"),
    ({"exits": [1]}, "grid.exits: a whole section"),
    ({"exits.time_stop_hours.x": [1]}, "exits.time_stop_hours is a value, not a section"),
    ({"strategy.params.nope": [1]}, "grid.strategy.params.nope: not a parameter of strategy "
                                    "LiquidationRebound"),
    ({"market.symbols": [["ETH/USDT:USDT"]]}, "market decides the data or the store"),
    ({"feed.warmup_days": [10, 20]}, "feed.warmup_days decides the data or the store"),
    ({"exits.time_stop_hours": [12.0, -1.0]}, "exits.time_stop_hours: Input should be greater "
                                              "than 0 (combination exits.time_stop_hours=-1.0)"),
    ({"strategy.params.spike_body_atr": [1.5, "big"]}, "strategy.params.spike_body_atr"),
])
def test_a_key_or_value_the_settings_refuse_stops_the_sweep_before_it_runs(
        tmp_path, run_cli, db_file, grid, message):
    code, out, err = run_cli("sweep", "--data", str(CRASH), "--grid",
                             str(write_grid(tmp_path, grid)), "--db", db_file, "--workers", "1")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "store").exists()  # nothing ran, nothing was stored


@pytest.mark.parametrize(("top", "message"), [
    ({"samples": 0}, "samples: expected a whole number >= 1"),
    ({"seed": 1.5}, "seed: expected a whole number"),
    ({"sample": 2}, "sample: unknown key"),
])
def test_a_bad_samples_or_seed_is_refused(tmp_path, top, message):
    with pytest.raises(ConfigError, match=message):
        read_grid(write_grid(tmp_path, {"exits.time_stop_hours": [12.0]}, **top))


def test_samples_are_drawn_from_the_product_the_same_way_for_the_same_seed(tmp_path):
    grid = {"strategy.params.spike_body_atr": [1.5, 2.0, 2.5, 3.0],
            "exits.time_stop_hours": [6.0, 12.0, 24.0]}
    product = read_grid(write_grid(tmp_path, grid)).combinations()
    assert len(product) == 12 and product[1] == {"strategy.params.spike_body_atr": 1.5,
                                                 "exits.time_stop_hours": 12.0}
    drawn = read_grid(write_grid(tmp_path, grid, samples=5, seed=7)).combinations()
    again = read_grid(write_grid(tmp_path, grid, samples=5, seed=7)).combinations()
    other = read_grid(write_grid(tmp_path, grid, samples=5, seed=8)).combinations()
    assert drawn == again and len(drawn) == 5 and drawn != other
    assert drawn == [p for p in product if p in drawn]  # kept in the product's order
    assert read_grid(write_grid(tmp_path, grid, samples=50)).combinations() == product


def test_each_combination_gets_its_own_checked_settings(tmp_path):
    base = load_settings(DEFAULT_CONFIG)
    grid = read_grid(write_grid(tmp_path, {"strategy.params.spike_body_atr": [1.5, 2.0],
                                           "costs.funding": [True, False]}))
    combos = settings_for_grid(base, grid, "grid.toml")
    assert [(s.strategy.params["spike_body_atr"], s.costs.funding) for s in combos] == [
        (1.5, True), (1.5, False), (2.0, True), (2.0, False)]
    assert all(s.exits == base.exits and s.source == base.source for s in combos)


def test_walk_forward_windows_roll_by_the_test_length():
    plan = parse_walk_forward("6d/3d")
    windows = windows_over(plan, 0, 18 * DAY_MS, 15 * 60_000)
    assert [(w.train, w.test) for w in windows] == [
        ((k * 3 * DAY_MS, (k * 3 + 6) * DAY_MS), ((k * 3 + 6) * DAY_MS, (k * 3 + 9) * DAY_MS))
        for k in range(4)]
    for text in ("90d", "90d/x", "0d/1d"):
        with pytest.raises(ConfigError, match="--walk-forward"):
            parse_walk_forward(text)
    with pytest.raises(ConfigError, match="shorter than one training and one test window"):
        windows_over(plan, 0, 8 * DAY_MS, 15 * 60_000)
