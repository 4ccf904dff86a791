"""The cross-check rule in vectorbt (polakowo/vectorbt), one whole process.

    .venv/bin/python benchmarks/peers/with_vectorbt.py

Prints one JSON line: the entry times (UTC), the number of trades, and the simulation's own time
on its first call (numba compiling) and on a second call (compiled). The exits are a numba order
function of vectorbt's flexible simulation (several orders in one base candle: the entry and
its stop, or both targets): per candle the time stop at the open, the stop (the initial one, or
break-even from the candle after TP1), then TP1 (half) and TP2 (the rest).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import vectorbt as vbt
from numba import njit
from vectorbt.portfolio.enums import NoOrder
from vectorbt.portfolio.nb import order_nb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rule import FEE, LEVERAGE_CAP, RISK_USDT, TIME_STOP_MS, base_candles, candidates  # noqa: E402

# The order function's state, one float64 array: whether a position is open, its entry price,
# initial stop, first-target half still open, candle from which the stop is break-even, size of
# each half, entry time; then this candle's time stop / stop / targets already handled.
IN_POS, ENTRY, STOP, HALF_OPEN, BE_ROW, HALF_QTY, ENTRY_MS, DONE_ROW = range(8)


@njit
def rebound_orders(c, o, h, lo, ts, entry_stop, entry_ref, state):
    i = c.i
    if c.call_idx == 0:
        state[DONE_ROW] = -1.0
    if state[IN_POS] == 1.0 and state[DONE_ROW] < i:
        state[DONE_ROW] = i
        if ts[i] >= state[ENTRY_MS] + TIME_STOP_MS:  # 24h: out at this candle's open
            state[IN_POS] = 0.0
            return 0, order_nb(-c.last_position[0], o[i], fees=FEE)
    if state[IN_POS] == 0.0:
        if state[DONE_ROW] == i or np.isnan(entry_stop[i]):
            return -1, NoOrder
        entry = o[i]
        qty = min(RISK_USDT / (entry_ref[i] - entry_stop[i]),
                  LEVERAGE_CAP * c.last_value[0] / entry)
        state[IN_POS], state[ENTRY], state[STOP], state[HALF_OPEN] = 1.0, entry, entry_stop[i], 1.0
        state[BE_ROW], state[HALF_QTY], state[ENTRY_MS] = np.inf, qty / 2, ts[i]
        state[DONE_ROW] = i
        return 0, order_nb(qty, entry, fees=FEE)
    entry = state[ENTRY]
    risk = entry - state[STOP]
    stop = entry if i >= state[BE_ROW] else state[STOP]
    if lo[i] <= stop:  # the stop first, whatever the candle did after
        state[IN_POS] = 0.0
        return 0, order_nb(-c.last_position[0], min(o[i], stop), fees=FEE)
    if state[HALF_OPEN] == 1.0 and h[i] >= entry + risk:
        state[HALF_OPEN], state[BE_ROW] = 0.0, i + 1
        return 0, order_nb(-state[HALF_QTY], max(o[i], entry + risk), fees=FEE)
    if h[i] >= entry + 2 * risk:
        state[IN_POS] = 0.0
        return 0, order_nb(-c.last_position[0], max(o[i], entry + 2 * risk), fees=FEE)
    return -1, NoOrder


def simulate(base, entry_stop, entry_ref):
    o, h, lo, cl = (base[k].to_numpy() for k in ("open", "high", "low", "close"))
    ts = base["ts_open_ms"].to_numpy().astype(np.float64)
    state = np.zeros(8)
    return vbt.Portfolio.from_order_func(cl, rebound_orders, o, h, lo, ts, entry_stop, entry_ref,
                                         state, flexible=True, init_cash=10_000.0)


def main() -> None:
    base = base_candles()
    picks = candidates(base)
    entry_stop = np.full(len(base), np.nan)
    entry_ref = np.full(len(base), np.nan)
    entry_stop[picks.entry_row] = picks.stop
    entry_ref[picks.entry_row] = picks.reference
    started = time.perf_counter()
    portfolio = simulate(base, entry_stop, entry_ref)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    simulate(base, entry_stop, entry_ref)
    compiled_s = time.perf_counter() - started
    orders = portfolio.orders.records
    bought = orders[orders["side"] == 0]["idx"]
    ts_open_ms = base["ts_open_ms"].to_numpy()
    entries = [np.datetime64(int(ts_open_ms[i]), "ms").astype("datetime64[s]").item()
               for i in bought]
    print(json.dumps({"tool": "vectorbt", "trades": len(entries),
                      "entries": [f"{t.isoformat()}Z" for t in entries],
                      "return_pct": float(portfolio.total_return() * 100),
                      "simulation_first_s": round(first_s, 3),
                      "simulation_compiled_s": round(compiled_s, 3)}))


if __name__ == "__main__":
    main()
