"""Run `cryptobot paper` and send ourselves a real signal at a chosen moment (resume tests).

usage: python -m tests.resume.interrupt_paper SIGNAL WHEN[:NTH] [committed] -- PAPER_ARGS...

SIGNAL: TERM, HUP or KILL. WHEN is checked after the engine has handled each base candle:
`setup` (the strategy waits on a setup, no position), `entry` (an entry sent, not filled),
`position` (a position open), `tp1` (a position open after TP1), `candle` (any candle); NTH:
the nth candle where it holds (default 1). The signal goes at once, so a KILL lands before that
candle's rows are committed; with `committed`, once the session has committed them. TERM and
HUP are handled by the command between two events either way.
"""

from __future__ import annotations

import os
import signal
import sys

from cryptobot.cli import main as cryptobot_main
from cryptobot.engine.loop import Engine
from cryptobot.runners.stream_session import TradingSession

CONDITIONS = {
    "setup": lambda e: e.is_idle() and e.strategy_waiting(),
    "entry": lambda e: not e.is_idle() and e.open_position(None) is None,
    "position": lambda e: e.open_position(None) is not None,
    "tp1": lambda e: (held := e.open_position(None)) is not None
    and held["qty"] < held["qty_at_entry"],
    "candle": lambda e: True,
}


def main() -> None:
    name, when = sys.argv[1], sys.argv[2]
    committed = "committed" in sys.argv[3:sys.argv.index("--")]
    args = sys.argv[sys.argv.index("--") + 1:]
    sig = getattr(signal, f"SIG{name}")
    condition, _, nth = when.partition(":")
    holds, left, due = CONDITIONS[condition], [int(nth or 1)], [False]
    on_base_candle, handle = Engine.on_base_candle, TradingSession.handle

    def checked_candle(engine: Engine, candle) -> None:
        on_base_candle(engine, candle)
        if left[0] > 0 and holds(engine):
            left[0] -= 1
            if left[0] == 0:
                due[0] = True
                if not committed:
                    os.kill(os.getpid(), sig)

    def checked_event(session: TradingSession, event) -> None:
        handle(session, event)  # the engine, then the recorder's commit
        if due[0] and committed:
            due[0] = False
            os.kill(os.getpid(), sig)

    Engine.on_base_candle = checked_candle  # type: ignore[method-assign]
    TradingSession.handle = checked_event  # type: ignore[method-assign]
    cryptobot_main(args)


if __name__ == "__main__":
    main()
