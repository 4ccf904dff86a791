"""The fake Binance order server (fake_binance.py) in a process of its own, driven from the
parent over its unsigned /_control/ routes (fake_binance_control.py).

A latency benchmark runs the bot against it: in the bot's own process the fake's handlers
would run on the bot's interpreter lock, and each round trip would count the venue's CPU time
as the bot's. The venue is the same code, state and fault plan as in the tests (a fresh
`FakeExchangeState` and `FaultPlan`, `fill_parts` trades per taker order).

    python -m tests.live.fake_binance_process PRICE NOW_MS FILL_PARTS

prints `port N` once it listens and serves until its stdin closes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
from pathlib import Path

from cryptobot.model import Candle
from tests.live.fake_binance import FakeBinanceServer, VenueUrls
from tests.live.fake_binance_state import FakeExchangeState

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeBinanceProcess(VenueUrls):
    """The child process and a client for its control routes. `clock` is the venue's time as
    a Clock with a `sleep` that moves it (VenueClock's interface): the time it reads is the
    last the venue answered (a walk or a sleep), so reading it costs no request."""

    def __init__(self, price: float, now_ms: int, fill_parts: int = 1) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tests.live.fake_binance_process", repr(price), str(now_ms),
             str(fill_parts)],
            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._child.stdout is not None
        line = self._child.stdout.readline().split()
        if line[:1] != ["port"]:
            self.stop()
            raise RuntimeError(f"the fake venue did not start: {line}")
        self.port = int(line[1])
        self._now_ms = now_ms

    def control(self, path: str, payload: dict | None = None, method: str = "POST") -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        self._now_ms = int(answer.get("now_ms", self._now_ms))
        return answer

    def walk_candle(self, candle: Candle, symbol: str = "BTCUSDT") -> None:
        """The venue's price through `candle` (FakeExchangeState.walk_candle)."""
        self.control("/_control/walk", {
            "ts_open_ms": candle.ts_open_ms, "ts_close_ms": candle.ts_close_ms,
            "open": candle.open, "high": candle.high, "low": candle.low, "close": candle.close,
            "symbol": symbol})

    def now_ms(self) -> int:
        return self._now_ms

    def sleep(self, seconds: float) -> None:
        self.control(f"/_control/sleep?ms={math.ceil(seconds * 1000)}")

    def snapshot(self) -> dict:
        return self.control("/_control/state", method="GET")

    def stop(self) -> None:
        if self._child.stdin is not None:
            self._child.stdin.close()
        try:
            self._child.wait(10)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()

    def __enter__(self) -> FakeBinanceProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _serve(price: float, now_ms: int, fill_parts: int) -> None:
    server = FakeBinanceServer(FakeExchangeState([price], now_ms=now_ms),
                               fill_parts=fill_parts).start()
    print("port", server.port, flush=True)
    try:
        sys.stdin.read()  # until the parent closes it (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    _serve(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
