"""Look-ahead checks for any strategy: does anything change when later data is added?

- `check_causal`: the strategy's indicators and trigger, which a fast backtest computes over the
  whole series at once, must give every row the same value (NaN equals NaN, otherwise bit for
  bit) on the series cut after any row, and grown one candle at a time as live grows it.
- `find_lookahead`: the fast backtest on the whole data and on the data cut at N points
  (candles opening from the cut on, open interest and funding published after it, removed)
  must agree on every signal, order, fill, closed trade and gate decision known by the cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock, iso_utc
from cryptobot.config import Settings
from cryptobot.data.frames import CANDLE_COLUMNS
from cryptobot.data.market_data import MarketData
from cryptobot.data.resample import bucket_arrays
from cryptobot.engine.gate import Gate, PassThroughGate
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.market_view import signal_interval_ms
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.errors import ConfigError, StrategyError
from cryptobot.model import Candle
from cryptobot.runners.backtest import backtest_arrays, run_backtest, traded_span
from cryptobot.strategy.api import Strategy, triggered_rows
from cryptobot.strategy.candles import CandleView, SignalCandles
from cryptobot.strategy.indicators import Indicator, SeriesCache, declared
from cryptobot.strategy.loading import guarded, load_strategy

KINDS = ("signal", "order", "fill", "trade", "gate decision")
# Growing the series candle by candle costs ~0.13 ms a row for the shipped strategy (40,896
# 15m rows, 14 months: 5.4 s). Longer series are grown whole but checked near the cuts only.
_GROW_EVERY_ROW_UP_TO = 50_000
_GROW_WINDOW = 2_000


@dataclass(frozen=True)
class Difference:
    kind: str  # signal, order, fill, trade, gate decision; "indicator NAME", trigger
    key: str  # a signal id, an order's client id and status, a row and its time, ...
    where: str  # "on data cut at ...", "on data cut after row ...", "with the candles ..."
    whole: str  # the value on the whole data ("absent": none there)
    short: str  # the value on the cut or grown data
    more: int = 0  # further rows that differ the same way (indicators and trigger)

    def line(self) -> str:
        more = ("" if not self.more else " (1 more row differs)" if self.more == 1
                else f" ({self.more} more rows differ)")
        return (f"{self.kind}: {self.key} is {self.whole} on the whole data, "
                f"{self.short} {self.where}{more}")


@dataclass
class LookaheadReport:
    cuts_ms: list[int]
    compared: dict[str, int]  # per kind: decisions of the whole run known by the last cut
    differences: list[Difference] = field(default_factory=list)  # decisions
    causal: list[Difference] = field(default_factory=list)  # indicators and trigger

    @property
    def clean(self) -> bool:
        return not self.differences and not self.causal


# --- indicators and trigger ----------------------------------------------------------------

def check_causal(strategy: Strategy, signal: Mapping[str, np.ndarray], cuts: Sequence[int],
                 interval_ms: int | None = None) -> list[str]:
    """Mismatch lines (none: causal) of the strategy's indicators and trigger on the signal
    candles `signal` cut to their first k rows (each k of `cuts`) and grown row by row."""
    return [d.line() for d in causal_differences(strategy, signal, cuts, interval_ms)]


def causal_differences(strategy: Strategy, signal: Mapping[str, np.ndarray],
                       cuts: Sequence[int], interval_ms: int | None = None) -> list[Difference]:
    name = type(strategy).__name__
    indicators = declared(guarded(name, "indicators", strategy.indicators))
    columns = {column: np.asarray(signal[column]) for column in CANDLE_COLUMNS}
    ts = columns["ts_open_ms"]
    n = len(ts)
    interval = interval_ms or (int(np.diff(ts).min()) if n > 1 else 1)
    whole = _at_once(strategy, indicators, columns, interval)
    out: list[Difference] = []
    for k in sorted({int(k) for k in cuts if 0 < int(k) < n}):
        where = f"on data cut after row {k - 1}"
        try:
            short = _at_once(strategy, indicators, {c: v[:k] for c, v in columns.items()},
                             interval)
        except StrategyError as exc:
            out.append(Difference("error", "the strategy's code", where, "fine",
                                  f"raises ({exc})"))
            continue
        out += _row_differences(whole, short, np.arange(k), ts, where)
    rows = _grown_rows(n, cuts)
    where = "with the candles added one by one"
    grown, failed = _one_by_one(strategy, indicators, columns, interval, rows)
    if failed is not None:
        out.append(Difference("error", f"the strategy's code at row {failed[0]}", where,
                              "fine", f"raises ({failed[1]})"))
        rows = rows[rows < failed[0]]
    return out + _row_differences(whole, grown, rows, ts, where)


def _at_once(strategy: Strategy, indicators: dict[str, Indicator],
             columns: Mapping[str, np.ndarray], interval_ms: int) -> dict[str, np.ndarray]:
    """As a fast backtest computes them: the trigger over all rows, then each indicator."""
    name = type(strategy).__name__
    candles = SignalCandles.known(interval_ms, columns)
    cache = SeriesCache(candles)
    rows = np.arange(len(candles))
    out = {"trigger": np.zeros(len(rows), dtype=bool)}
    out["trigger"][guarded(name, "trigger", triggered_rows, strategy,
                           CandleView(candles, cache, indicators, rows))] = True
    for key, indicator in indicators.items():
        values = guarded(name, f"indicator {key}", cache.at, indicator, rows)
        out[f"indicator {key}"] = np.asarray(values, dtype=np.float64)
    return out


def _one_by_one(strategy: Strategy, indicators: dict[str, Indicator],
                columns: Mapping[str, np.ndarray], interval_ms: int, check: np.ndarray):
    """As live computes them: after each appended candle, the trigger on the newest row, then
    each indicator there. (values at the `check` rows, (row, error) if user code failed)."""
    name = type(strategy).__name__
    n = len(columns["ts_open_ms"])
    out = {"trigger": np.zeros(n, dtype=bool)}
    out.update({f"indicator {key}": np.full(n, np.nan) for key in indicators})
    candles = SignalCandles(interval_ms)
    cache = SeriesCache(candles)
    wanted = np.zeros(n, dtype=bool)
    wanted[check] = True
    plain = [columns[c].tolist() for c in CANDLE_COLUMNS]
    for i, (ts, o, h, lo, c, v) in enumerate(zip(*plain, strict=True)):
        candles.close(Candle(ts, interval_ms, o, h, lo, c, v))
        if not wanted[i]:
            continue
        row = np.array([i])
        try:
            view = CandleView(candles, cache, indicators, row)
            out["trigger"][i] = len(guarded(name, "trigger", triggered_rows, strategy, view)) == 1
            for key, indicator in indicators.items():
                out[f"indicator {key}"][i] = guarded(name, f"indicator {key}", cache.at,
                                                     indicator, row)[0]
        except StrategyError as exc:
            return out, (i, str(exc))
    return out, None


def _grown_rows(n: int, cuts: Sequence[int]) -> np.ndarray:
    if n <= _GROW_EVERY_ROW_UP_TO:
        return np.arange(n)
    near = np.zeros(n, dtype=bool)
    for k in (*cuts, _GROW_WINDOW, n):
        near[max(0, int(k) - _GROW_WINDOW):min(n, int(k))] = True
    return np.flatnonzero(near)


def _row_differences(whole: dict[str, np.ndarray], other: dict[str, np.ndarray],
                     rows: np.ndarray, ts: np.ndarray, where: str) -> list[Difference]:
    out = []
    for kind, values in whole.items():
        a, b = values[rows], other[kind][rows]
        if kind == "trigger":
            differ = a != b
        else:  # bit for bit: -0.0 is not 0.0, but every NaN is NaN
            same = ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))
            differ = ~same
        hits = np.flatnonzero(differ)
        if len(hits):
            j = int(hits[0])
            row = int(rows[j])
            out.append(Difference(kind, f"row {row} ({iso_utc(int(ts[row]))})", where,
                                  _number(a[j]), _number(b[j]), len(hits) - 1))
    return out


def _number(value: object) -> str:
    return str(bool(value)).lower() if isinstance(value, np.bool_) else repr(float(value))


# --- decisions ------------------------------------------------------------------------------

def find_lookahead(settings: Settings, market: MarketData, cuts: int,
                   start_ms: int | None = None, end_ms: int | None = None, *,
                   gate: Gate | None = None,
                   market_rules: MarketRules | None = None) -> LookaheadReport:
    """Run the fast backtest on the whole data and on the data cut at `cuts` points spread
    evenly through the traded span (on signal-candle boundaries); list every decision known
    by a cut that differs, every decision that differs when the whole data is fed candle by
    candle (as live), and the indicators' and trigger's `causal_differences`."""
    if cuts < 1:
        raise ConfigError(f"--cuts {cuts}: at least one cut is needed")
    gate = gate or PassThroughGate()
    signal_ms = signal_interval_ms(settings, market.base_interval_ms)
    start, end = traded_span(settings, market, start_ms, end_ms)
    cut_points = cut_times(start, end, signal_ms, cuts)
    whole = _decisions(_run(settings, market, gate, market_rules, start_ms, end_ms),
                       market.base_interval_ms)
    last = cut_points[-1] if cut_points else start - 1
    report = LookaheadReport(cut_points, {kind: sum(1 for known_ms, _, _ in items
                                                     if known_ms <= last)
                                          for kind, items in whole.items()})
    for cut in cut_points:
        short = _decisions(_run(settings, _cut_market(market, cut), gate, market_rules,
                                start_ms, cut), market.base_interval_ms)
        report.differences += _decision_differences(whole, short, cut)
    # The same data fed candle by candle, as live: a strategy that behaves differently when
    # a backtest hands it the whole history at once shows here, whatever it does.
    every = _decisions(_run(settings, market, gate, market_rules, start_ms, end_ms,
                            skip_quiet=False), market.base_interval_ms)
    report.differences += _decision_differences(whole, every, None)
    signal = _signal_candles(market, signal_ms, end)
    rows = np.searchsorted(signal["ts_open_ms"], cut_points).tolist()
    report.causal = causal_differences(load_strategy(settings, settings.market.symbol), signal,
                                       rows, signal_ms)
    return report


def cut_times(start_ms: int, end_ms: int, signal_ms: int, cuts: int) -> list[int]:
    """`cuts` times spread evenly inside (start_ms, end_ms), each on a signal-candle boundary
    (fewer when the span holds fewer candles)."""
    spread = (start_ms + (end_ms - start_ms) * i // (cuts + 1) for i in range(1, cuts + 1))
    return sorted({t - t % signal_ms for t in spread} - {start_ms}) if end_ms > start_ms else []


def _run(settings: Settings, market: MarketData, gate: Gate, rules: MarketRules | None,
         start_ms: int | None, end_ms: int | None, skip_quiet: bool = True) -> MemoryRecorder:
    recorder = MemoryRecorder()
    strategy = load_strategy(settings, settings.market.symbol)  # fresh: strategies keep state
    clock = SimClock(0)
    run_backtest(settings, market, strategy, gate, recorder, PaperBroker(settings.costs, clock),
                 clock, skip_quiet=skip_quiet, start_ms=start_ms, end_ms=end_ms,
                 market_rules=rules)
    return recorder


def _cut_market(market: MarketData, cut_ms: int) -> MarketData:
    """What was known at `cut_ms`: candles that closed by then, samples published by then."""
    candles, oi, funding = market.candles, market.open_interest, market.funding
    return replace(market, candles=candles[candles["ts_open_ms"] < cut_ms],
                   open_interest=oi[oi["ts_ms"] <= cut_ms],
                   funding=funding[funding["ts_ms"] <= cut_ms])


def _signal_candles(market: MarketData, signal_ms: int, end_ms: int) -> dict[str, np.ndarray]:
    """The signal candles a fast backtest of `market` up to `end_ms` computes on."""
    base = backtest_arrays(market, signal_ms, end_ms)
    return bucket_arrays(base, signal_ms, market.base_interval_ms)[0]


Known = dict[str, list[tuple[int, str, dict[str, str]]]]  # kind -> (known at ms, key, fields)


def _decisions(recorder: MemoryRecorder, base_ms: int) -> Known:
    """Everything the run decided or did, each with the time it was known (a fill or a trade's
    last exit happens inside a base candle stamped with its open: known at its close)."""
    out: Known = {kind: [] for kind in KINDS}
    for s, _ in recorder.signals:
        out["signal"].append((s.decided_ms, s.signal_id, {
            "status": str(s.status), "reason": repr(s.reason), "metrics": _text(s.metrics),
            "events": repr(s.setup_events)}))
    for event in recorder.orders:
        o = event.intent
        out["order"].append((event.ts_ms, f"{o.client_id} {event.status}", {
            "at": iso_utc(event.ts_ms), "qty": repr(o.qty_base), "price": repr(o.price),
            "stop": repr(o.stop_price), "detail": repr(event.detail)}))
    for f in recorder.fills:
        out["fill"].append((f.ts_ms + base_ms, f.client_id, {
            "at": iso_utc(f.ts_ms), "price": repr(f.price), "qty": repr(f.qty_base),
            "fee": repr(f.fee_usdt)}))
    for t, _ in recorder.trades:
        out["trade"].append((t.exit_ms + base_ms, t.signal_id, {
            "entry": f"{iso_utc(t.entry_ms)} @ {t.entry_price!r}", "qty": repr(t.qty_base),
            "stop": repr(t.initial_stop), "legs": repr(t.legs),
            "costs": f"{t.entry_fee_usdt!r} fee, {t.funding_usdt!r} funding"}))
    for g, trigger in recorder.gate_decisions:
        out["gate decision"].append((g.ts_ms, f"{trigger} {iso_utc(g.ts_ms)}", {
            "action": str(g.action), "size": repr(g.size_factor), "reasons": repr(g.reasons),
            "inputs": _text(g.inputs)}))
    for items in out.values():  # a key seen again gets its number: "... #2"
        seen: dict[str, int] = {}
        for j, (ts, key, fields) in enumerate(items):
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                items[j] = (ts, f"{key} #{seen[key]}", fields)
    return out


def _text(mapping: Mapping) -> str:
    return repr(sorted(mapping.items()))


def _decision_differences(whole: Known, short: Known, cut_ms: int | None) -> list[Difference]:
    """Decisions known by `cut_ms` that differ (None: every decision, and `short` is the run
    fed candle by candle instead of a cut run)."""
    out = []
    where = ("when fed candle by candle" if cut_ms is None
             else f"on data cut at {iso_utc(cut_ms)}")
    until = (1 << 62) if cut_ms is None else cut_ms
    for kind in KINDS:
        a = {key: fields for ts, key, fields in whole[kind] if ts <= until}
        b = {key: fields for ts, key, fields in short[kind] if ts <= until}
        for key in dict.fromkeys([*a, *b]):
            if a.get(key) != b.get(key):
                out.append(Difference(kind, key, where, _shown(a.get(key), b.get(key)),
                                      _shown(b.get(key), a.get(key))))
    return out


def _shown(fields: dict[str, str] | None, other: dict[str, str] | None) -> str:
    """The fields that differ from `other` (the first two when `other` is absent)."""
    if fields is None:
        return "absent"
    names = list(fields)[:2] if other is None else [k for k in fields if fields[k] != other[k]]
    return ", ".join(f"{k}={fields[k]}" for k in names)
