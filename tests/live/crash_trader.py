"""Run one trade against the fake venue and SIGKILL ourselves at a named step (crash tests).

usage: python -m tests.live.crash_trader BASE_URL STATE_URL CRASH_STEP
"""

from __future__ import annotations

import os
import signal
import sys
import urllib.request

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.config import Settings
from cryptobot.engine.risk import KillSwitch
from cryptobot.secrets import ApiKeys
from tests.live.trade_driver import TradeDriver


class HttpVenueClock:
    def now_ms(self) -> int:
        return 1_722_816_000_000  # the fake venue starts its clock here


def main() -> None:
    base_url, state_url, crash_step = sys.argv[1:4]

    def on_step(step: str) -> None:
        if step == crash_step:
            os.kill(os.getpid(), signal.SIGKILL)

    base = Settings()
    settings = base.model_copy(update={"live": base.live.model_copy(update={
        "state_url": state_url, "request_timeout_ms": 2000, "retry_base_delay_s": 0.0})})
    keys = ApiKeys(key="CRASHKEY-123456", secret="CRASHSECRET-654321")
    broker, _ = build_live_broker(settings, keys, HttpVenueClock(),
                                  KillSwitch(settings.risk.kill_switch_file), rest_url=base_url,
                                  on_step=on_step)
    TradeDriver(broker, "sigC", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0).enter()
    urllib.request.urlopen(urllib.request.Request(f"{base_url}/_control/price?price=61500",
                                                  method="POST")).read()
    broker.poll()  # TP1 fill -> stop to break-even


if __name__ == "__main__":
    main()
