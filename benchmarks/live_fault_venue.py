"""The fault suite's venue: the fake Binance order server (tests/live/fake_binance.py) run in the
suite's own process, so that its state outlives every bot process killed against it, and what
the suite reads from it afterwards: snapshots, the position's protection over time, and the
audits against the bot's store (duplicate orders, lost orders, journal).

The venue's hostility is the fake's own (`FaultPlan` drawing every kind but the 418 ban, which
the venue gives a client that sends inside a 429's Retry-After, as Binance does; `fill_parts`,
simulated latency and timeouts); this module only switches it on. `/_faults/mark` is the suite's own
route: a bot process calls it once its first candle after a (re)start has been handled, and the
venue is snapshotted at that moment.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from cryptobot.model import Candle
from tests.live.fake_binance import FakeBinanceServer, FaultPlan, unprotected_spans
from tests.live.fake_binance_faults import DRAWN_KINDS
from tests.live.fake_binance_state import FakeExchangeState

VENUE_SYMBOL = "BTCUSDT"
QTY_EPS = 1e-9


class FaultVenue:
    """One venue account (a fresh FakeExchangeState) served on 127.0.0.1."""

    def __init__(self, price: float, now_ms: int, *, error_rate: float = 0.0,
                 partial_fills: bool = False, latency_ms: int = 50, timeout_ms: int = 1000,
                 seed: int = 7) -> None:
        self.state = FakeExchangeState([price], now_ms=now_ms)
        self.faults = FaultPlan(rate=error_rate, kinds=DRAWN_KINDS, seed=seed, trace=[])
        self.server = FakeBinanceServer(self.state, self.faults,
                                        fill_parts=3 if partial_fills else 1,
                                        latency_ms=latency_ms, timeout_ms=timeout_ms)
        self.marks: dict[tuple[int, str], dict[str, Any]] = {}

        async def mark(request: web.Request) -> web.Response:
            key = (int(request.query.get("segment", "0")), request.query.get("label", "mark"))
            self.marks[key] = self.snapshot()
            return web.json_response({"ok": True})

        self.server.app.router.add_post("/_faults/mark", mark)
        self.server.start()

    @property
    def url(self) -> str:
        return self.server.base_url

    def stop(self) -> None:
        self.server.stop()

    def now_ms(self) -> int:
        return self.state.now_ms

    def walk(self, candle: Candle) -> None:
        """Move the price through a candle while no bot runs (stops and targets fire)."""
        from tests.live.fault_segment import walk_venue

        walk_venue(self.url, candle)

    def snapshot(self) -> dict[str, Any]:
        """The position (`qty` signed: negative for a short), the stops covering it (reduce-only,
        on its closing side: SELLs for a long, BUYs for a short; either while flat) and the
        take-profits working, right now."""
        state = self.state
        with state.lock:
            pos = state.account.positions.get(VENUE_SYMBOL)
            qty = float(pos.qty) if pos is not None else 0.0
            stops = [a for a in state.open_algo_orders(VENUE_SYMBOL)
                     if a["side"] in closing_sides(qty) and a["reduceOnly"]]
            limits = [o for o in state.open_orders(VENUE_SYMBOL)
                      if o["type"] == "LIMIT" and o["reduceOnly"]]
            return {
                "now_ms": state.now_ms, "qty": qty,
                "stop_qty": sum(float(a["quantity"]) for a in stops),
                "stops": sorted(a["clientAlgoId"] for a in stops),
                "take_profits": sorted(o["clientOrderId"] for o in limits),
                "order_status": {o["clientOrderId"]: o["status"] for o in own_orders(state)},
            }

    def fault_counts(self) -> dict[str, int]:
        return dict(self.faults.injected)

    def misbehaviour(self) -> dict[str, int]:
        """Calls the bot made before a wait the venue asked for had run out, and the bans
        they earned (both 0 for an obedient bot)."""
        return {"early_requests": self.faults.early_requests, "bans": self.faults.bans}


def closing_sides(qty: float) -> tuple[str, ...]:
    """The order sides that close a one-way position of signed `qty`."""
    if qty > QTY_EPS:
        return ("SELL",)
    return ("BUY",) if qty < -QTY_EPS else ("SELL", "BUY")


def own_orders(state: FakeExchangeState) -> list[dict]:
    """The regular orders the bot sent: a fired stop's market child (it carries the algo's id)
    is the algo order's, not a new order."""
    children = {str(a.get("actualOrderId")) for a in state.algo_orders.values()
                if a.get("actualOrderId")}
    return [o for o in state.orders.values() if str(o["orderId"]) not in children
            and o.get("origType", o["type"]) == o["type"]]


def leg_of(client_id: str) -> str:
    return client_id.rsplit("-", 1)[-1]


def signal_of(client_id: str) -> str:
    return client_id.rsplit("-", 1)[0]


def take_profit_state(snapshot: dict[str, Any],
                      expected: dict[str, tuple[str, ...]]) -> tuple[bool, bool]:
    """(take-profits still needed, all those needed working) for the position in a snapshot:
    its signal's TP legs (`expected`: from a reference run; plus any leg it ever sent) that
    no order of that leg has FILLED; working: an open order of the leg."""
    if abs(snapshot["qty"]) <= QTY_EPS:  # flat (a short's qty is negative)
        return False, True
    entries = [cid for cid in snapshot["order_status"] if leg_of(cid) == "entry"]
    if not entries:
        return False, True
    signal_id = signal_of(entries[-1])
    legs: dict[str, set[str]] = {name: set() for name in expected.get(signal_id, ("tp1",))}
    for client_id, status in snapshot["order_status"].items():
        leg = leg_of(client_id)
        if signal_of(client_id) == signal_id and leg[:3] in ("tp1", "tp2"):
            legs.setdefault(leg[:3], set()).add(status)
    filled = {name for name, statuses in legs.items() if "FILLED" in statuses}
    needed = set(legs) - filled
    working = {leg_of(cid)[:3] for cid in snapshot["take_profits"] if signal_of(cid) == signal_id}
    return bool(needed), needed <= working


# --- protection over time ----------------------------------------------------------------------


def protection_log(state: FakeExchangeState) -> list[tuple[int, float, float]]:
    """(now_ms, position qty, stop-covered qty) after each change (the fake keeps it)."""
    with state.lock:
        return [(int(t), float(q), float(c)) for t, q, c in state.protection_log]


def unprotected(qty: float, covered: float) -> bool:
    return abs(qty) > QTY_EPS and covered < abs(qty) - QTY_EPS


def unprotected_spans_ms(log: list[tuple[int, float, float]], excluded: Iterable[tuple[int, int]],
                         until_ms: int) -> list[tuple[int, int]]:
    """Spans with a filled quantity and no stop for all of it until `until_ms`, minus the
    `excluded` ones (the bot was down)."""
    if not log:
        return []  # never a position (the fake's helper wants one entry at least)
    return [(start, end) for start, end, _ in unprotected_spans(log, sorted(excluded),
                                                                 until_ms=until_ms)]


def time_to_protected_ms(log: list[tuple[int, float, float]], start_ms: int,
                         until_ms: int) -> int | None:
    """From `start_ms` until the position is flat or all of it has a stop: 0 if it already was;
    None if that never happened by `until_ms`."""
    before = [s for s in log if s[0] <= start_ms]
    qty, covered = (before[-1][1], before[-1][2]) if before else (0.0, 0.0)
    if not unprotected(qty, covered):
        return 0
    for now_ms, qty, covered in log:
        if start_ms < now_ms <= until_ms and not unprotected(qty, covered):
            return now_ms - start_ms
    return None


# --- audits against the store ------------------------------------------------------------------


def duplicate_orders(state: FakeExchangeState) -> dict[str, int]:
    """Client ids that reached the venue more than once as a new order -> extra copies."""
    regular = Counter(o["clientOrderId"] for o in own_orders(state))
    algos = Counter(a["clientAlgoId"] for a in state.algo_orders.values())
    return {cid: n - 1 for cid, n in (regular + algos).items() if n > 1}


def lost_orders(state: FakeExchangeState, store_rows: list) -> dict[str, list[str]]:
    """By client id: on the venue, not in the store's live tables; and in the store as sent
    (any status but not_sent/rejected) yet never on the venue."""
    venue = {o["clientOrderId"] for o in own_orders(state)}
    venue |= {a["clientAlgoId"] for a in state.algo_orders.values()}
    stored = {row.client_id for row in store_rows}
    sent = {row.client_id for row in store_rows if row.status not in ("not_sent", "rejected")}
    return {"venue_not_stored": sorted(venue - stored), "stored_not_on_venue": sorted(sent - venue)}


def venue_trades_by_signal(state: FakeExchangeState) -> dict[str, list[dict]]:
    by_order = {o["orderId"]: o["clientOrderId"] for o in state.orders.values()}
    for algo in state.algo_orders.values():
        if algo.get("actualOrderId"):
            by_order[int(algo["actualOrderId"])] = algo["clientAlgoId"]
    out: dict[str, list[dict]] = defaultdict(list)
    for trade in state.trades:
        if trade["symbol"] == VENUE_SYMBOL:
            out[signal_of(by_order.get(trade["orderId"], "?-?"))].append(trade)
    return out


def journal_mismatches(state: FakeExchangeState, store_fills: list,
                       store_trades: list) -> list[str]:
    """Each difference between the venue's trades and the store: per trade id (the live fills:
    price, qty, fee), and per trade closed on the venue (the run store's booked PnL against
    the venue's realised PnL less every commission of that signal; funding left out on both
    sides). Tolerance 1e-6."""
    problems: list[str] = []
    ours = {str(f.trade_id): f for f in store_fills}
    theirs = {str(t["id"]): t for t in state.trades if t["symbol"] == VENUE_SYMBOL}
    for trade_id in sorted(set(ours) | set(theirs)):
        fill, trade = ours.get(trade_id), theirs.get(trade_id)
        if fill is None:
            problems.append(f"venue trade {trade_id} ({trade['side']} {trade['qty']} @ "
                            f"{trade['price']}) not in the store's fills")
        elif trade is None:
            problems.append(f"stored fill {trade_id} ({fill.client_id}) not on the venue")
        else:
            for name, mine, venue in (("price", fill.price, trade["price"]),
                                      ("qty", fill.qty_base, trade["qty"]),
                                      ("fee", fill.fee_usdt, trade["commission"])):
                if abs(float(mine) - float(venue)) > 1e-6:
                    problems.append(f"trade {trade_id} ({fill.client_id}): {name} stored "
                                    f"{float(mine):g}, venue {venue}")
    booked: dict[str, list[float]] = defaultdict(list)
    for trade in store_trades:  # funding is the venue's income history, not its trades'
        booked[trade.signal_id].append(float(trade.pnl_usdt) + float(trade.funding_usdt))
    for signal_id, trades in venue_trades_by_signal(state).items():
        closed = _closed(trades)
        pnl = sum(float(t["realizedPnl"]) - float(t["commission"]) for t in trades)
        mine = booked.pop(signal_id, [])
        if closed and not mine:
            problems.append(f"{signal_id}: closed on the venue (PnL {pnl:.6f}), no trade stored")
        elif mine and not closed:
            problems.append(f"{signal_id}: trade stored, position still open on the venue")
        elif len(mine) > 1:
            problems.append(f"{signal_id}: {len(mine)} trades stored for one venue position")
        elif mine and abs(mine[0] - pnl) > 1e-6:
            problems.append(f"{signal_id}: PnL stored {mine[0]:.6f}, venue {pnl:.6f}")
    for signal_id, trades in booked.items():
        problems.append(f"{signal_id}: {len(trades)} trade(s) stored, none on the venue")
    return problems


def _closed(trades: list[dict]) -> bool:
    """A signal's venue trades opened a position (long or short) and closed it all."""
    net = sum(float(t["qty"]) * (1 if t["side"] == "BUY" else -1) for t in trades)
    return abs(net) <= QTY_EPS and {t["side"] for t in trades} == {"BUY", "SELL"}


def closed_on_venue(state: FakeExchangeState) -> int:
    return sum(1 for trades in venue_trades_by_signal(state).values() if _closed(trades))


def dump_venue(state: FakeExchangeState, trace: list | None = None) -> str:
    """The venue's orders, algo orders and trades, and the calls it answered, as JSON (for
    --keep)."""
    with state.lock:
        return json.dumps({"orders": list(state.orders.values()),
                           "algo_orders": list(state.algo_orders.values()),
                           "trades": state.trades, "calls": trace or [],
                           "protection_log": state.protection_log}, indent=1, default=str)
