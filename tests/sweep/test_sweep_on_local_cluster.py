"""A sweep on a LocalCluster of 2 worker processes (the default path of `cryptobot sweep`), on
the bundled crash window: each row equals a plain `cryptobot backtest` of its settings, figure
for figure, and the store holds what the command printed."""

from __future__ import annotations

import json

import pytest

from tests.sweep.conftest import CRASH, write_config, write_grid

GRID = {"strategy.params.spike_body_atr": [1.5, 2.0],
        "strategy.params.oi_confirmation": [True, False]}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(outcome of `cryptobot sweep --json`, its store URL, the folder) for GRID."""
    from cryptobot.cli import main

    folder = tmp_path_factory.mktemp("sweep")
    db = f"sqlite:///{folder / 'sweeps.sqlite'}"
    out = folder / "out.json"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(["sweep", "--data", str(CRASH), "--grid", str(write_grid(folder, GRID)),
              "--workers", "2", "--db", db, "--json"])
    out.write_text(buffer.getvalue())
    return json.loads(buffer.getvalue()), db, folder


def test_every_combination_is_a_row_in_the_grids_order(swept):
    outcome, _, _ = swept
    assert [row["params"] for row in outcome["rows"]] == [
        {"strategy.params.spike_body_atr": body, "strategy.params.oi_confirmation": oi}
        for body in (1.5, 2.0) for oi in (True, False)]
    # the grid matters here: otherwise equality with the backtest would prove little
    assert len({json.dumps(row["summary"], sort_keys=True) for row in outcome["rows"]}) == 4
    for row in outcome["rows"]:
        assert {"trades", "total_pnl_usdt", "max_drawdown_pct", "profit_factor", "average_r",
                "exposure_pct"} <= set(row["summary"])


def test_each_row_equals_a_plain_backtest_figure_for_figure(swept, tmp_path, run_cli):
    outcome, _, _ = swept
    for n, row in enumerate(outcome["rows"]):
        config = write_config(tmp_path, row["params"], name=f"c{n}.toml")
        code, out, err = run_cli("backtest", "--data", str(CRASH), "--config", str(config),
                                 "--db", f"sqlite:///{tmp_path / 'plain.sqlite'}", "--json")
        assert code == 0, err
        plain = json.loads(out)["summary"]
        assert plain["trades"] == row["summary"]["trades"]
        # every figure the sweep keeps is the backtest's own (the command adds its run's
        # labels: symbol, span, data, run id, warm-up)
        assert {k: plain[k] for k in row["summary"]} == row["summary"]


def test_the_store_holds_what_the_command_printed(swept, run_cli):
    outcome, db, _ = swept
    code, out, err = run_cli("sweeps", str(outcome["sweep_id"]), "--db", db, "--json")
    assert code == 0, err
    assert json.loads(out) == outcome
    code, out, _ = run_cli("sweeps", "--db", db, "--json")
    (listed,) = json.loads(out)["sweeps"]
    assert listed["status"] == "finished" and listed["rows"] == 4 and listed["errors"] == 0
    assert listed["scheduler"] == "local, 2 worker processes"
    assert listed["grid"]["grid"] == GRID


def test_sweeps_sorts_best_first_and_draws_a_heatmap(swept, run_cli, tmp_path):
    outcome, db, _ = swept
    code, out, _ = run_cli("sweeps", str(outcome["sweep_id"]), "--db", db,
                           "--sort", "total_pnl_usdt")
    assert code == 0
    best = max(outcome["rows"], key=lambda r: r["summary"]["total_pnl_usdt"])
    first_row = next(line for line in out.splitlines() if line.startswith("│"))
    assert f"{best['summary']['total_pnl_usdt']:,.2f}"[:5] in first_row
    html = tmp_path / "heat.html"
    code, _, err = run_cli("sweeps", str(outcome["sweep_id"]), "--db", db, "--heatmap",
                           "strategy.params.spike_body_atr,strategy.params.oi_confirmation",
                           "--html", str(html))
    assert code == 0, err
    page = html.read_text()
    assert "SYNTHETIC open interest" in page  # the crash window's OI is synthetic
    for row in outcome["rows"]:
        assert f"{row['summary']['total_pnl_usdt']:,.2f}" in page


def test_the_heatmap_is_green_where_a_figure_is_better_and_red_below_zero_pnl(swept, run_cli,
                                                                            tmp_path):
    import re

    outcome, db, _ = swept
    first_colour = {}
    for metric in ("total_pnl_usdt", "fees_usdt", "max_drawdown_usdt", "trades"):
        html = tmp_path / f"{metric}.html"
        code, _, err = run_cli("sweeps", str(outcome["sweep_id"]), "--db", db, "--heatmap",
                               "strategy.params.spike_body_atr,strategy.params.oi_confirmation",
                               "--html", str(html), "--heat-metric", metric)
        assert code == 0, err
        page = html.read_text()
        first_colour[metric] = re.search(r'"colorscale":\[\[0\.0,"([^"]+)"', page).group(1)
        assert ('"zmid":0' in page) == (metric == "total_pnl_usdt")
    red, green = "rgb(165,0,38)", "rgb(0,104,55)"  # RdYlGn's ends: the lowest value's colour
    assert first_colour == {"total_pnl_usdt": red, "trades": red, "fees_usdt": green,
                            "max_drawdown_usdt": green}


def test_a_local_cluster_takes_no_fixed_port_and_listens_on_loopback_only():
    """Dask's dashboard_address=None still serves :8787 (a second sweep's would collide)."""
    from urllib.parse import urlsplit

    from cryptobot.sweep.cluster import dask_client

    with dask_client(1, None) as client:
        where = urlsplit(client.dashboard_link)
    assert where.hostname == "127.0.0.1" and where.port != 8787
