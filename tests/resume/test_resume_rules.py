"""A resumed paper run must go on under the rules it started with: the trading sections of its
stored settings are compared with the config given, in today's layout (a run stored before the
symbol list and the portfolio caps existed still resumes)."""

from __future__ import annotations

import pytest

from cryptobot.cli.paper_resume import _check_rules
from cryptobot.config import Settings
from cryptobot.engine.recorder import RunInfo
from cryptobot.errors import ConfigError


def _stored(settings: dict) -> RunInfo:
    return RunInfo("paper", "binanceusdm", ("BTC/USDT:USDT",), 0, None, "replay", settings)


def test_a_changed_portfolio_cap_is_refused():
    settings = Settings()
    stored = settings.model_dump(mode="json")
    looser = settings.model_copy(update={"portfolio": settings.portfolio.model_copy(
        update={"max_entries_per_hour": 5})})
    _check_rules(1, _stored(stored), settings)
    with pytest.raises(ConfigError, match=r"run 1 was started with other \[portfolio\]"):
        _check_rules(1, _stored(stored), looser)


def test_a_run_stored_before_the_symbol_list_and_the_caps_resumes():
    settings = Settings()
    old = settings.model_dump(mode="json")  # as the previous release stored it
    old["market"]["symbol"] = old["market"].pop("symbols")[0]
    old["risk"]["max_open_positions"] = 1
    del old["portfolio"]
    _check_rules(1, _stored(old), settings)
    old["market"]["symbol"] = "ETH/USDT:USDT"
    with pytest.raises(ConfigError, match=r"other \[market\] settings"):
        _check_rules(1, _stored(old), settings)
