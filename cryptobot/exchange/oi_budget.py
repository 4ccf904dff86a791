"""How often open interest may be polled for N symbols inside Binance's request-weight budget.

Binance USD-M has no open-interest stream: a symbol's open interest is one REST request,
`GET /fapi/v1/openInterest`, "Request Weight 1" (developers.binance.com/docs/derivatives/
usds-margined-futures/market-data/rest-api/Open-Interest). An IP may spend 2,400 request weight
a minute (Binance FAQ "Rate Limits on Binance Futures": "The default rate limit per IP is
2,400/min"), and everything the process asks shares it: warm-up and gap repairs (klines, weight
5 for a 1000-row page), funding, a live broker's orders and reconciliation. So polling may
spend at most `POLL_SHARE` of it; when N symbols at the configured interval would spend more,
the interval is stretched until they fit. The feed polls the symbols staggered over the
interval, and says at start how the budget is spent (`PollBudget.describe`).
"""

from __future__ import annotations

from dataclasses import dataclass

BINANCE_WEIGHT_PER_MINUTE = 2_400
OPEN_INTEREST_WEIGHT = 1
POLL_SHARE = 0.5  # of the minute's weight; the rest is left for repairs, funding and orders


@dataclass(frozen=True)
class PollBudget:
    symbols: int
    weight_per_poll: int
    asked_interval_s: float  # feed.oi_poll_seconds
    interval_s: float  # what the feed polls at: the asked one, or stretched to fit
    limit_per_minute: int
    share: float

    @property
    def polls_per_minute(self) -> float:
        """Per symbol."""
        return 60.0 / self.interval_s

    @property
    def weight_per_minute(self) -> float:
        return self.symbols * self.weight_per_poll * self.polls_per_minute

    @property
    def stretched(self) -> bool:
        return self.interval_s > self.asked_interval_s

    def describe(self) -> str:
        allowed = self.limit_per_minute * self.share
        line = (f"open-interest polls: {self.symbols} symbol(s) x weight {self.weight_per_poll}"
                f" x {self.polls_per_minute:g} polls/min = {self.weight_per_minute:g} request "
                f"weight/min of Binance's {self.limit_per_minute}/min per IP (polling may use "
                f"{allowed:g}; the rest stays for warm-up, gap repairs, funding and orders)")
        if self.stretched:
            line += (f"; feed.oi_poll_seconds {self.asked_interval_s:g}s would need "
                     f"{self.symbols * self.weight_per_poll * 60 / self.asked_interval_s:g}/min:"
                     f" each symbol is polled every {self.interval_s:g}s instead")
        return line


def plan_open_interest_polls(symbols: int, poll_seconds: float,
                             limit_per_minute: int = BINANCE_WEIGHT_PER_MINUTE,
                             weight_per_poll: int = OPEN_INTEREST_WEIGHT,
                             share: float = POLL_SHARE) -> PollBudget:
    """The poll interval for `symbols` symbols: `poll_seconds`, or longer when that would
    spend more than `share` of the minute's request weight."""
    allowed = limit_per_minute * share
    needed = symbols * weight_per_poll * 60.0 / poll_seconds
    interval_s = poll_seconds if needed <= allowed else symbols * weight_per_poll * 60.0 / allowed
    return PollBudget(symbols, weight_per_poll, poll_seconds, interval_s, limit_per_minute, share)
