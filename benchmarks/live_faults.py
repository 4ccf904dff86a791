"""Live trading never leaves money unprotected: issue 14's fault suite.

The real live stack (`run_live_session`: Engine, LiveBroker, SqlRecorder) trades the bundled
crash data (real Binance 5m candles 2024-07-22 .. 2024-08-19, SYNTHETIC open interest, so OI
confirmation is off) against the fake Binance order server run in THIS process, hostile:
`--error-rate` of the private calls fail (429, -1008, 5xx, timeouts before and after the work,
502 after it, -1007, 503 unknown), `--partial-fills` splits every taker fill in 3, and every
private request costs 50 ms of the venue's simulated clock. A 418 IP ban is not drawn: as on
Binance, the venue bans a client that sends inside a 429's Retry-After (and refuses it again
during the ban), so an obedient bot meets none. Each bot process
(tests/live/fault_segment.py) SIGKILLs itself at a step drawn with `--seed` (likely right after
an entry or TP1 fill, after sending the entry, before sending a stop, between a new stop and
the old one's cancel; unlikely elsewhere); while it is down the venue's price walks on for 1-3
candles (stops and take-profits fire); then it restarts at the candle after, with warm-up and
history from its replay, and must take its position over, not enter again.

Each process draws its plan: 70% at one of those steps (drawn), 3% at any other, each step
name drawn the first time it is reached (a fill in three parts is one chance).

What: `--strategy long` (default) trades the long rule (strategies/liquidation_rebound.py);
`--strategy short` the short squeeze (strategies/short_squeeze.py), the same episodes with
shorts: the venue's position is negative, its stops and exits are BUYs, and every count below
reads the position's size and the stops on its closing side.

Where: the backtest's trades on the crash data (run once at start with the same config and
strategy), each as a chunk from 2h before its spike to 30 min after its exit (capped at 30h).
An episode is one chunk on a fresh venue account and a fresh store, killed up to 3 times;
episodes go round the chunks until `--kills` kills happened.

Counts (totals over the run), and the goal for each:
  kills                       = --kills
  open_at_kill                kills with a position open on the venue (informative)
  restored                    restarts that took an open position over (their console said so)
  restarts_with_position      restarts that found a position on the venue (some are killed
                              again before they get to take it over)
  restore_missed              restarts that found one, handled their first candle with it
                              still open and never took it over: goal 0
  restores_needing_tp         finished restores where TP1/TP2 had not both filled
  tp_restored                 ... of those, with every missing take-profit working again: goal equal
  unprotected_after_restart   finished restores (first candle handled) whose position lacked a
                              full-quantity stop on the venue: goal 0
  max_unprotected_s           longest simulated time a filled quantity had no stop while a bot
                              was running (down time excluded; the venue's waits included):
                              goal under 5 s at 20% errors (a running bot sends the stop right
                              after the entry's answer; a restart reads the positions and the
                              open stops first); unprotected_spans_over_1s counts the rest
  max_unprotected_s_outside_waits  the same, with the time the venue told the bot to wait cut
                              out (a 429's Retry-After, a ban's); rate_limit_wait_s is that
                              time in total
  max_restart_to_stop_s       restart (venue clock) to its position fully under a stop, over
                              restarts that found a position: goal under 10 s at 20% errors
  restarts_never_protected    of those, never fully under a stop before the process ended by
                              itself: goal 0 (one killed first is counted apart:
                              restarts_killed_before_protecting)
  duplicate_orders            extra copies of a client id the venue accepted as a new order
                              (a fired stop's child order is not one): goal 0
  lost_orders                 client ids on the venue and not in the store's live tables, or
                              stored as sent and never on the venue: goal 0
  journal_mismatches          per venue trade id (price, qty, fee vs the stored fill) and per
                              trade closed on the venue (PnL vs the stored trade): goal 0
  early_requests, bans        requests sent before a Retry-After (a 429's, a ban's) ran out,
                              and the bans they earned: goal 0 (Binance bans for that)
  downtime_s, faults_injected, segments, segment_errors, trades (closed on the venue),
  trades_stored, kills_by_step, wall_s; `failures` says what each broken goal saw.

    python benchmarks/live_faults.py [--kills 20] [--error-rate 0.2] [--partial-fills]
                                     [--seed 1] [--strategy long|short] [--jobs 2] [--json]
                                     [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.live_fault_episodes import (  # noqa: E402
    VenueOptions,
    audit,
    backtest_chunks,
    crash_candles,
    random_kill_plan,
    run_episode,
    write_config,
)

KILLS_PER_EPISODE = 3
STRATEGIES = {"long": None,  # the config's own: strategies.liquidation_rebound
              "short": "strategies.short_squeeze:ShortSqueeze"}


def run_suite(kills: int, error_rate: float, partial_fills: bool, seed: int, jobs: int,
              folder: Path, keep: bool, strategy: str = "long") -> dict[str, Any]:
    started = time.perf_counter()
    options = VenueOptions(error_rate=error_rate, partial_fills=partial_fills,
                           strategy_path=STRATEGIES[strategy])
    _, settings = write_config(folder / "backtest", options)
    chunks = backtest_chunks(settings)
    candles = crash_candles()
    rng = random.Random(seed)
    first = rng.randrange(len(chunks))
    audits: list[dict[str, Any]] = []
    done_kills, number = 0, 0
    with ThreadPoolExecutor(jobs) as pool:
        running: dict[Any, int] = {}
        while done_kills < kills or running:
            while (len(running) < jobs and done_kills + sum(running.values()) < kills
                   and number < 10 * kills + 10):
                budget = min(KILLS_PER_EPISODE, kills - done_kills - sum(running.values()))
                chunk = chunks[(first + number) % len(chunks)]
                episode_rng = random.Random(f"{seed}:{number}")
                future = pool.submit(_episode, chunk, folder / f"episode{number:03d}", candles,
                                     options, budget, episode_rng, keep)
                running[future] = budget
                number += 1
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                running.pop(future)
                result = future.result()
                audits.append(result)
                done_kills += len(result["kills"])
    result = summarise(audits, seed, error_rate, partial_fills, time.perf_counter() - started,
                       chunks)
    result["strategy"] = strategy
    return result


def _episode(chunk, folder, candles, options, budget, rng, keep) -> dict[str, Any]:
    episode = run_episode(chunk, folder, candles, options, budget, random_kill_plan, rng)
    try:
        return audit(episode, keep=keep)
    finally:
        episode.venue.stop()


def summarise(audits: list[dict[str, Any]], seed: int, error_rate: float, partial_fills: bool,
              wall_s: float, chunks: list) -> dict[str, Any]:
    kills = [k for a in audits for k in a["kills"]]
    restarts = [(a, r) for a in audits for r in a["restarts"]]
    finished = [(a, r) for a, r in restarts if r["finished"]]
    with_position = [(a, r) for a, r in restarts if r["position_at_start"] > 0]
    to_stop = [r["to_stop_ms"] for _, r in with_position if r["to_stop_ms"] is not None]
    faults: Counter[str] = Counter()
    for a in audits:
        faults.update(a["faults_injected"])
    failures: list[str] = []
    for a, r in restarts:
        where = f"{a['chunk']} ({a['folder']}) segment {r['segment']} after a kill at {r['after']}"
        snap = r["first_candle"]
        if r["position_at_start"] > 0 and not r["took_over"] and snap \
                and abs(snap["qty"]) > 0:  # missed
            failures.append(f"{where}: venue held {r['position_at_start']:g} at restart, the "
                            "bot did not take it over")
        if r["unprotected_at_first_candle"]:
            failures.append(f"{where}: unprotected after restart: venue qty {snap['qty']:g}, "
                            f"stops {snap['stop_qty']:g} {snap['stops']}")
        if r["needs_tp"] and not r["tp_working"]:
            failures.append(f"{where}: take-profits not working after restart: working "
                            f"{snap['take_profits']}, orders {snap['order_status']}")
        if r["position_at_start"] > 0 and r["to_stop_ms"] is None and not r["killed"]:
            failures.append(f"{where}: position {r['position_at_start']:g} never fully under "
                            "a stop before the process ended")
    for a in audits:
        for cid, extra in a["duplicates"].items():
            failures.append(f"{a['chunk']} ({a['folder']}): {cid} accepted {extra + 1} times")
        for side, ids in a["lost"].items():
            if ids:
                failures.append(f"{a['chunk']} ({a['folder']}): lost orders, {side}: {ids}")
        failures += [f"{a['chunk']} ({a['folder']}): journal: {p}" for p in a["journal"]]
        failures += [f"{a['chunk']} ({a['folder']}): {p}" for p in a["slow_protection"]]
        failures += [f"{a['chunk']} ({a['folder']}): {e}" for e in a["errors"]]
        if a["early_requests"] or a["bans"]:
            failures.append(f"{a['chunk']} ({a['folder']}): {a['early_requests']} request(s) "
                            f"inside a Retry-After, {a['bans']} ban(s)")
    return {
        "kills": len(kills),
        "open_at_kill": sum(1 for k in kills if k["position_qty"] > 0),
        "restored": sum(1 for _, r in restarts if r["took_over"]),
        "restarts": len(restarts),
        "restarts_with_position": len(with_position),
        "restore_missed": sum(1 for _, r in with_position if not r["took_over"]
                              and r["finished"] and abs(r["first_candle"]["qty"]) > 0),
        "tp_restored": sum(1 for _, r in finished if r["needs_tp"] and r["tp_working"]),
        "restores_needing_tp": sum(1 for _, r in finished if r["needs_tp"]),
        "unprotected_after_restart": sum(1 for _, r in finished
                                         if r["unprotected_at_first_candle"]),
        "max_unprotected_s": max((a["max_unprotected_ms"] for a in audits), default=0) / 1000,
        "unprotected_spans_over_1s": sum(a["unprotected_over_1s"] for a in audits),
        "max_unprotected_s_outside_waits": max(
            (a["max_unprotected_outside_waits_ms"] for a in audits), default=0) / 1000,
        "rate_limit_wait_s": sum(b - a for a_ in audits for a, b, _ in a_["rate_limit_waits"])
        / 1000,
        "downtime_s": sum(a["downtime_ms"] for a in audits) / 1000,
        "max_restart_to_stop_s": max(to_stop, default=0) / 1000,
        "restarts_never_protected": sum(1 for _, r in with_position
                                        if r["to_stop_ms"] is None and not r["killed"]),
        "restarts_killed_before_protecting": sum(1 for _, r in with_position
                                                 if r["to_stop_ms"] is None and r["killed"]),
        "duplicate_orders": sum(sum(a["duplicates"].values()) for a in audits),
        "lost_orders": sum(len(ids) for a in audits for ids in a["lost"].values()),
        "journal_mismatches": sum(len(a["journal"]) for a in audits),
        "early_requests": sum(a["early_requests"] for a in audits),
        "bans": sum(a["bans"] for a in audits),
        "faults_injected": dict(sorted(faults.items())),
        "segments": sum(a["segments"] for a in audits),
        "segment_errors": sum(len(a["errors"]) for a in audits),
        "episodes": len(audits),
        "trades": sum(a["trades_on_venue"] for a in audits),
        "trades_stored": sum(a["trades_stored"] for a in audits),
        "kills_by_step": dict(Counter(k["step"] for k in kills).most_common()),
        "chunks": [c.name for c in chunks],
        "wall_s": round(wall_s, 1),
        "seed": seed, "error_rate": error_rate, "partial_fills": partial_fills,
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--partial-fills", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategy", choices=sorted(STRATEGIES), default="long",
                        help="long: the liquidation rebound; short: the short squeeze")
    parser.add_argument("--jobs", type=int, default=2, help="episodes run side by side")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--keep", type=Path, help="keep the venues, stores and logs here")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_suite(args.kills, args.error_rate, args.partial_fills, args.seed,
                           args.jobs, args.keep, keep=True, strategy=args.strategy)
    else:
        with tempfile.TemporaryDirectory(prefix="cryptobot-live-faults-") as tmp:
            result = run_suite(args.kills, args.error_rate, args.partial_fills, args.seed,
                               args.jobs, Path(tmp), keep=False, strategy=args.strategy)
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        if name != "failures":
            print(f"{name:<34}{value}")
    print(f"failures ({len(result['failures'])}):")
    for line in result["failures"]:
        print("  " + line)


if __name__ == "__main__":
    main()
