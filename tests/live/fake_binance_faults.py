"""Faults of the fake Binance venue on private (signed) calls, each answered the way Binance
answers it (status, JSON code/msg, headers), so a client meets what it meets in production.

    kind           answer                                                 the request was
    429            429, -1003 "Too many requests; ...", Retry-After       not carried out
    418            418, -1003 "Way too many requests; IP banned until",  not carried out
                   Retry-After (the ban; scripted only, see below)
    1008           503, -1008 "Server is currently overloaded ..."        not carried out
                   (new orders only: reduce-only orders and cancels are exempt, as documented)
    5xx            500/502/503/504, plain text                            not carried out
    503            503 "Service Unavailable", plain text                  not carried out
    timeout        stalls past the client's timeout                       not carried out
    timeout_after  carries it out, then stalls past the client's timeout  carried out
    502_after      carries it out, then 502 "Bad Gateway"                 carried out
    1007           408, -1007 "Timeout waiting for response from backend  either (seeded coin)
                   server. Send status unknown; execution status unknown."
    503_unknown    503, "Unknown error, please check your request or try  either (seeded coin)
                   again later." (no code: the shape seen from fapi)

Bans, as Binance documents them: "Repeatedly violating rate limits and/or failing to back off
after receiving 429s will result in an automated IP ban (HTTP status 418). IP bans are tracked
and scale in duration for repeat offenders, from 2 minutes to 3 days." (developers.binance.com,
rate limits; the HTTP return codes page: 418 "is used when an IP has been auto-banned for
continuing to send requests after receiving 429 codes"). So a 418 is never drawn at random
(`DRAWN_KINDS`): with `enforce_retry_after` (the default) a private call made inside a 429's
Retry-After window is answered 418 and bans the IP, for `ban_s` doubled for each earlier ban,
at most 3 days; a call made during a ban is refused again (418, Retry-After: what is left of
it). Both are counted in `early_requests`, every ban in `bans`: an obedient client has 0 of
each. A scripted "418" bans at once (a test of how a client honours a ban it is given).

Simulated time: every private call moves the venue clock by `state.latency_ms`, a stall by
`state.timeout_ms`; Retry-After and bans are in the venue's (simulated) seconds.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from tests.live.fake_binance_batch import batch_client_ids, batch_orders
from tests.live.fake_binance_state import BinanceReject, FakeExchangeState

KINDS = ("429", "418", "1008", "5xx", "503", "timeout", "timeout_after", "502_after", "1007",
         "503_unknown")
DRAWN_KINDS = tuple(kind for kind in KINDS if kind != "418")  # a ban is earned, not drawn
MAX_BAN_S = 3 * 86_400  # Binance's longest
_COIN_FLIP = ("1007", "503_unknown")
_OUTCOMES = {"done": True, "not_done": False}  # scripted "1007:done" decides the coin
_PLAIN = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
          504: "Gateway Timeout"}
MSG_429 = ("Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. "
           "Please use the websocket for live updates to avoid polling the API.")
MSG_418 = ("Way too many requests; IP(127.0.0.1) banned until {until_ms}. "
           "Please use the websocket for live updates to avoid bans.")
MSG_1008 = "Server is currently overloaded with other requests. Please try again in a few minutes."
MSG_1007 = ("Timeout waiting for response from backend server. Send status unknown; "
            "execution status unknown.")
MSG_503_UNKNOWN = "Unknown error, please check your request or try again later."


@dataclass
class FaultPlan:
    """Which share of private calls misbehave, and how. Seeded: the same run fails the same way.

    `script([...])` queues exact faults (a kind, None for a clean call; "1007:done" or
    "503_unknown:not_done" fix the coin) for the next private calls, before any random draw;
    `script([...], route="batchOrders")` for the next calls of that route only (the last part
    of its path), before the others.
    `kinds` are what the random draw picks from: never "418" (see the module's docstring).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "503", "502_after", "timeout_after")
    seed: int = 7
    stall_s: float | None = None  # real seconds a stall lasts; None: state.timeout_ms + 0.1 s
    retry_after_s: int = 1  # a 429's Retry-After
    ban_s: int = 120  # the first ban's Retry-After; doubled for each earlier ban, to 3 days
    enforce_retry_after: bool = True  # a call inside a 429's wait bans; one inside a ban fails
    injected: dict[str, int] = field(default_factory=dict)  # faults answered, by kind
    executed: dict[str, int] = field(default_factory=dict)  # ... whose call was carried out
    early_requests: int = 0  # calls made before a Retry-After (429 or ban) had run out
    bans: int = 0  # bans the venue issued (earned by early calls, or scripted)
    _rng: random.Random = field(init=False, repr=False)
    _script: deque = field(init=False, repr=False)
    _route_scripts: dict[str, deque] = field(init=False, repr=False, default_factory=dict)
    _blocked: tuple[int, str] | None = field(init=False, repr=False, default=None)
    # (from_ms, until_ms, kind) of every wait the venue asked for (429, 418 Retry-After): a
    # client that obeys cannot send anything then, a stop included
    waits: list[tuple[int, int, str]] = field(default_factory=list)
    # given a list: (ms, method, route, client id, answer) of every private call, and the
    # client's sleeps on the venue's clock (method "SLEEP", route: the ms)
    trace: list[tuple[int, str, str, str, str]] | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._script = deque()
        for kind in self.kinds:
            _check_kind(kind)
            if kind == "418":
                raise ValueError("a 418 ban is not drawn at random: Binance bans only a client "
                                 "that kept sending inside a 429's Retry-After (script it)")

    def script(self, kinds: Iterable[str | None], route: str | None = None) -> None:
        kinds = list(kinds)
        for kind in kinds:
            if kind is not None:
                _check_kind(kind)
        queue = self._script if route is None else self._route_scripts.setdefault(route, deque())
        queue.extend(kinds)

    def draw(self, route: str = "") -> str | None:
        if self._route_scripts.get(route):
            return self._route_scripts[route].popleft()
        if self._script:
            return self._script.popleft()
        if self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        return self._rng.choice(self.kinds)


def _check_kind(kind: str) -> None:
    base, _, outcome = kind.partition(":")
    if base not in KINDS or (outcome and (base not in _COIN_FLIP or outcome not in _OUTCOMES)):
        raise ValueError(f"unknown fault {kind!r}: expected one of {', '.join(KINDS)} "
                         "(1007 and 503_unknown may end in :done or :not_done)")


async def run_private(state: FakeExchangeState, faults: FaultPlan, request: web.Request,
                      params: dict, work: Callable[[], web.Response]) -> web.Response:
    """Answer one private call: `work` carries it out (under the state's lock); the plan
    decides whether it runs and what the client is told."""
    with state.lock:
        state.now_ms += state.latency_ms
        refused = _refused_early(state, faults)
        route = request.path.rsplit("/", 1)[-1]
        drawn = None if refused is not None else faults.draw(route)
        if faults.trace is not None:  # what was asked when, and how it was answered
            faults.trace.append((state.now_ms, request.method, route,
                                 params.get("newClientOrderId") or params.get("clientAlgoId")
                                 or params.get("origClientOrderId") or batch_client_ids(params),
                                 "early" if refused is not None else drawn or "ok"))
    if refused is not None:
        return refused
    if drawn is None:
        return work()
    kind, _, outcome = drawn.partition(":")
    if kind == "1008" and _exempt_from_1008(request, params):
        return work()
    _bump(faults.injected, kind)
    if kind == "429":
        with state.lock:
            return _block(state, faults, "429", faults.retry_after_s)
    if kind == "418":
        with state.lock:
            return _ban(state, faults)
    if kind == "1008":
        return _error(503, -1008, MSG_1008)
    if kind in ("5xx", "503"):
        status = faults._rng.choice(sorted(_PLAIN)) if kind == "5xx" else 503
        return web.Response(status=status, text=_PLAIN[status])
    if kind == "timeout":
        await _stall(state, faults)
        return web.Response(status=504, text=_PLAIN[504])  # nobody is listening any more
    done = _OUTCOMES[outcome] if outcome else (kind not in _COIN_FLIP or faults._rng.random() < 0.5)
    response = work() if done else None
    if done:
        _bump(faults.executed, kind)
    if kind == "timeout_after":
        await _stall(state, faults)
        return response
    if kind == "502_after":
        return web.Response(status=502, text=_PLAIN[502])
    if kind == "1007":
        return _error(408, -1007, MSG_1007)
    return web.json_response({"timestamp": state.now_ms, "path": request.path,
                              "msg": MSG_503_UNKNOWN}, status=503)


def _exempt_from_1008(request: web.Request, params: dict) -> bool:
    """Binance throttles only new orders that add exposure; the rest pass."""
    if request.method == "POST" and request.path == "/fapi/v1/batchOrders":
        try:
            orders = batch_orders(params)  # throttled unless every order of it is exempt
        except BinanceReject:
            return False
    elif request.method == "POST" and request.path == "/fapi/v1/order":
        orders = [params]
    else:
        return True
    return all("true" in (order.get("reduceOnly"), order.get("closePosition"))
               for order in orders)


def _bump(table: dict[str, int], kind: str) -> None:
    table[kind] = table.get(kind, 0) + 1


def _rate_limited(kind: str, wait_s: int, until_ms: int) -> web.Response:
    msg = MSG_429 if kind == "429" else MSG_418.format(until_ms=until_ms)
    return _error(int(kind), -1003, msg, {"Retry-After": str(wait_s)})


def _block(state: FakeExchangeState, faults: FaultPlan, kind: str, wait_s: int) -> web.Response:
    """Every call is to wait `wait_s` from now (the state is locked)."""
    until_ms = state.now_ms + wait_s * 1000
    faults._blocked = (until_ms, kind)
    faults.waits.append((state.now_ms, until_ms, kind))
    return _rate_limited(kind, wait_s, until_ms)


def _ban(state: FakeExchangeState, faults: FaultPlan) -> web.Response:
    """Ban the IP: `ban_s`, doubled for each earlier ban, at most 3 days (the state is locked)."""
    wait_s = min(MAX_BAN_S, faults.ban_s * 2 ** faults.bans)
    faults.bans += 1
    return _block(state, faults, "418", wait_s)


def _refused_early(state: FakeExchangeState, faults: FaultPlan) -> web.Response | None:
    """A call inside a 429's wait earns a ban; one inside a ban is refused again (the state is
    locked)."""
    if not faults.enforce_retry_after or faults._blocked is None:
        return None
    until_ms, kind = faults._blocked
    if state.now_ms >= until_ms:
        return None
    faults.early_requests += 1
    if kind == "429":
        _bump(faults.injected, "418")
        return _ban(state, faults)
    return _rate_limited(kind, math.ceil((until_ms - state.now_ms) / 1000), until_ms)


async def _stall(state: FakeExchangeState, faults: FaultPlan) -> None:
    with state.lock:
        state.now_ms += state.timeout_ms
        stall_s = faults.stall_s if faults.stall_s is not None else state.timeout_ms / 1000 + 0.1
    await asyncio.sleep(stall_s)


def _error(status: int, code: int, msg: str, headers: dict[str, str] | None = None
           ) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)
