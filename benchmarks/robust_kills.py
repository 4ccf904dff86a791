"""Kill a paper replay at random points, resume it, and count what was lost: issue 13's kill
and resume counts.

    kill_and_resume(kills, seed) -> dict
        `kills` runs of `cryptobot paper --replay` (the bundled crash window, real Binance 5m
        candles, SYNTHETIC open interest, so `oi_confirmation = false`), each stopped twice at
        random points drawn with `seed` (once by kill -9, once by SIGTERM, in a random order),
        resumed with `--resume` after each stop and run to the end. Counts:
        kill9, sigterm      the signals sent (each while the run was streaming)
        trades_lost         trades printed to the console before a stop, missing from the store
        resumed             resumes that ran to their end (or to the next stop) with exit 0
        resume_mismatches   runs whose final signals, orders, fills or trades differ from an
                            uninterrupted run's
        open_at_stop        stops that left a position open (from the stored journal)
        setup_at_stop       stops between a spike and its decision (the strategy was waiting)

Goals: kill9 = sigterm = kills, trades_lost 0, resumed 2 x kills, resume_mismatches 0.
A stop point is the n-th heartbeat line (one per closed 15m candle) the process prints, n drawn
at random; the signal goes as soon as that line is read, so the process has usually gone on a
little (at --speed 0, a few candles).

    python benchmarks/robust_kills.py [--kills 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CRASH_DATA = REPO / "data" / "btc_2024-08_crash"
REPLAY_CONFIG = REPO / "config" / "replay.toml"
WINDOW = ("--from", "2024-08-01", "--to", "2024-08-07")  # 7 days, 2016 candles, ~8 trades
HEARTBEAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ close ")
TRADE = re.compile(r"TRADE\s+(\S+) -> (\S+) PnL")
TIMEOUT_S = 300


def _config(folder: Path) -> Path:
    path = folder / "paper.toml"
    path.write_text(f'extends = "{REPLAY_CONFIG}"\n[logging]\ndir = "{folder / "logs"}"\n'
                    f'[risk]\nkill_switch_file = "{folder / "KILL"}"\n'
                    "[strategy.params]\noi_confirmation = false\n")
    return path


def _command(config: Path, db: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cryptobot", "paper", "--config", str(config), "--replay",
            str(CRASH_DATA), *WINDOW, "--speed", "0", "--db", db, *extra]


def _run(command: list[str], stop_at: int | None = None,
         sig: signal.Signals | None = None) -> tuple[int, list[str], bool]:
    """Run, reading stdout line by line; at the `stop_at`-th heartbeat send `sig`. Returns the
    exit code, the lines printed, and whether the signal was sent."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    lines, beats, sent = [], 0, False
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if HEARTBEAT.match(line):
            beats += 1
            if stop_at is not None and sig is not None and beats == stop_at and not sent:
                process.send_signal(sig)
                sent = True
    return process.wait(timeout=TIMEOUT_S), lines, sent


def _printed_trades(lines: list[str]) -> set[tuple[str, str]]:
    return {(match[1], match[2]) for line in lines if (match := TRADE.search(line))}


def _stored(db: str) -> dict[str, list]:
    from cryptobot.store import open_store

    store = open_store(db)
    try:
        run_id = store.resolve_run(None)
        return {"signals": store.signals(run_id), "orders": store.orders(run_id),
                "fills": store.fills(run_id), "trades": store.trades(run_id)}
    finally:
        store.close()


def _stored_trades(db: str) -> set[tuple[str, str]]:
    from cryptobot.clock import iso_utc

    def minute(ts_ms: int) -> str:
        return iso_utc(ts_ms)[:16] + "Z"

    try:
        trades = _stored(db)["trades"]
    except Exception:  # noqa: BLE001 - a store that does not exist yet holds no trade
        return set()
    return {(minute(trade.entry_ms), minute(trade.exit_ms)) for trade, _ in trades}


def _state_at_stop(db: str, reference: dict[str, list]) -> tuple[bool, bool]:
    """(a position was open, a setup was pending) where the stored run stopped."""
    from cryptobot.runners.restore import RunJournal, handled_until_ms
    from cryptobot.store import open_store

    store = open_store(db)
    try:
        run_id = store.resolve_run(None)
        start_ms = store.run_info(run_id).start_ms or 0
        orders, gates = store.orders(run_id), store.gate_decisions(run_id)
        until = handled_until_ms(start_ms, store.candles(run_id), orders, gates)
        journal = RunJournal(store.signals(run_id), orders, store.fills(run_id),
                             store.trades(run_id))
    finally:
        store.close()
    waiting = any(signal.spike_ms < until < signal.decided_ms
                  for signal, _ in reference["signals"])
    return bool(journal.open_positions()), waiting


def kill_and_resume(kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    counts = {"kill9": 0, "sigterm": 0, "trades_lost": 0, "resumed": 0, "resume_mismatches": 0,
              "open_at_stop": 0, "setup_at_stop": 0}
    notes: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cryptobot-kills-") as tmp:
        folder = Path(tmp)
        config = _config(folder)
        reference_db = f"sqlite:///{folder / 'reference.sqlite'}"
        code, lines, _ = _run(_command(config, reference_db))
        if code != 0:
            raise RuntimeError("the uninterrupted run failed:\n" + "".join(lines[-20:]))
        beats = sum(1 for line in lines if HEARTBEAT.match(line))
        reference = _stored(reference_db)
        for number in range(kills):
            db = f"sqlite:///{folder / f'run{number}.sqlite'}"
            order = [signal.SIGKILL, signal.SIGTERM]
            rng.shuffle(order)
            first = rng.randint(2, beats // 2)
            stops = [first, rng.randint(2, max(3, beats - first - 10))]
            extra: tuple[str, ...] = ()
            for sig, stop_at in zip(order, stops, strict=True):
                code, lines, sent = _run(_command(config, db, *extra), stop_at, sig)
                if extra:
                    counts["resumed"] += code in (0, -signal.SIGKILL)
                if not sent:
                    notes.append(f"run {number}: ended before heartbeat {stop_at}")
                    continue
                counts["kill9" if sig is signal.SIGKILL else "sigterm"] += 1
                lost = _printed_trades(lines) - _stored_trades(db)
                counts["trades_lost"] += len(lost)
                held, waiting = _state_at_stop(db, reference)
                counts["open_at_stop"] += held
                counts["setup_at_stop"] += waiting
                extra = ("--resume",)
            code, lines, _ = _run(_command(config, db, "--resume"))
            counts["resumed"] += code == 0
            if code != 0:
                notes.append(f"run {number}: the last resume exited {code}: "
                              + "".join(lines[-3:]).strip())
            final = _stored(db)
            differ = [name for name, rows in reference.items() if final[name] != rows]
            if differ:
                counts["resume_mismatches"] += 1
                notes.append(f"run {number}: {', '.join(differ)} differ "
                             f"(stops at heartbeats {stops}, {[s.name for s in order]})")
    counts["runs"] = kills
    counts["heartbeats_per_run"] = beats
    counts["reference_trades"] = len(reference["trades"])
    counts["kill_notes"] = notes
    counts["kills_elapsed_s"] = round(time.perf_counter() - started, 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="runs, each killed and stopped")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(kill_and_resume(args.kills, args.seed)))


if __name__ == "__main__":
    main()
