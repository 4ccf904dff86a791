"""A backtest holds its event log lines and writes them when the run ends: the same lines, in the
same order, with the same times as logging each event as it happens (paper and live do), and
written even when the run fails half-way."""

from __future__ import annotations

import json
import logging
import textwrap

import numpy as np
import pytest

from cryptobot import secrets
from cryptobot.clock import LiveClock, SimClock, parse_utc
from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.recorder import MemoryRecorder, RunInfo
from cryptobot.logs import HeldLine, configure_logging, process_log_path, write_held_lines
from cryptobot.model import GateAction, GateDecision
from cryptobot.runners.backtest import run_backtest
from cryptobot.runners.event_log import EventLogRecorder
from cryptobot.strategy.loading import load_strategy
from tests.conftest import DATA_DIR, REPO_ROOT, backtest_parts

CRASH = DATA_DIR / "btc_2024-08_crash"
SYMBOL = "BTC/USDT:USDT"
WRITTEN = ("wall_ms", "wall_time")  # when a line was written: the one thing that differs


def _lines(directory) -> list[dict]:
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    text = process_log_path(directory).read_text()
    return [json.loads(line) for line in text.splitlines()]


def _logged_backtest(log_dir, held: bool) -> list[dict]:
    settings = load_settings(REPO_ROOT / "config" / "crosscheck.toml")
    market = load_market_data(CRASH, SYMBOL)
    broker, clock = backtest_parts(settings)
    clock.advance_to(int(market.candles["ts_open_ms"][0]))
    configure_logging(log_dir, console=False, clock_ms=clock.now_ms, wall_clock=LiveClock())
    recorder = EventLogRecorder(MemoryRecorder(), held_clock_ms=clock.now_ms if held else None)
    recorder.start_run(RunInfo("backtest", "binanceusdm", (SYMBOL,), None, None, "x", {}))
    run_backtest(settings, market, load_strategy(settings, SYMBOL), PassThroughGate(),
                 recorder, broker, clock, skip_quiet=True)
    return _lines(log_dir)


def test_held_lines_are_the_lines_logged_one_by_one(tmp_path):
    one_by_one = _logged_backtest(tmp_path / "now", held=False)
    held = _logged_backtest(tmp_path / "held", held=True)
    events = [line["event"] for line in one_by_one]
    assert {"run_start", "signal", "gate", "order", "fill", "trade", "run_finish"} <= set(events)
    assert len({line["ts_ms"] for line in one_by_one}) > 50  # stamped as the run went
    assert [{k: v for k, v in line.items() if k not in WRITTEN} for line in held] == [
        {k: v for k, v in line.items() if k not in WRITTEN} for line in one_by_one]
    assert len({line["wall_ms"] for line in held[1:]}) == 1  # all written at once, at the end
    text = process_log_path(tmp_path / "held").read_text().splitlines()
    assert text == [json.dumps(line, sort_keys=True) for line in held]  # json.dumps's bytes
    assert held[0]["wall_ms"] <= held[1]["wall_ms"]  # run_start before the run, as it began


def test_a_backtest_that_fails_half_way_still_writes_its_lines(run_cli, tmp_path, monkeypatch):
    """A strategy whose targets are on the wrong side stops the run at its first entry fill:
    the lines up to there (run start, signal, orders, the fill) are in the log."""
    (tmp_path / "wrong_targets.py").write_text(textwrap.dedent('''
        from cryptobot.strategy import Enter, Params, Strategy

        class Mine(Strategy):
            Params = Params
            def waiting(self):
                return False
            def trigger(self, c):
                return c.close > c.open
            def on_candle(self, ctx):
                if ctx.has_position:
                    return []
                return [Enter(self.signal_id(ctx.candle.ts_open_ms), ctx.candle.ts_open_ms,
                              ctx.candle.low * 0.97)]
            def exit_targets(self, ctx):
                return (ctx.entry_price * 0.98, ctx.entry_price * 0.99)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "mine.toml"
    config.write_text(f'extends = "{REPO_ROOT / "config" / "crosscheck.toml"}"\n'
                      f'[strategy]\npath = "wrong_targets:Mine"\n'
                      f'[logging]\ndir = "{tmp_path / "logs"}"\n')
    code, out, err = run_cli("backtest", "--config", str(config), "--data", str(CRASH),
                             "--from", "2024-08-04", "--to", "2024-08-06",
                             "--db", f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert code == 2 and err.startswith("error: "), out + err
    events = [line["event"] for line in _lines(tmp_path / "logs") if "event" in line]
    assert events[0] == "run_start" and "run_finish" not in events
    assert {"signal", "order", "fill"} <= set(events)


def test_held_lines_rotate_at_the_size_and_each_stays_whole(tmp_path):
    path = configure_logging(tmp_path, max_bytes=2_000, backup_count=20, console=False)
    logger = logging.getLogger("cryptobot.events")
    logger.info("before", extra={"event": "x"})  # a file already holding a line
    write_held_lines(logger, [HeldLine(index, logging.INFO, f"event {index}",
                                       {"event": "order", "detail": "x" * (index % 7)})
                              for index in range(60)])
    files = [path, *sorted(path.parent.glob(path.name + ".*"))]
    assert len(files) > 3
    assert all(f.stat().st_size <= 2_000 for f in files)
    lines = [json.loads(line) for f in reversed(files) for line in f.read_text().splitlines()]
    assert [line["message"] for line in lines] == ["before"] + [f"event {i}" for i in range(60)]
    assert [line["ts_ms"] for line in lines[1:]] == list(range(60))


def test_held_lines_are_redacted_like_any_other(tmp_path, monkeypatch):
    monkeypatch.setattr(secrets, "_registered", {'k"ey-s3cr3t'})
    path = configure_logging(tmp_path, console=False)
    clock = SimClock(parse_utc("2024-08-05"))
    recorder = EventLogRecorder(MemoryRecorder(), held_clock_ms=clock.now_ms)
    recorder.start_run(RunInfo("backtest", "binanceusdm", (SYMBOL,), None, None, "x", {}))
    recorder.gate_decision(GateDecision(clock.now_ms(), GateAction.BLOCK, 0.0,
                                        ('FRED said k"ey-s3cr3t',)), "daily")
    recorder.write_held_lines()
    text = path.read_text()
    gate = json.loads(text.splitlines()[1])
    assert gate["message"] == "gate BLOCK x0 (daily): FRED said ***"  # escaped in JSON: masked
    # before encoding, as RedactingFilter does for a record (nested values are masked in the
    # encoded line only, as for any record: a secret with a quote in them would stay)


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_other_handlers_get_held_lines_as_records(caplog, level):
    logger = logging.getLogger("cryptobot.events")
    with caplog.at_level(logging.INFO, logger="cryptobot.events"):
        write_held_lines(logger, [HeldLine(7, level, "order rejected", {"event": "order"})])
    [record] = caplog.records
    assert (record.levelno, record.getMessage(), record.event) == (level, "order rejected",
                                                                   "order")


def test_a_log_that_cannot_be_written_is_said_and_the_run_goes_on(tmp_path, capsys):
    configure_logging(tmp_path, console=False)
    [handler] = logging.getLogger("cryptobot").handlers

    class FullDisk:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

        def tell(self):
            return 0

    handler.stream = FullDisk()
    write_held_lines(logging.getLogger("cryptobot.events"),
                     [HeldLine(1, logging.INFO, "order", {"event": "order"})])
    assert "No space left on device" in capsys.readouterr().err


def _every_shape_of_line(recorder: EventLogRecorder, clock: SimClock) -> None:
    """Orders, fills and gate decisions as the run gives them, and with odd values (quotes,
    non-ASCII, no price, non-finite numbers, an int size factor, a numpy number)."""
    from cryptobot.engine.recorder import OrderEvent
    from cryptobot.model import Fill, OrderIntent, OrderPurpose, OrderType, Side

    for price, detail, status in ((61000.5, "", "open"), (None, 'said "no" à 5%', "rejected"),
                                  (float("nan"), "", "canceled")):
        intent = OrderIntent("BTCUSDT-x-entry", SYMBOL, Side.BUY, OrderType.LIMIT,
                             0.1723776260309755, OrderPurpose.ENTRY, price)
        recorder.order(OrderEvent(clock.now_ms(), intent, status, detail))
    for fee in (2.960692528313416, float("nan"), float("-inf"), 3):
        recorder.fill(Fill("BTCUSDT-x-stop", SYMBOL, clock.now_ms(), Side.SELL,
                           34351.239154220544, 0.17, fee, False, OrderPurpose.STOP))
    for factor, reasons in ((1.0, ("macro gate disabled in config: every entry allowed",)),
                            (0.5, ("VIX ≥ 30", 'repo "stress"')), (1, ()),
                            (float("inf"), ("x",)), (np.float64(0.25), ("y",))):
        recorder.gate_decision(GateDecision(clock.now_ms(), GateAction.REDUCE, factor, reasons),
                               "daily")
        clock.advance_to(clock.now_ms() + 60_000)


def test_fixed_shape_lines_are_the_bytes_the_encoder_gives_the_whole_line(tmp_path,
                                                                        monkeypatch):
    """Order, fill and gate lines write their JSON themselves: byte for byte the whole line
    encoded with sorted keys, every odd value included (those fall back to the encoder)."""
    from cryptobot import logs
    from cryptobot.logs import JsonLineFormatter

    # without a wall clock the formatter reads the real one: held still, so that the two
    # formattings compared are written at the same millisecond
    monkeypatch.setattr(logs.LiveClock, "now_ms", lambda self: parse_utc("2026-01-03"))

    clock = SimClock(parse_utc("2024-08-05"))
    recorder = EventLogRecorder(MemoryRecorder(), held_clock_ms=clock.now_ms)
    recorder.start_run(RunInfo("backtest", "binanceusdm", (SYMBOL,), None, None, "x", {}))
    _every_shape_of_line(recorder, clock)
    held = recorder._held
    assert {line.fields["event"] for line in held if line.text is not None} == {
        "order", "fill", "gate"}
    for wall_clock in (SimClock(parse_utc("2026-01-02")), None):  # the same written time
        formatter = JsonLineFormatter(clock.now_ms, wall_clock)
        fast = formatter.held_lines("cryptobot.events", held)
        whole = formatter.held_lines("cryptobot.events", [line._replace(text=None)
                                                          for line in held])
        assert fast == whole
        assert whole == [json.dumps(json.loads(text), sort_keys=True) for text in whole]
    written = [line.text(line.ts_ms, "INFO", line.message, line.fields, '"l"', "}")
               for line in held]
    assert sum(text is not None for text in written) == 3 + 2 + 3  # the others: the encoder's
    order = next(line for line in held if line.fields["event"] == "order")
    other_key = {**{k: v for k, v in order.fields.items() if k != "detail"}, "note": ""}
    for fields in (other_key, {**order.fields, "extra": 1}, {**order.fields, "run_id": None}):
        assert order.text(order.ts_ms, "INFO", order.message, fields, '"l"', "}") is None
