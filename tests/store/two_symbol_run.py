"""A two-symbol run SCRIPTED by hand on real candles, for the store and review tests.

The BTC and ETH 15m candles are real (data/btc_eth_2024-08_15m: Binance USD-M, 2024-08-04 ..
2024-08-07, the 2024-08-05 crash). The signals, trades, orders, fills, gate decisions and the
equity curve are scripted here (no engine), recorded in time order as a merged run records
them: BTC's candles one by one, ETH's in blocks (as a backtest's quiet stretches are). BTC has
hand-made OI samples (SYNTHETIC, so labelled in the data source); ETH has none.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from cryptobot.config import Settings
from cryptobot.engine.recorder import (
    CandleBlock,
    OrderEvent,
    Recorder,
    RunInfo,
    record_signal_candles,
)
from cryptobot.model import (
    Candle,
    Fill,
    GateAction,
    GateDecision,
    OpenInterest,
    OrderIntent,
    OrderPurpose,
    OrderType,
    SetupEvent,
    Side,
    Signal,
    SignalStatus,
    Trade,
    TradeLeg,
)

FOLDER = Path(__file__).resolve().parents[2] / "data" / "btc_eth_2024-08_15m"
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
SYMBOLS = (BTC, ETH)
M15 = 15 * 60_000
START_MS, END_MS = 1722729600000, 1722988800000  # 2024-08-04 00:00 .. 2024-08-07 00:00
ETH_BLOCK = 24  # ETH's candles are recorded 6 hours at a time


def real_candles(symbol: str) -> list[Candle]:
    """The symbol's real 15m candles opening in [START_MS, END_MS), tagged with the symbol."""
    base = symbol.split("/")[0]
    path = FOLDER / f"binance_um_{base}USDT_15m_2024-08-05_window.csv"
    with path.open() as handle:
        rows = [row for row in csv.DictReader(handle)
                if START_MS <= int(row["open_time_ms"]) < END_MS]
    return [Candle(int(row["open_time_ms"]), M15, *(float(row[key]) for key in
                   ("open", "high", "low", "close", "volume")), symbol) for row in rows]


def _trade(symbol: str, signal_id: str, candles: list[Candle], entry_i: int, qty: float,
           stop: float, exits: Iterable[tuple[int, float, str]]) -> Trade:
    entry = candles[entry_i]
    legs = tuple(TradeLeg(candles[i].ts_close_ms - 60_000, candles[i].close, qty * fraction,
                          qty * fraction * candles[i].close * 0.0002, reason)
                 for i, fraction, reason in exits)
    return Trade(signal_id, symbol, Side.BUY, entry.ts_open_ms, entry.open, qty, stop, legs,
                 entry_fee_usdt=qty * entry.open * 0.0005, funding_usdt=0.11)


def _signal(symbol: str, signal_id: str, candles: list[Candle], spike_i: int, decided_i: int,
            status: SignalStatus, reason: str) -> Signal:
    spike = candles[spike_i]
    events = [SetupEvent(spike.ts_open_ms, "spike", spike.low)]
    if status is SignalStatus.ENTERED:
        events.append(SetupEvent(candles[decided_i].ts_open_ms, "confirmed",
                                 candles[decided_i].close))
    metrics = {"body_atr": 2.5, "volume_ratio": 4.0, "drop_from_high_pct": 7.5,
               "oi_change_pct": -3.0 if symbol == BTC else None}
    return Signal(f"{symbol.split('/')[0]}-{signal_id}", symbol, spike.ts_open_ms,
                  candles[decided_i].ts_close_ms, status, reason, metrics, tuple(events))


def _script(symbol: str, candles: list[Candle], gate: GateDecision) -> dict:
    """One symbol's signals and trades around its largest red candle (the crash)."""
    spike_i = max(range(len(candles)), key=lambda i: candles[i].open - candles[i].close)
    entered = _signal(symbol, "crash", candles, spike_i, spike_i + 5, SignalStatus.ENTERED,
                      "entered")
    low = min(c.low for c in candles[spike_i:spike_i + 6])
    qty = 0.123 if symbol == BTC else 2.5
    trades = [(_trade(symbol, entered.signal_id, candles, spike_i + 6, qty, low * 0.995,
                      [(spike_i + 10, 0.5, "tp1"), (spike_i + 30, 0.5, "trailing_stop")]), gate)]
    signals = [(entered, gate)]
    if symbol == BTC:  # a second BTC trade, stopped out; ETH's second signal is refused
        late = _signal(symbol, "late", candles, spike_i + 60, spike_i + 64,
                       SignalStatus.ENTERED, "entered")
        signals.append((late, gate))
        stop = candles[spike_i + 65].open * 0.99
        trades.append((_trade(symbol, late.signal_id, candles, spike_i + 65, qty, stop,
                              [(spike_i + 70, 1.0, "stop")]), gate))
    else:
        signals.append((_signal(symbol, "late", candles, spike_i + 60, spike_i + 64,
                                SignalStatus.REJECTED, "portfolio: max_open_positions 1 "
                                "reached"), gate))
    return {"signals": signals, "trades": trades}


def _orders_and_fills(trade: Trade) -> tuple[OrderEvent, Fill]:
    intent = OrderIntent(f"{trade.signal_id}-entry", trade.symbol, Side.BUY, OrderType.MARKET,
                         trade.qty_base, OrderPurpose.ENTRY)
    fill = Fill(intent.client_id, trade.symbol, trade.entry_ms, Side.BUY, trade.entry_price,
                trade.qty_base, trade.entry_fee_usdt, False, OrderPurpose.ENTRY)
    return OrderEvent(trade.entry_ms, intent, "filled", "market entry"), fill


def record_scripted_two_symbol_run(recorder: Recorder) -> dict:
    """Drive `recorder` with the scripted two-symbol run; returns what was sent, per symbol
    (`by_symbol[symbol]`) and in the order it was recorded."""
    candles = {symbol: real_candles(symbol) for symbol in SYMBOLS}
    settings = Settings().with_symbols(SYMBOLS).model_dump(mode="json")
    run_id = recorder.start_run(RunInfo(
        "backtest", "binanceusdm", SYMBOLS, START_MS, END_MS,
        "data/btc_eth_2024-08_15m + hand-made BTC OI (SYNTHETIC)", settings))
    gates = [GateDecision(day, GateAction.ALLOW, 1.0, ("QT over",), {"walcl_change_musd": 5.0})
             for day in range(START_MS, END_MS, 86_400_000)]
    for gate in gates:
        recorder.gate_decision(gate, "daily")
    scripted = {symbol: _script(symbol, candles[symbol], gates[1]) for symbol in SYMBOLS}
    oi = [OpenInterest(c.ts_open_ms, 80_000.0 - 30 * i, None, BTC)
          for i, c in enumerate(candles[BTC])]

    eth = candles[ETH]
    assert [c.ts_open_ms for c in eth] == [c.ts_open_ms for c in candles[BTC]]
    for i, candle in enumerate(candles[BTC]):  # the two markets' candles, in time order
        recorder.open_interest(BTC, oi[i])
        recorder.signal_candle(BTC, candle)
        if (i + 1) % ETH_BLOCK == 0 or i + 1 == len(eth):
            block = eth[i - i % ETH_BLOCK:i + 1]
            record_signal_candles(recorder, ETH, CandleBlock(
                M15, *([getattr(c, key) for c in block] for key in
                       ("ts_open_ms", "open", "high", "low", "close", "volume"))))

    signals = sorted((pair for s in SYMBOLS for pair in scripted[s]["signals"]),
                     key=lambda pair: (pair[0].decided_ms, SYMBOLS.index(pair[0].symbol)))
    for signal, gate in signals:
        recorder.signal(signal, gate)
    trades = sorted((pair for s in SYMBOLS for pair in scripted[s]["trades"]),
                    key=lambda pair: (pair[0].entry_ms, SYMBOLS.index(pair[0].symbol)))
    orders, fills = [], []
    for trade, gate in trades:
        order, fill = _orders_and_fills(trade)
        orders.append(order)
        fills.append(fill)
        recorder.order(order)
        recorder.fill(fill)
        recorder.trade(trade, gate)
    equity, value = [], 10_000.0
    closes = sorted((trade.exit_ms, trade.pnl_usdt) for trade, _ in trades)
    for candle in candles[BTC]:
        while closes and closes[0][0] <= candle.ts_close_ms:
            value += closes.pop(0)[1]
        equity.append((candle.ts_close_ms, value))
        recorder.equity(candle.ts_close_ms, value)
    summary = {"trades": len(trades), "total_pnl_usdt": sum(t.pnl_usdt for t, _ in trades)}
    recorder.finish_run(summary)
    by_symbol = {
        symbol: {
            "candles": candles[symbol],
            "oi": oi if symbol == BTC else [],
            "signals": [pair for pair in signals if pair[0].symbol == symbol],
            "trades": [pair for pair in trades if pair[0].symbol == symbol],
            "orders": [order for order in orders if order.intent.symbol == symbol],
            "fills": [fill for fill in fills if fill.symbol == symbol],
        }
        for symbol in SYMBOLS
    }
    return {"run_id": run_id, "by_symbol": by_symbol, "signals": signals, "trades": trades,
            "orders": orders, "fills": fills, "equity": equity, "gates": gates,
            "summary": summary}
