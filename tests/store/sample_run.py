"""A stored run built by hand on REAL candles (data/btc_2024-08_crash), for store and review tests.

The candles are real Binance 5m candles aggregated to 15m. The trades, signals and gate
decisions are hand-made around the real 2024-08-05 crash (no engine involved); the OI samples
are SYNTHETIC (hand-made, labelled so in the run's data source).
"""

from __future__ import annotations

import csv
from pathlib import Path

from cryptobot.config import Settings
from cryptobot.engine.recorder import OrderEvent, Recorder, RunInfo
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

REPO_ROOT = Path(__file__).resolve().parents[2]
CRASH_CSV = REPO_ROOT / "data" / "btc_2024-08_crash" / "binance_um_BTCUSDT_5m_2024-08-05_window.csv"
M15 = 15 * 60_000
SYMBOL = "BTC/USDT:USDT"


def real_15m_candles(first_ms: int, last_ms: int) -> list[Candle]:
    """Real 5m candles of the crash window aggregated to 15m, open times in [first, last],
    tagged with their symbol (as the recorder stores them)."""
    groups: dict[int, list[list[float]]] = {}
    with CRASH_CSV.open() as handle:
        for row in csv.DictReader(handle):
            ts = int(row["open_time_ms"])
            if first_ms <= ts < last_ms + M15:
                values = [float(row[k]) for k in ("open", "high", "low", "close", "volume")]
                groups.setdefault(ts - ts % M15, []).append(values)
    return [
        Candle(
            ts,
            M15,
            rows[0][0],
            max(r[1] for r in rows),
            min(r[2] for r in rows),
            rows[-1][3],
            sum(r[4] for r in rows),
            SYMBOL,
        )
        for ts, rows in sorted(groups.items())
        if len(rows) == 3
    ]


def _gate(ts_ms: int, action: GateAction, factor: float, *reasons: str) -> GateDecision:
    return GateDecision(ts_ms, action, factor, reasons, {"walcl_change_musd": -31_000.0})


def _trade(
    signal_id: str,
    candles: list[Candle],
    entry_i: int,
    stop: float,
    exits: list[tuple[int, float, str]],
) -> Trade:
    entry = candles[entry_i]
    qty = 0.123
    legs = tuple(
        TradeLeg(
            candles[i].ts_open_ms + M15 - 60_000,
            candles[i].close if price is None else price,
            qty * fraction,
            qty * fraction * 50_000 * 0.0002,
            reason,
        )
        for (i, fraction, reason), price in exits
    )
    return Trade(
        signal_id,
        SYMBOL,
        Side.BUY,
        entry.ts_open_ms,
        entry.open,
        qty,
        stop,
        legs,
        entry_fee_usdt=qty * entry.open * 0.0005,
        funding_usdt=0.37,
    )


def record_sample_run(recorder: Recorder, *, oi_synthetic: bool = True) -> dict:
    """Drive `recorder` with a hand-made run; returns what was sent, for comparison."""
    start_ms, end_ms = 1722729600000, 1722988800000  # 2024-08-04 00:00 .. 2024-08-07 00:00
    candles = real_15m_candles(start_ms, end_ms - M15)
    spike_i = max(range(len(candles)), key=lambda i: candles[i].open - candles[i].close)
    spike = candles[spike_i]
    low_i = min(range(spike_i, spike_i + 8), key=lambda i: candles[i].low)
    confirm_i = low_i + 3
    source = "data/btc_2024-08_crash" + (" + hand-made OI (SYNTHETIC)" if oi_synthetic else "")
    run_id = recorder.start_run(
        RunInfo(
            "backtest", "binanceusdm", (SYMBOL,), start_ms, end_ms, source,
            Settings().model_dump(),
        )
    )
    gates = [
        _gate(day, GateAction.REDUCE, 0.5, "QT active", "HYG flat")
        for day in range(start_ms, end_ms, 86_400_000)
    ]
    for gate in gates:
        recorder.gate_decision(gate, "daily")
    entered_gate = _gate(candles[confirm_i].ts_close_ms, GateAction.REDUCE, 0.5, "QT active")
    blocked_gate = _gate(
        candles[confirm_i + 40].ts_close_ms, GateAction.BLOCK, 0.0, "QT active", "HYG down"
    )
    stop = candles[low_i].low - 55.5
    events = (
        SetupEvent(spike.ts_open_ms, "spike", spike.low),
        SetupEvent(candles[low_i].ts_open_ms, "new_low", candles[low_i].low),
        SetupEvent(candles[low_i + 1].ts_open_ms, "candidate", candles[low_i + 1].low),
        SetupEvent(candles[confirm_i].ts_open_ms, "confirmed", candles[confirm_i].close),
    )
    metrics = {
        "body_atr": 3.91,
        "volume_ratio": 7.25,
        "drop_from_high_pct": 9.8,
        "oi_change_pct": -4.2,
    }
    signals = [
        (
            Signal(
                "sig-early",
                SYMBOL,
                candles[10].ts_open_ms,
                candles[11].ts_open_ms,
                SignalStatus.REJECTED,
                "volume too low",
                {
                    "body_atr": 1.7,
                    "volume_ratio": 2.1,
                    "drop_from_high_pct": 4.4,
                    "oi_change_pct": None,
                },
                (SetupEvent(candles[10].ts_open_ms, "spike", candles[10].low),),
            ),
            None,
        ),
        (
            Signal(
                "sig-crash",
                SYMBOL,
                spike.ts_open_ms,
                candles[confirm_i].ts_close_ms,
                SignalStatus.ENTERED,
                "entered",
                metrics,
                events,
            ),
            entered_gate,
        ),
        (
            Signal(
                "sig-blocked",
                SYMBOL,
                candles[confirm_i + 30].ts_open_ms,
                candles[confirm_i + 40].ts_close_ms,
                SignalStatus.REJECTED,
                "gate BLOCK: QT active; HYG down",
                dict(metrics, oi_change_pct=-1.9),
                (
                    SetupEvent(
                        candles[confirm_i + 30].ts_open_ms, "spike", candles[confirm_i + 30].low
                    ),
                ),
            ),
            blocked_gate,
        ),
    ]
    trades = [
        (
            _trade(
                "sig-crash",
                candles,
                confirm_i + 1,
                stop,
                [
                    ((confirm_i + 5, 0.5, "tp1"), None),
                    ((confirm_i + 20, 0.5, "trailing_stop"), None),
                ],
            ),
            entered_gate,
        ),
        (
            _trade(
                "sig-late",
                candles,
                confirm_i + 60,
                candles[confirm_i + 60].open - 400.25,
                [((confirm_i + 70, 1.0, "stop"), candles[confirm_i + 60].open - 400.25)],
            ),
            None,
        ),
    ]
    for candle in candles:
        recorder.signal_candle(SYMBOL, candle)
    oi = [
        OpenInterest(c.ts_open_ms, 80_000.0 - 40 * i, (80_000.0 - 40 * i) * c.close, SYMBOL)
        for i, c in enumerate(candles)
    ]
    for sample in oi:
        recorder.open_interest(SYMBOL, sample)
    for signal, gate in signals:
        recorder.signal(signal, gate)
    orders, fills = [], []
    for trade, gate in trades:
        intent = OrderIntent(
            f"{trade.signal_id}-entry",
            SYMBOL,
            Side.BUY,
            OrderType.MARKET,
            trade.qty_base,
            OrderPurpose.ENTRY,
        )
        orders.append(OrderEvent(trade.entry_ms, intent, "filled", "market entry"))
        fills.append(
            Fill(
                intent.client_id,
                SYMBOL,
                trade.entry_ms,
                Side.BUY,
                trade.entry_price,
                trade.qty_base,
                trade.entry_fee_usdt,
                False,
                OrderPurpose.ENTRY,
            )
        )
        recorder.order(orders[-1])
        recorder.fill(fills[-1])
        recorder.trade(trade, gate)
    equity = [
        (c.ts_close_ms, 10_000.0 + 0.1 * i - (3.0 if i > len(candles) // 2 else 0.0))
        for i, c in enumerate(candles)
    ]
    for ts_ms, value in equity:
        recorder.equity(ts_ms, value)
    summary = {
        "trades": len(trades),
        "total_pnl_usdt": sum(t.pnl_usdt for t, _ in trades),
        "profit_factor": float("inf"),
    }
    recorder.finish_run(summary)
    return {
        "run_id": run_id,
        "candles": candles,
        "oi": oi,
        "signals": signals,
        "trades": trades,
        "gates": gates,
        "orders": orders,
        "fills": fills,
        "equity": equity,
        "summary": summary,
    }
