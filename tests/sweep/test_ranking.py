"""Which combination ranks first (`sweeps --sort`, a walk-forward's choice): a profit factor
without a losing trade is infinite, the best; one without any trade ranks last."""

from __future__ import annotations

from cryptobot.sweep.metrics import ranking_key


def test_a_profit_factor_without_a_loss_ranks_first_and_one_without_trades_last():
    no_loss = {"trades": 2, "wins": 2, "profit_factor": None, "max_drawdown_pct": 0.0}
    some_loss = {"trades": 5, "wins": 3, "profit_factor": 1.5, "max_drawdown_pct": 2.0}
    no_trade = {"trades": 0, "wins": 0, "profit_factor": None, "max_drawdown_pct": 0.0}
    rows = [no_trade, None, some_loss, no_loss]
    assert sorted(rows, key=ranking_key("profit_factor")) == [no_loss, some_loss, no_trade, None]
    # other metrics are untouched: lower drawdown first
    assert sorted([some_loss, no_loss], key=ranking_key("max_drawdown_pct")) == [no_loss,
                                                                                 some_loss]
