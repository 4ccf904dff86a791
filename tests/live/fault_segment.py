"""One bot process of the live fault suite (benchmarks/live_faults.py, test_live_crash.py).

It runs the real `run_live_session` (Engine, LiveBroker, SqlRecorder) against the fake Binance
order server at `--venue`, which lives in the PARENT process so that its state outlives a kill,
and its own loopback market replay (`ReplayVenue`) of the crash data for [--start, --end).
Before the engine handles a candle the venue is walked through it (`POST /_control/walk`) and
then the engine's SimClock moves; the broker's retries sleep on the venue's clock
(`POST /_control/sleep`), so nothing waits on the wall clock.

The kill hook (the broker's `on_step`): each step name is looked up in the kill plan
(`{"steps": {name: probability}, "default": probability, "once": bool}`; `once`: a name is
drawn only the first time it is reached); at the first step drawn with `--seed`, the process
SIGKILLs itself.

What the parent reads (`--record`, JSON lines, written as they happen, line-buffered):
  {"event": "start", "venue_ms": ..., "pid": ...}     the venue's clock at start
  {"event": "walk", "close_ms": ...}                   a candle the venue was walked through
  {"event": "step", "step": ...}                       each broker step seen
  {"event": "kill", "step": ...}                       just before the SIGKILL
  {"event": "end", "stopped_by": ..., "restored": ..., "trades": ...}
The console goes to `--console`. Once the first candle has been handled, the parent is told
(`POST /_faults/mark?segment=N`) so that it can look at the venue at that moment.

    python -m tests.live.fault_segment --config PATH --venue URL --start ISO --end ISO
        [--walked-until MS] [--seed N] [--kill-plan JSON] [--record PATH] [--console PATH]
        [--segment N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import random
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

KEYS = ("FAULTSUITEKEY-5a4b3c2d1e", "FAULTSUITESECRET-1f2e3d4c5b6a")


def http_json(url: str, payload: dict[str, Any] | None = None, method: str = "POST",
              timeout_s: float = 30.0) -> Any:
    """A control call to the fake venue (not through ccxt: no faults, no latency)."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body = response.read()
    return json.loads(body) if body else None


def walk_venue(venue_url: str, candle) -> None:
    http_json(f"{venue_url}/_control/walk", {
        "ts_open_ms": candle.ts_open_ms, "ts_close_ms": candle.ts_close_ms,
        "open": candle.open, "high": candle.high, "low": candle.low, "close": candle.close})


def venue_time_ms(venue_url: str) -> int:
    return int(http_json(f"{venue_url}/fapi/v1/time", method="GET")["serverTime"])


def sleep_on_venue(venue_url: str, seconds: float) -> None:
    """A retry's back-off, on the venue's simulated clock (a wait is never cut short)."""
    if seconds > 0:
        http_json(f"{venue_url}/_control/sleep?ms={math.ceil(seconds * 1000)}")


class VenueTimeClock:
    """The venue's simulated clock (what `sleep_on_venue` moves): the order gateway measures
    the venue's waits on it."""

    def __init__(self, venue_url: str) -> None:
        self.venue_url = venue_url

    def now_ms(self) -> int:
        return venue_time_ms(self.venue_url)


class Record:
    """The segment's JSON-lines record; each line reaches the OS before the next step runs."""

    def __init__(self, path: Path | None) -> None:
        self.file = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def write(self, **event: Any) -> None:
        if self.file is not None:
            self.file.write(json.dumps(event) + "\n")


class KillHook:
    """The broker's `on_step`: SIGKILL this process at the first step drawn from the plan."""

    def __init__(self, plan: dict[str, Any], seed: int, record: Record) -> None:
        self.steps = dict(plan.get("steps") or {})
        self.default = float(plan.get("default") or 0.0)
        self.once = bool(plan.get("once"))  # each step name drawn the first time only
        self.seen: set[str] = set()
        self.rng = random.Random(seed)
        self.record = record

    def __call__(self, step: str) -> None:
        self.record.write(event="step", step=step)
        if self.once and step in self.seen:
            return
        self.seen.add(step)
        chance = float(self.steps.get(step, self.default))
        if chance > 0 and self.rng.random() < chance:
            self.record.write(event="kill", step=step)
            os.kill(os.getpid(), signal.SIGKILL)


async def run_segment(args: argparse.Namespace) -> None:
    from rich.console import Console

    from cryptobot.cli.live_run import LiveVenue, run_live_session
    from cryptobot.clock import SimClock
    from cryptobot.config import load_settings
    from cryptobot.exchange.replay import ReplayVenue
    from cryptobot.logs import configure_logging
    from cryptobot.runners.stream_session import advance_sim_clock
    from cryptobot.secrets import ApiKeys
    from tests.live.loopback_live import load_window

    record = Record(args.record)
    settings = load_settings(args.config)
    configure_logging(settings.logging.dir, "INFO", settings.logging.max_bytes, 1, console=False)
    window = load_window(settings, args.start, args.end)
    venue_url = args.venue.rstrip("/")
    hook = KillHook(json.loads(args.kill_plan), args.seed, record)
    engine_clock = SimClock(window.start_ms)
    move_engine_clock = advance_sim_clock(engine_clock)
    walked = {"until_ms": args.walked_until or window.start_ms, "candles": 0}

    def advance(ts_ms: int) -> None:
        candle = window.candles_by_close.get(ts_ms)
        if candle is not None and ts_ms > walked["until_ms"]:
            if walked["candles"] == 1:  # the first candle has been handled whole
                mark_first_candle()
            walk_venue(venue_url, candle)
            walked["until_ms"] = ts_ms
            walked["candles"] += 1
            record.write(event="walk", close_ms=ts_ms)
        move_engine_clock(ts_ms)

    def mark_first_candle() -> None:
        http_json(f"{venue_url}/_faults/mark?segment={args.segment}&label=first_candle")
        record.write(event="first_candle_handled")

    console_file = open(args.console, "w", buffering=1) if args.console else sys.stdout  # noqa: SIM115
    console = Console(file=console_file, width=200, color_system=None)
    record.write(event="start", venue_ms=venue_time_ms(venue_url), pid=os.getpid(),
                 start_ms=window.start_ms, end_ms=window.end_ms)
    async with ReplayVenue(window.market, window.start_ms, window.end_ms) as replay:
        venue = LiveVenue(
            engine_clock, advance, feed_clock=replay.clock, exchange_time=replay.time_driver(),
            market_rest_url=replay.rest_url, ws_url=replay.ws_url, orders_rest_url=venue_url,
            user_stream_url=venue_url.replace("http://", "ws://") + "/private/ws",
            rate_limit=False, sleep=functools.partial(sleep_on_venue, venue_url),
            wait_clock=VenueTimeClock(venue_url),
            kill_check_s=0.2, until_ms=window.end_ms, on_step=hook)
        keys = ApiKeys(key=KEYS[0], secret=KEYS[1])
        outcome = await run_live_session(settings, keys, venue, console, settings.store.url,
                                         heartbeat=True)
    if walked["candles"] == 1:
        mark_first_candle()
    engine = outcome.run.engine if outcome.run is not None else None
    record.write(event="end", stopped_by=outcome.stopped_by, restored=outcome.restored,
                 trades=len(engine.trades) if engine is not None else 0,
                 walked_until_ms=walked["until_ms"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--venue", required=True, help="the fake order server's base URL")
    parser.add_argument("--start", required=True, help="first candle's open (ISO, UTC)")
    parser.add_argument("--end", required=True, help="stop once a candle closes here (ISO)")
    parser.add_argument("--walked-until", type=int, default=0,
                        help="the venue was walked through the candles closing by this ms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kill-plan", default="{}")
    parser.add_argument("--record", type=Path)
    parser.add_argument("--console", type=Path)
    parser.add_argument("--segment", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run_segment(parse_args(argv)))


if __name__ == "__main__":
    main()
