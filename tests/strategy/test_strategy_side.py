"""A strategy says the side it trades (`Strategy.side`, long unless it says): its rejected
signals' evidence is judged for that side. A side that is not a PositionSide is a load error."""

from __future__ import annotations

import pytest

from cryptobot.errors import StrategyLoadError
from cryptobot.model import PositionSide
from cryptobot.strategy.loading import strategy_class


def test_the_bundled_strategies_say_their_side():
    assert strategy_class("strategies.short_squeeze:ShortSqueeze").side is PositionSide.SHORT
    assert strategy_class("strategies.liquidation_rebound:LiquidationRebound").side \
        is PositionSide.LONG


def test_a_side_that_is_not_a_position_side_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "sided_strategy.py").write_text(
        "from cryptobot.strategy import Strategy\n\n"
        "class Sided(Strategy):\n    side = 'short'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(StrategyLoadError, match=r"Sided.side is 'short', not PositionSide"):
        strategy_class("sided_strategy:Sided")
