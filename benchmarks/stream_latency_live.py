"""Order latency through the whole live stack on 127.0.0.1.

The real Binance 5m candles of data/btc_2024-08_crash are replayed over a loopback websocket
(cryptobot's ReplayVenue), parsed by the live stream parser, handled by the engine, and traded
by `LiveBroker` through ccxt against the fake Binance order server of tests/live, all composed
by `run_live_session` as `cryptobot live` does. The fake venue runs in a process of its own
(tests/live/fake_binance_process.py): its handlers do not share the bot's interpreter lock, and
its CPU time is not the bot's; each round trip to it is a real loopback HTTP request.

What is measured, per order, until the venue's answer accepting it is back in the broker
(`report_order(..., "open")`, after the order's row says so in the store):
- from the candle: from the closed candle's websocket frame (stamped when the bot's parser gets
  it, before it is parsed) to the order's acceptance, for every order the candle caused;
- from its trigger: from the event that made the bot send it: the candle's frame for an entry
  and for a stop moved on a candle (trailing); for a protective order placed on an entry's
  fill, the moment the bot learns of that fill (the venue's answer to the entry saying what
  executed, or a fill read or streamed).
- take-profits from their stop's acceptance (`from_stop`): they go on only once the position's
  stop works (both in one request, Binance's batchOrders), so this is their own part of the
  time from the trigger: from the stop's acceptance (its `report_order(..., "open")`) to theirs.
  An order of a batch counts the batch's round trip as its own.
Before the frame reaches the bot, the fake venue's price is walked through that candle over its
control route (the venue's work, not counted). Each closing frame comes FRAME_DELAY_MS after
its candle's close, as a live venue's does (ReplayVenue's `frame_delay_ms`), so the feed's
open-interest poll, when due, goes once the candle is handled, as live (streaming_feed.py's
ordering rule). A replay at the close (`cryptobot paper` over stored data) polls it before
the candle instead, since the close's own sample may answer: that poll's time, inside the
window of the orders a frame triggers, is printed as a part of its own (about 0 here; 0.4-0.8
ms at the median with frames at the close). The strategy (capitulation_wick) reads no open
interest: the orders are the same either way. Sessions over the window repeat, each on a
fresh venue and store, until `min_orders` were accepted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.brokers.live.broker import LiveBroker  # noqa: E402
from cryptobot.brokers.live.gateway import OrderGateway  # noqa: E402
from cryptobot.exchange.binance import BinanceUsdmStream  # noqa: E402
from cryptobot.exchange.feed_rest import FeedRest  # noqa: E402
from cryptobot.model import OrderPurpose  # noqa: E402
from cryptobot.secrets import ApiKeys  # noqa: E402
from tests.live import loopback_live  # noqa: E402
from tests.live.conftest import TEST_KEY, TEST_SECRET  # noqa: E402
from tests.live.fake_binance_process import FakeBinanceProcess  # noqa: E402

START, END = "2024-07-29T00:00:00Z", "2024-08-19T00:00:00Z"
FRAME_DELAY_MS = 50  # a live closing frame's lateness
STRATEGY = "strategies.capitulation_wick:CapitulationWick"
TAKE_PROFITS = (OrderPurpose.TP1, OrderPurpose.TP2)


@dataclass
class LiveLatencies:
    """Microseconds by order purpose (entry, stop, tp1...): from the candle's frame, from the
    order's trigger, and the parts of the latter: before the send, the venue's round trip (the
    gateway's `place`), after it; and what the bot itself adds, apart from the venue and the
    loopback: the time before the send, the calling thread's CPU time during the send (ccxt
    signing and building the request, the HTTP client, parsing the answer) and the time after
    the answer."""

    from_candle: dict[str, list[float]] = field(default_factory=dict)
    from_trigger: dict[str, list[float]] = field(default_factory=dict)
    from_stop: dict[str, list[float]] = field(default_factory=dict)  # take-profits
    # from the trigger, the orders whose candle waited on no REST read (see `rest_ns`)
    from_trigger_no_rest: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    sessions: int = 0

    def count(self) -> int:
        return sum(len(values) for values in self.from_candle.values())


class _Stamps:
    """perf_counter_ns stamps along one session's path, keyed by client order id."""

    def __init__(self) -> None:
        self.frame_ns = self.trigger_ns = 0
        self.asked: dict[str, tuple[int, int]] = {}  # client id -> (frame, trigger) when sent
        self.sending: dict[str, tuple[int, int, int]] = {}  # client id -> place started,
        # ended, and the calling thread's CPU time in it (ccxt's and the HTTP client's work)
        self.done: set[str] = set()
        self.polled_ns = 0  # the feed's open-interest polls since the frame
        self.asked_polled: dict[str, int] = {}  # client id -> of them, before it was asked
        # REST reads the frame's candle waited for since the frame: the funding rate settled at
        # its close, a gap's candles and open interest (in this replay: the frames in flight
        # lost at each simulated 24 h rotation of the stream)
        self.rest_ns = 0
        self.asked_rest: dict[str, int] = {}  # client id -> of them, before it was asked
        self.stop_open_ns: dict[str, int] = {}  # signal -> its latest stop's acceptance
        self.asked_stop: dict[str, int] = {}  # take-profit's client id -> that, when asked


def live_latencies_us(min_orders: int = 1000) -> LiveLatencies:
    """At least `min_orders` accepted orders' latencies, over as many sessions as it takes."""
    found = LiveLatencies()
    stamps = _Stamps()
    originals = _instrument(stamps, found)
    try:
        while found.count() < min_orders:
            found.sessions += 1
            before = found.count()
            stamps.__init__()
            with tempfile.TemporaryDirectory(prefix="latency-") as folder:
                _one_session(Path(folder), stamps)
            if found.count() == before:
                raise RuntimeError("a whole session accepted no order")
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
    return found


def _instrument(stamps: _Stamps, found: LiveLatencies) -> dict:
    parse, submit = BinanceUsdmStream.parse, LiveBroker.submit
    replace_stop, report = LiveBroker.replace_stop, LiveBroker.report_order
    deliver_fill, place = LiveBroker.deliver_fill, OrderGateway.place
    submit_batch, place_batch = LiveBroker.submit_batch, OrderGateway.place_batch
    poll = FeedRest.poll_open_interest
    rest_reads = {name: getattr(FeedRest, name)
                  for name in ("funding", "candles", "open_interest_history")}

    def parsing(self, raw):
        stamps.frame_ns = stamps.trigger_ns = time.perf_counter_ns()
        stamps.polled_ns = stamps.rest_ns = 0
        return parse(self, raw)

    def asking(intent) -> None:
        stamps.asked.setdefault(intent.client_id, (stamps.frame_ns, stamps.trigger_ns))
        stop_ns = stamps.stop_open_ns.get(intent.client_id.rsplit("-", 1)[0])
        if intent.purpose in TAKE_PROFITS and stop_ns is not None:
            stamps.asked_stop.setdefault(intent.client_id, stop_ns)
        on_frame = stamps.trigger_ns == stamps.frame_ns
        stamps.asked_polled.setdefault(intent.client_id, stamps.polled_ns if on_frame else 0)
        stamps.asked_rest.setdefault(intent.client_id, stamps.rest_ns if on_frame else 0)

    async def polling(self, track):
        started = time.perf_counter_ns()
        try:
            return await poll(self, track)
        finally:
            stamps.polled_ns += time.perf_counter_ns() - started

    def timed_rest(read):  # one symbol: the feed's reads of a frame go one after the other
        async def reading(self, *args):
            started = time.perf_counter_ns()
            try:
                return await read(self, *args)
            finally:
                stamps.rest_ns += time.perf_counter_ns() - started
        return reading

    def submitting(self, intent):
        asking(intent)
        return submit(self, intent)

    def submitting_batch(self, intents):
        for intent in intents:
            asking(intent)
        return submit_batch(self, intents)

    def replacing(self, old_client_id, new_intent):
        asking(new_intent)
        return replace_stop(self, old_client_id, new_intent)

    def placing(self, intent):
        cpu, started = time.thread_time_ns(), time.perf_counter_ns()
        sent = place(self, intent)
        ended = time.perf_counter_ns()
        stamps.sending[intent.client_id] = (started, ended, time.thread_time_ns() - cpu)
        if sent.filled_qty > 0:
            stamps.trigger_ns = ended  # the bot learns of the entry's fill now
        return sent

    def placing_batch(self, intents):
        cpu, started = time.thread_time_ns(), time.perf_counter_ns()
        answers = place_batch(self, intents)
        ended = time.perf_counter_ns()
        for intent in intents:  # one round trip for them all
            stamps.sending[intent.client_id] = (started, ended, time.thread_time_ns() - cpu)
        return answers

    def delivering(self, fill):
        stamps.trigger_ns = time.perf_counter_ns()
        return deliver_fill(self, fill)

    def reported(self, intent, status, detail="", filled_qty=None):
        client_id = intent.client_id
        if status == "open" and intent.purpose is OrderPurpose.STOP:
            stamps.stop_open_ns[client_id.rsplit("-", 1)[0]] = time.perf_counter_ns()
        if status == "open" and client_id in stamps.asked and client_id in stamps.sending \
                and client_id not in stamps.done:
            now = time.perf_counter_ns()
            if client_id in stamps.asked_stop:
                found.from_stop.setdefault(str(intent.purpose), []).append(
                    (now - stamps.asked_stop[client_id]) / 1000)
            stamps.done.add(client_id)
            frame_ns, trigger_ns = stamps.asked[client_id]
            started, ended, send_cpu = stamps.sending[client_id]
            purpose = str(intent.purpose)
            found.from_candle.setdefault(purpose, []).append((now - frame_ns) / 1000)
            found.from_trigger.setdefault(purpose, []).append((now - trigger_ns) / 1000)
            polled = stamps.asked_polled.get(client_id, 0)
            rest = stamps.asked_rest.get(client_id, 0)
            if not rest:
                found.from_trigger_no_rest.append((now - trigger_ns) / 1000)
            own = (started - trigger_ns) + send_cpu + (now - ended)
            for part, ns in (("before the send", started - trigger_ns),
                             ("  of it, an OI poll", polled),
                             ("  of it, REST reads its candle waited for", rest),
                             ("venue round trip", ended - started),
                             ("  of it, bot CPU (ccxt, HTTP)", send_cpu),
                             ("after the answer", now - ended),
                             ("bot's own: before+send CPU+after", own),
                             ("  the same without an OI poll", own - polled)):
                found.parts.setdefault(part, []).append(ns / 1000)
        return report(self, intent, status, detail, filled_qty)

    patches = {(BinanceUsdmStream, "parse"): parsing, (LiveBroker, "submit"): submitting,
               (LiveBroker, "submit_batch"): submitting_batch,
               (OrderGateway, "place_batch"): placing_batch,
               (LiveBroker, "replace_stop"): replacing, (LiveBroker, "report_order"): reported,
               (LiveBroker, "deliver_fill"): delivering, (OrderGateway, "place"): placing,
               (FeedRest, "poll_open_interest"): polling,
               **{(FeedRest, name): timed_rest(read) for name, read in rest_reads.items()}}
    originals = {key: getattr(*key) for key in patches}
    for (owner, name), patched in patches.items():
        setattr(owner, name, patched)
    return originals


def _walk_before_frames(venue: FakeBinanceProcess, window) -> None:
    """The venue walks each candle before its closing frame reaches the bot's parser."""
    parse = BinanceUsdmStream.parse

    def walked_first(self, raw):
        kline = (json.loads(raw).get("data") or {}).get("k") or {}
        candle = window.candles_by_close.get(int(kline.get("T", -2)) + 1) if kline.get("x") \
            else None
        if candle is not None and candle.ts_close_ms > venue.now_ms():
            venue.walk_candle(candle)
        return parse(self, raw)

    BinanceUsdmStream.parse = walked_first


def _one_session(folder: Path, stamps: _Stamps) -> None:
    path = loopback_live.write_live_config(folder)
    path.write_text(path.read_text().replace(
        "[strategy.params]\noi_confirmation = false\n", f'[strategy]\npath = "{STRATEGY}"\n'))
    settings = loopback_live.settings_from(path)
    window = loopback_live.load_window(settings, START, END)
    stamped = BinanceUsdmStream.parse
    with FakeBinanceProcess(window.price_before, window.start_ms) as venue:
        _walk_before_frames(venue, window)
        try:
            asyncio.run(loopback_live.run_loopback_session(
                settings, ApiKeys(key=TEST_KEY, secret=TEST_SECRET), window, venue,
                frame_delay_ms=FRAME_DELAY_MS))
        finally:
            BinanceUsdmStream.parse = stamped


def floors_us(samples: int = 300) -> dict[str, list[float]]:
    """What one order cannot go below on this machine, each part measured alone (µs): the
    write of its intent before the send (`LiveState.record_intent`: a commit, no fsync), the
    fsync that makes it survive a power cut (on its own thread once the order is out: not
    waited on), and an order's round trip to the fake venue's process (a limit far below the
    price: it rests, nothing is matched): through ccxt's `create_order`, and through the
    gateway's `place` (the request it writes itself, signed and sent by ccxt's endpoint
    method), each with the calling thread's CPU time in it (building, signing, the HTTP
    client, reading the answer), and the same request's bytes sent again over a bare
    http.client connection (the fake venue's handling and the loopback, with the least a
    client can do)."""
    from cryptobot.brokers.live.state import LiveState
    from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side

    found: dict[str, list[float]] = {"intent write (commit)": [],
                                     "WAL fsync (own thread, no wait)": []}
    with tempfile.TemporaryDirectory(prefix="latency-floor-") as folder:
        state = LiveState(f"sqlite:///{folder}/floor.sqlite")
        for index in range(samples):
            intent = OrderIntent(f"floor{index}-entry", "BTC/USDT:USDT", Side.BUY,
                                 OrderType.LIMIT, 0.01, OrderPurpose.ENTRY, 30000.0)
            started = time.perf_counter_ns()
            state.record_intent(intent, f"floor{index}", index)
            found["intent write (commit)"].append((time.perf_counter_ns() - started) / 1000)
            started = time.perf_counter_ns()
            state._wal_sync._fsync()
            found["WAL fsync (own thread, no wait)"].append(
                (time.perf_counter_ns() - started) / 1000)
        state.close()
    found.update(_round_trip_floors(samples))
    return found


def _round_trip_floors(samples: int) -> dict[str, list[float]]:
    """One resting limit order after another, three ways in turn (the venue's book grows
    alike for each): ccxt's create_order, the gateway's `place` (the request it writes and
    reads itself: order_request.py), and the first's bytes again over a bare connection."""
    import http.client
    from urllib.parse import urlsplit

    from cryptobot.exchange.ccxt_factory import make_exchange
    from cryptobot.model import OrderIntent, OrderType, Side

    found: dict[str, list[float]] = {"ccxt create_order": [], "  ccxt's own CPU": [],
                                     "  bare HTTP, same request": [],
                                     "gateway place (own request)": [], "  its own CPU": []}
    with FakeBinanceProcess(60000.0, 1_722_816_000_000) as venue:
        exchange = make_exchange("binanceusdm", rest_url=venue.base_url, rate_limit=False,
                                 api_keys=ApiKeys(key=TEST_KEY, secret=TEST_SECRET),
                                 options={"fetchCurrencies": False})
        exchange.load_markets()
        gateway = OrderGateway(exchange)
        sent: dict = {}
        session_request = exchange.session.request

        def keep(method, url, data=None, headers=None, **options):
            sent.update(method=method, url=url, data=data, headers=dict(headers or {}))
            return session_request(method, url, data=data, headers=headers, **options)

        exchange.session.request = keep
        connection = None
        for index in range(samples):
            cpu, started = time.thread_time_ns(), time.perf_counter_ns()
            exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.002, 30000.0,
                                  {"clientOrderId": f"floor{index}"})
            found["ccxt create_order"].append((time.perf_counter_ns() - started) / 1000)
            found["  ccxt's own CPU"].append((time.thread_time_ns() - cpu) / 1000)
            body = sent["data"].replace(b"floor", b"bare")
            cpu, started = time.thread_time_ns(), time.perf_counter_ns()
            gateway.place(OrderIntent(f"lean{index}", "BTC/USDT:USDT", Side.BUY,
                                      OrderType.LIMIT, 0.002, OrderPurpose.ENTRY, 30000.0))
            found["gateway place (own request)"].append((time.perf_counter_ns() - started) / 1000)
            found["  its own CPU"].append((time.thread_time_ns() - cpu) / 1000)
            parts = urlsplit(sent["url"])
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, parts.port)
            started = time.perf_counter_ns()
            connection.request(sent["method"], parts.path, body=body, headers=sent["headers"])
            connection.getresponse().read()
            found["  bare HTTP, same request"].append((time.perf_counter_ns() - started) / 1000)
        if connection is not None:
            connection.close()
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="order latency through the live stack")
    parser.add_argument("orders", type=int, nargs="?", default=50,
                        help="at least this many accepted orders (50)")
    wanted = parser.parse_args().orders
    if wanted < 1:
        parser.error(f"orders {wanted}: at least 1")
    started = time.perf_counter()
    result = live_latencies_us(wanted)
    print(f"{result.count()} orders, {result.sessions} sessions, "
          f"{time.perf_counter() - started:.1f}s; p50 / p99 ms")
    floors = floors_us()
    print("from_stop: take-profits from their stop's acceptance")
    calm = result.from_trigger_no_rest
    print(f"{'from_trigger':13s} {'no REST wait':18s} n={len(calm):5d} "
          f"{percentile(calm, .5) / 1000:7.2f} {percentile(calm, .99) / 1000:7.2f}")
    for view in ("from_candle", "from_trigger", "from_stop", "parts", "floors"):
        for name, values in (floors.items() if view == "floors"  # parts under their whole
                             else sorted(getattr(result, view).items())):
            print(f"{view:13s} {name:18s} n={len(values):5d} {percentile(values, .5) / 1000:7.2f}"
                  f" {percentile(values, .99) / 1000:7.2f}")
