"""A strategy for the sweep tests: the liquidation rebound, which raises in its first
`on_candle` when `fail` is set (a combination that fails while it runs, not when checked)."""

from __future__ import annotations

from cryptobot.strategy import param
from strategies.liquidation_rebound import LiquidationRebound, RuleParams


class FailingParams(RuleParams):
    fail: bool = param(False, doc="raise in on_candle")


class FailsWhenAsked(LiquidationRebound):
    Params = FailingParams

    def on_candle(self, ctx):
        if self.params.fail:
            raise RuntimeError("asked to fail")
        return super().on_candle(ctx)
