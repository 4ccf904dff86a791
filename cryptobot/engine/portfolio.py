"""A run's engines, one per symbol, over one account: the event API every runner drives.

Events carry their symbol (`Candle.symbol`, ...; feeds tag them) and go to that symbol's
engine; an untagged event is allowed only in a one-symbol run. Time events (`on_time`) reach
every engine; the day rolls once for the run (engine/account.py). The run's signals and trades
are every engine's, in time order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cryptobot.engine.account import Account
from cryptobot.engine.loop import Engine
from cryptobot.model import Candle, FundingRate, Liquidation, OpenInterest, Signal, Trade


class Portfolio:
    def __init__(self, engines: Sequence[Engine]) -> None:
        if not engines:
            raise ValueError("a portfolio needs at least one engine")
        self.account: Account = engines[0].account
        if any(engine.account is not self.account for engine in engines):
            raise ValueError("the engines of one portfolio must share one account")
        self.engines: dict[str, Engine] = {engine.symbol: engine for engine in engines}
        self.symbols: tuple[str, ...] = tuple(self.engines)
        self.clock = engines[0].clock

    def engine(self, symbol: str) -> Engine:
        """The engine of `symbol` ("" : the only one of a one-symbol run)."""
        found = self.engines.get(symbol)
        if found is not None:
            return found
        if not symbol and len(self.engines) == 1:
            return next(iter(self.engines.values()))
        raise KeyError(f"an event of {symbol or 'no symbol'!r} in a run of "
                       f"{', '.join(self.symbols)}")

    # --- events ----------------------------------------------------------------------------

    def on_base_candle(self, candle: Candle) -> None:
        self.engine(candle.symbol).on_base_candle(candle)

    def on_open_interest(self, sample: OpenInterest) -> None:
        self.engine(sample.symbol).on_open_interest(sample)

    def on_funding(self, rate: FundingRate) -> None:
        self.engine(rate.symbol).on_funding(rate)

    def on_liquidation(self, event: Liquidation) -> None:
        self.engine(event.symbol).on_liquidation(event)

    def on_liquidation_listening(self, start_ms: int, end_ms: int | None,
                                 symbols: Iterable[str]) -> None:
        """The stream of `symbols` (one connection) started or stopped listening."""
        for symbol in symbols:
            if symbol in self.engines:
                self.engines[symbol].on_liquidation_listening(start_ms, end_ms)

    def on_time(self, now_ms: int | None = None) -> None:
        for engine in self.engines.values():
            engine.on_time(now_ms)

    def decide_gate_ahead(self) -> None:
        """Between events (live): the gate's decisions for the next signal closes (see
        Engine.decide_gate_ahead)."""
        for engine in self.engines.values():
            engine.decide_gate_ahead()

    def finish(self) -> None:
        self.account.finish(self.clock.now_ms())

    # --- what the run did ------------------------------------------------------------------

    @property
    def signals(self) -> list[Signal]:
        return sorted((s for e in self.engines.values() for s in e.signals),
                      key=lambda s: s.decided_ms)

    @property
    def trades(self) -> list[Trade]:
        return sorted((t for e in self.engines.values() for t in e.trades),
                      key=lambda t: t.exit_ms)

    @property
    def equity_usdt(self) -> float:
        return self.account.equity_usdt

    def exposure_ms(self, now_ms: int) -> int:
        """The time any position was held, up to `now_ms` (two symbols held over the same
        hour: one hour), from the trades' spans and the positions still open."""
        spans = sorted([(t.entry_ms, t.exit_ms) for t in self.trades]
                       + [(e.open_since_ms(), now_ms) for e in self.engines.values()
                          if e.open_since_ms() is not None])
        total, reach = 0, None
        for start, end in spans:
            if reach is None or start > reach:
                total += end - start
                reach = end
            elif end > reach:
                total += end - reach
                reach = end
        return total

    @property
    def funding_seen(self) -> bool:
        return any(engine.funding_seen for engine in self.engines.values())

    def is_idle(self) -> bool:
        return all(engine.is_idle() for engine in self.engines.values())

    def open_positions(self, last_prices: dict[str, float]) -> dict[str, dict[str, Any]]:
        """Each symbol's position still held, by symbol (`Engine.open_position`)."""
        held = {}
        for symbol, engine in self.engines.items():
            position = engine.open_position(last_prices.get(symbol))
            if position is not None:
                held[symbol] = position
        return held
