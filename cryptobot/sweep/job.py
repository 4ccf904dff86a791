"""What a Dask worker runs: one backtest of one combination, on market data sent once.

The parts are those of `cryptobot backtest` (the paper fill simulator on a simulated clock,
the strategy the settings name, the gate built on the client, the market rules), so a
combination's summary equals the plain backtest's with the same settings, figure for figure
(tests/sweep/test_sweep_on_local_cluster.py, tests/sweep/test_sweep_liquidations.py). Nothing
here writes the store: the worker hands back plain data and the client stores it.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from dataclasses import dataclass

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock
from cryptobot.config import Settings
from cryptobot.data.liquidation_files import LiquidationRecords
from cryptobot.data.market_data import MarketData, cut_to_span
from cryptobot.engine.gate import Gate
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.errors import CryptobotError
from cryptobot.report.serialize import signal_to_dict, trade_to_dict
from cryptobot.runners.backtest import SymbolInputs, run_portfolio_backtest
from cryptobot.strategy.loading import load_strategy


@dataclass(frozen=True, eq=False)  # compared by identity: a worker keeps one copy (below)
class MarketPack:
    """What every combination of a sweep shares, sent to each worker once: each symbol's
    market data and rules, the gate of each distinct `[macro]` (by its JSON) and each symbol's
    recorded liquidations for each distinct folder and gap setting (`liquidations_key`)."""

    markets: dict[str, MarketData]
    rules: dict[str, MarketRules | None]
    gates: dict[str, Gate]
    liquidations: dict[str, dict[str, LiquidationRecords | None]]


@dataclass(frozen=True)
class Span:
    """The traded span (None: the data's own edges) and, for walk-forward, how much of the
    market data before `start_ms` the indicators may warm up on (None: all of it)."""

    start_ms: int | None
    end_ms: int | None
    warmup_ms: int | None = None


def gate_key(settings: Settings) -> str:
    return settings.macro.model_dump_json()


def liquidations_key(settings: Settings) -> str:
    """What the recorded liquidations depend on: their folder and the gap that ends a span."""
    evidence = settings.evidence
    return f"{evidence.liquidation_gap_minutes!r} {evidence.liquidations_dir}"


def run_combination(pack: MarketPack, settings: Settings, span: Span, detail: bool) -> dict:
    """{"summary": ..., "elapsed_s": ...} (and "signals", "trades" with `detail`), or
    {"error": one line} when this combination cannot run: the sweep goes on."""
    started = time.perf_counter()
    try:
        result = _backtest(pack, settings, span)
    except CryptobotError as exc:
        return {"error": str(exc), "elapsed_s": time.perf_counter() - started}
    except Exception as exc:  # noqa: BLE001 - one combination's bug must not end the sweep
        return {"error": f"{type(exc).__name__}: {exc}", "elapsed_s": time.perf_counter() - started}
    outcome = {"summary": result.summary, "elapsed_s": time.perf_counter() - started}
    if detail:
        outcome["signals"] = [signal_to_dict(s) for s in result.portfolio.signals]
        outcome["trades"] = [trade_to_dict(t) for t in result.portfolio.trades]
    return outcome


# The pack's market data in memory of the worker's own, once per pack (see `_owned`).
_OWNED: weakref.WeakKeyDictionary[MarketPack, dict[str, MarketData]] = \
    weakref.WeakKeyDictionary()


def _owned(pack: MarketPack) -> dict[str, MarketData]:
    """The markets copied out of the buffers they arrived in: Dask hands arrays over where
    the message put them, at addresses numpy calls unaligned, and numpy then copies a whole
    array at every `searchsorted` (a backtest ran 13x slower). Copied once per worker."""
    markets = _OWNED.get(pack)
    if markets is None:
        markets = _OWNED[pack] = {
            symbol: dataclasses.replace(market, candles=market.candles.copy(),
                                        open_interest=market.open_interest.copy(),
                                        funding=market.funding.copy())
            for symbol, market in pack.markets.items()}
    return markets


def _backtest(pack: MarketPack, settings: Settings, span: Span):
    owned = _owned(pack)
    markets = {s: _warmed_up_from(owned[s], span) for s in settings.market.symbols}
    first_open_ms = min(int(m.candles["ts_open_ms"][0]) for m in markets.values())
    clock = SimClock(span.start_ms if span.start_ms is not None else first_open_ms)
    liquidations = pack.liquidations[liquidations_key(settings)]
    inputs = {s: SymbolInputs(markets[s], load_strategy(settings.for_symbol(s), s),
                              PaperBroker(settings.costs, clock), pack.rules[s], liquidations[s])
              for s in settings.market.symbols}
    return run_portfolio_backtest(settings, inputs, pack.gates[gate_key(settings)],
                                  MemoryRecorder(), clock, skip_quiet=True,
                                  start_ms=span.start_ms, end_ms=span.end_ms)


def _warmed_up_from(market: MarketData, span: Span) -> MarketData:
    """The market cut to the warm-up before the span and the span itself (walk-forward
    windows share one loaded data set; a plain sweep loaded exactly its own)."""
    if span.warmup_ms is None or span.start_ms is None:
        return market
    return cut_to_span(market, span.start_ms - span.warmup_ms, span.end_ms)
