"""What of a paper or live run is told to the notifier, and the context the run goes in.

`RunNotices` wraps the run's recorder (everything passes on unchanged): the run's start and end,
each entry and exit fill, each closed trade, and a summary of each UTC day of the run's clock.
`NoticeLogHandler` forwards the warnings a trader must hear: a stop not placed (or placed late,
after the venue's wait), the protection fallback, reconciliation corrections, the kill switch,
a session stopped. `run_notifications` starts and ends it all around a run, and tells a run
stopping on an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptobot.clock import DAY_MS, Clock, iso_utc
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
    GateDecision,
    OpenInterest,
    OrderPurpose,
    Side,
    Signal,
    Trade,
)
from cryptobot.notify.notifier import Notice, Notifier
from cryptobot.secrets import notify_urls, redact

# log events told, with the title they get
LOG_NOTICES = {
    "protection": "protection",
    "protection_fallback": "protection fallback",
    "reconcile": "reconciliation",
    "flatten": "position closed at market",
    "kill_switch": "kill switch",
    "session_stopped": "session stopped",
}


class RunNotices:
    def __init__(self, inner: Recorder, notifier: Notifier) -> None:
        self.inner = inner
        self.notifier = notifier
        self._day_ms: int | None = None  # the UTC day being summarised (the run's clock)
        self._day_trades: list[Trade] = []
        self._equity_usdt: float | None = None
        self._fills: dict[str, list[Fill]] = {}  # by order: told as one, when the batch is over

    def __getattr__(self, name: str) -> Any:  # run_id, flush, commit ... of the store
        return getattr(self.inner, name)

    def _tell(self, kind: str, title: str, body: str) -> None:
        self.notifier.notify(Notice(kind, f"{self.notifier.label}: {title}", redact(body)))

    def start_run(self, info: RunInfo) -> str:
        run_id = self.inner.start_run(info)
        self.notifier.label = f"cryptobot {info.mode} run {run_id}"
        self._tell("run", "started", f"{info.exchange} {', '.join(info.symbols)} "
                                     f"({info.data_source})")
        return run_id

    def fill(self, fill: Fill) -> None:
        """Kept until the next other event: an order filled in several trades (Binance splits
        a market order) is one message, with its quantity and average price."""
        self.inner.fill(fill)
        self._new_day(fill.ts_ms)
        self._fills.setdefault(fill.client_id, []).append(fill)

    def _tell_fills(self) -> None:
        for client_id, fills in self._fills.items():
            first, qty = fills[0], sum(fill.qty_base for fill in fills)
            price = sum(fill.price * fill.qty_base for fill in fills) / qty if qty else 0.0
            parts = f" in {len(fills)} fills" if len(fills) > 1 else ""
            what = f"{qty:g} @ {price:,.2f}{parts} at {iso_utc(fills[-1].ts_ms)} ({client_id})"
            if first.purpose is OrderPurpose.ENTRY:
                side = "long" if first.side is Side.BUY else "short"
                self._tell("entry", f"entry {first.symbol}", f"{side} {what}")
            else:
                self._tell("exit", f"exit {first.symbol} ({first.purpose})",
                           f"{first.side} {what}")
        self._fills.clear()

    def trade(self, trade: Trade, gate: GateDecision | None) -> None:
        self.inner.trade(trade, gate)
        self._tell_fills()
        self._new_day(trade.exit_ms)
        self._day_trades.append(trade)
        side = "long" if trade.side is Side.BUY else "short"
        self._tell("trade", f"trade closed {trade.symbol}",
                   f"{side} {iso_utc(trade.entry_ms)} -> {iso_utc(trade.exit_ms)}: PnL "
                   f"{trade.pnl_usdt:+,.2f} USDT ({trade.r_multiple:+.2f}R, {trade.exit_reason})")

    def equity(self, ts_ms: int, equity_usdt: float) -> None:
        self.inner.equity(ts_ms, equity_usdt)
        self._tell_fills()
        self._new_day(ts_ms)
        self._equity_usdt = equity_usdt

    def signal_candle(self, symbol: str, candle: Candle) -> None:
        self.inner.signal_candle(symbol, candle)
        self._tell_fills()
        self._new_day(candle.ts_close_ms)

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.inner.finish_run(summary)
        self._tell_fills()
        self._tell("run", "finished", f"{summary.get('trades', 0)} trades, PnL "
                   f"{summary.get('total_pnl_usdt', 0.0):+,.2f} USDT, position "
                   f"{summary.get('open_position_detail', '-')}")

    def _new_day(self, ts_ms: int) -> None:
        """The summary of the day before, once the run's clock is past it."""
        day_ms = ts_ms - ts_ms % DAY_MS
        if self._day_ms is None:
            self._day_ms = day_ms
        if day_ms <= self._day_ms:
            return
        trades, pnl = self._day_trades, sum(trade.pnl_usdt for trade in self._day_trades)
        equity = "" if self._equity_usdt is None else f", equity {self._equity_usdt:,.2f} USDT"
        self._tell("daily", f"day {iso_utc(self._day_ms)[:10]}",
                   f"{len(trades)} trades closed, PnL {pnl:+,.2f} USDT{equity}")
        self._day_ms, self._day_trades = day_ms, []

    # passed on unchanged: the Recorder protocol in full
    def signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self.inner.signal(signal, gate)
        self._tell_fills()

    def gate_decision(self, decision: GateDecision, trigger: str) -> None:
        self.inner.gate_decision(decision, trigger)

    def order(self, event: OrderEvent) -> None:
        self.inner.order(event)
        self._tell_fills()

    def signal_candles(self, symbol: str, block: CandleBlock) -> None:
        record_signal_candles(self.inner, symbol, block)

    def open_interest(self, symbol: str, sample: OpenInterest) -> None:
        self.inner.open_interest(symbol, sample)
        self._tell_fills()


class NoticeLogHandler(logging.Handler):
    """Warnings of the events in LOG_NOTICES, as notices (the record's text, redacted)."""

    def __init__(self, notifier: Notifier) -> None:
        super().__init__(logging.WARNING)
        self.notifier = notifier

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event in LOG_NOTICES:
            self.notifier.notify(Notice(event, f"{self.notifier.label}: {LOG_NOTICES[event]}",
                                        redact(record.getMessage())))


def with_notices(recorder: Recorder, notifier: Notifier | None) -> Recorder:
    """`recorder`, telling `notifier` (if any) what a trader must hear."""
    return recorder if notifier is None else RunNotices(recorder, notifier)


@contextmanager
def run_notifications(clock: Clock, what: str) -> Iterator[Notifier | None]:
    """A started Notifier to the URLs in the environment (None: no URL set) for the run inside;
    a run stopping on an error (not Ctrl-C) is told; what is queued is sent at the end."""
    urls = notify_urls()
    if not urls:
        yield None
        return
    from cryptobot.notify.apprise_sink import apprise_sinks

    notifier = Notifier(apprise_sinks(urls), clock).start()
    notifier.label = f"cryptobot {what}"
    handler = NoticeLogHandler(notifier)
    logger = logging.getLogger("cryptobot")
    logger.addHandler(handler)
    try:
        yield notifier
    except Exception as exc:
        notifier.notify(Notice("error", f"{notifier.label}: stopped by an error",
                               redact(f"{type(exc).__name__}: {exc}")))
        raise
    finally:
        logger.removeHandler(handler)
        notifier.close()
