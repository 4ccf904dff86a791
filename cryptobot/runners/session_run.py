"""One paper or live session's run: what it built, and how it ends (summarised and stored).

Paper and live build the same things (an engine on a TradingSession, a recorder that prints and
stores) and end the same way; only their brokers and feeds differ. Kept outside the event loop
so that Ctrl-C, the kill switch or an error can still close the run properly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptobot.config import Settings
from cryptobot.engine.loop import Engine
from cryptobot.engine.recorder import Recorder
from cryptobot.exchange.feed import FeedEvent
from cryptobot.model import Candle
from cryptobot.runners.stream_session import TradingSession


class SessionRecorder(Recorder, Protocol):
    """The run's recorder: stores, and knows the position it has seen filled."""

    def on_event(self, event: FeedEvent) -> None: ...

    def position_text(self) -> str: ...


@dataclass
class SessionRun:
    settings: Settings
    symbol: str
    recorder: SessionRecorder
    db_url: str
    engine: Engine | None = None
    session: TradingSession | None = None
    oi_synthetic: bool = False
    prices: list[float] = field(default_factory=list)  # first open, last close traded
    start_ms: int | None = None
    stop_reason: str | None = None  # why it ended before its span did (Ctrl-C), if it did

    @property
    def run_id(self) -> str | None:
        return getattr(self.recorder, "run_id", None)


class PriceTracker:
    """The session's observer: feeds the recorder's heartbeat and remembers the first and last
    price traded (for buy-and-hold)."""

    def __init__(self, run: SessionRun) -> None:
        self.run = run

    def on_event(self, event: FeedEvent) -> None:
        self.run.recorder.on_event(event)
        if isinstance(event, Candle):
            if not self.run.prices:
                self.run.prices.append(event.open)
            self.run.prices[1:] = [event.close]


def finish_session(run: SessionRun) -> dict[str, Any]:
    """Summarise, store (open position included) and return the summary."""
    from cryptobot.report.summary import cost_notes, summarize

    engine = run.engine
    assert engine is not None
    engine.finish()
    now_ms = engine.clock.now_ms()
    summary = summarize(
        engine.trades, engine.signals, run.settings.risk.starting_equity_usdt,
        first_price=run.prices[0] if run.prices else None,
        last_price=run.prices[-1] if run.prices else None,
        span_ms=now_ms - (run.start_ms or now_ms), exposure_ms=engine.exposure_ms,
        funding_charged=run.settings.costs.funding and engine.funding_seen,
        oi_synthetic=run.oi_synthetic, oi_samples=len(engine.open_interest),
        open_position=engine.open_position(run.prices[-1] if run.prices else None))
    summary.update(cost_notes(run.settings.costs, engine.funding_seen))
    summary["open_position_detail"] = run.recorder.position_text()
    # The store's run row keeps the span asked for; when the run really stopped goes here.
    if run.session is not None and run.session.stopped_early:
        run.stop_reason = run.stop_reason or "kill switch"
    summary["stopped_ms"] = now_ms
    summary["stopped_early"] = run.stop_reason
    run.recorder.finish_run(summary)
    return summary
