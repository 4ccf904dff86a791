"""What `cryptobot paper`, `live` and `demo` print: a stop's moves in one line a trade (every
one with -v), ORDER and FILL lines in time order, whole lines when piped, and a demo that fits
a screen."""

from __future__ import annotations

import io
import re

from rich.console import Console

from cryptobot.cli.paper_console import ConsoleRecorder, run_console
from cryptobot.clock import iso_utc, parse_utc
from cryptobot.engine.recorder import MemoryRecorder, OrderEvent
from cryptobot.model import (
    Fill,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Side,
    Signal,
    SignalStatus,
    Trade,
    TradeLeg,
)
from tests.conftest import DATA_DIR, REPO_ROOT

T0 = parse_utc("2024-08-05T07:00")
MIN = 60_000
SIGNAL_ID = "BTCUSDT-20240805T0615"
SYMBOL = "BTC/USDT:USDT"


def _stop(n: int, price: float) -> OrderIntent:
    return OrderIntent(f"{SIGNAL_ID}-stop{n}", SYMBOL, Side.SELL, OrderType.STOP_MARKET, 0.001,
                       OrderPurpose.STOP, price, reduce_only=True)


def _trailed_trade(console: ConsoleRecorder, moves: int) -> None:
    """An entry, its first stop, `moves` stop moves (new stop open, old one cancelled), the
    last stop filled, and the trade."""
    entry = OrderIntent(f"{SIGNAL_ID}-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.001,
                        OrderPurpose.ENTRY)
    console.order(OrderEvent(T0, entry, "open"))
    console.fill(Fill(entry.client_id, SYMBOL, T0, Side.BUY, 100.0, 0.001, 0.01, False,
                      OrderPurpose.ENTRY))
    console.order(OrderEvent(T0 + 5 * MIN, entry, "filled"))  # stamped after its fill
    console.order(OrderEvent(T0 + 5 * MIN, _stop(1, 90.0), "open"))
    for n in range(2, moves + 2):
        at = T0 + (5 + 15 * n) * MIN
        console.order(OrderEvent(at, _stop(n, 90.0 + n), "open"))
        console.order(OrderEvent(at, _stop(n - 1, 90.0 + n - 1), "canceled"))
    last = _stop(moves + 1, 91.0 + moves)
    exit_ms = T0 + (10 + 15 * (moves + 1)) * MIN
    console.fill(Fill(last.client_id, SYMBOL, exit_ms, Side.SELL, last.price, 0.001, 0.01,
                      False, OrderPurpose.STOP))
    console.order(OrderEvent(exit_ms + 5 * MIN, last, "filled"))
    console.trade(Trade(SIGNAL_ID, SYMBOL, Side.BUY, T0, 100.0, 0.001, 90.0,
                        (TradeLeg(exit_ms, last.price, 0.001, 0.01, "trailing_stop"),), 0.01),
                  None)


def _printed(verbose: bool, moves: int) -> list[str]:
    out = io.StringIO()
    console = ConsoleRecorder(MemoryRecorder(), Console(file=out, width=300), heartbeat=False,
                              verbose=verbose)
    _trailed_trade(console, moves)
    return out.getvalue().splitlines()


def test_a_trailing_stops_moves_are_one_line_unless_verbose():
    lines = _printed(verbose=False, moves=5)
    stops = [line for line in lines if line.startswith("STOP")]
    assert stops == [f"STOP   {iso_utc(T0 + 95 * MIN)[:16]}Z moved 5 times since "
                     f"{iso_utc(T0 + 35 * MIN)[:16]}Z: 90.00 -> 96.00 ({SIGNAL_ID}-stop6)"]
    assert sum("open stop" in line for line in lines) == 1  # the first stop, as placed
    assert not any("canceled stop" in line for line in lines)
    assert lines.index(stops[0]) < next(i for i, x in enumerate(lines) if "FILL" in x and
                                        "stop6" in x)
    verbose = _printed(verbose=True, moves=5)
    assert sum("open stop" in line for line in verbose) == 6
    assert sum("canceled stop" in line for line in verbose) == 5
    assert not any(line.startswith("STOP") for line in verbose)


def test_order_and_fill_lines_are_in_time_order_without_a_filled_echo():
    for verbose in (False, True):
        lines = _printed(verbose, moves=3)
        stamps = [parse_utc(line.split()[1]) for line in lines
                  if line.split()[0] in ("ORDER", "FILL", "STOP")]
        assert stamps == sorted(stamps), lines
        assert not any(" filled " in line for line in lines)  # the FILL line says it
        assert sum(line.startswith("FILL") for line in lines) == 2


def test_an_entered_signal_says_so_once():
    out = io.StringIO()
    console = ConsoleRecorder(MemoryRecorder(), Console(file=out, width=300), heartbeat=False)
    console.signal(Signal(SIGNAL_ID, SYMBOL, T0 - 45 * MIN, T0, SignalStatus.ENTERED,
                          "entered"), None)
    assert "entered" in out.getvalue() and "entered: entered" not in out.getvalue()


def test_the_run_console_does_not_wrap_when_piped():
    console = run_console()
    console.file = io.StringIO()
    console.print("x" * 200 + " " + "y" * 50)
    assert len(console.file.getvalue().splitlines()) == 1


def test_the_demo_fits_a_screen_and_shows_every_signal_and_trade(run_cli, tmp_path,
                                                                  monkeypatch):
    from cryptobot.store.reader import StoreReader

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "demo.toml"
    config.write_text(f'extends = "{REPO_ROOT / "config" / "replay.toml"}"\n[logging]\n'
                      f'dir = "{tmp_path / "logs"}"\n[risk]\n'
                      f'kill_switch_file = "{tmp_path / "KILL"}"\n')
    db, report = f"sqlite:///{tmp_path / 'demo.sqlite'}", tmp_path / "demo.html"
    code, out, err = run_cli("demo", "--data", str(DATA_DIR / "btc_2024-08_crash"),
                             "--config", str(config), "--db", db, "--out", str(report))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) < 60, out
    reader = StoreReader(db)
    signals, trades = reader.signals(1), reader.trades(1)
    reader.close()
    assert len(signals) >= 10 and len(trades) >= 2  # the crash window's, as stored
    for signal, _ in signals:
        said = [x for x in lines if x.startswith(f"SIGNAL {iso_utc(signal.decided_ms)[:16]}Z")]
        assert len(said) == 1 and str(signal.status) in said[0], signal
    for trade, _ in trades:
        assert sum(x.startswith(f"TRADE  long {iso_utc(trade.entry_ms)[:16]}Z -> "
                                f"{iso_utc(trade.exit_ms)[:16]}Z") for x in lines) == 1
    assert lines[-1] == f"report: {report.resolve()}" and report.is_file()
    assert "entered: entered" not in out
    assert any(line.startswith("STOP ") and "moved" in line for line in lines)
    stamps = [parse_utc(x.split()[1]) for x in lines
              if re.match(r"(SIGNAL|ORDER|FILL|STOP) ", x)]
    assert stamps == sorted(stamps)
    # the stop placed on an entry's fill: the next line, at the same time
    entries = [n for n, x in enumerate(lines) if x.startswith("FILL") and " entry buy " in x]
    assert len(entries) == len(trades)
    for n in entries:
        assert re.match(r"ORDER  \S+ open stop sell stop_market", lines[n + 1]), lines[n:n + 2]
        assert lines[n].split()[1] == lines[n + 1].split()[1]
        assert " fill time " in lines[n]  # the simulator filled it at its candle's open
