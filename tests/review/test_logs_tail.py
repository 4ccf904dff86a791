"""`cryptobot logs tail`: every process's JSON-lines log, rotated parts included, merged in the
order the lines were written, pretty-printed."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from cryptobot.logs import LEGACY_LOG_FILE_NAME, JsonLineFormatter
from cryptobot.report.logs_view import follow_log

WALL_MS = 1_722_838_500_000  # 2024-08-05T06:15:00Z
A = "cryptobot-20240805T061500Z-101.jsonl"  # two processes started the same second
B = "cryptobot-20240805T061500Z-202.jsonl"


def _line(n: int, level: int = logging.INFO, **extra) -> str:
    """Event n, written at WALL_MS + n minutes."""
    record = logging.makeLogRecord(
        {
            "name": "cryptobot.engine.loop",
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": f"event {n}",
            "created": (WALL_MS + n * 60_000) / 1000,
            **extra,
        }
    )
    return JsonLineFormatter().format(record) + "\n"


def _lines(*numbers: int) -> str:
    return "".join(_line(n) for n in numbers)


def _write_two_processes(directory: Path) -> None:
    """Events 0-10 over two processes writing at once, each rotated, and an older version's
    shared file; the not-JSON line follows event 6 in its file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{A}.2").write_text(_lines(0, 2))
    (directory / f"{A}.1").write_text(_lines(3))
    (directory / A).write_text(_line(6) + "not json at all\n" + _line(9))
    (directory / f"{B}.1").write_text(_lines(1, 4))
    (directory / B).write_text(
        _lines(5) + _line(7, logging.WARNING, signal_id="sig-9")
        + _line(8, logging.ERROR, reason="volume too low")
    )
    (directory / LEGACY_LOG_FILE_NAME).write_text(_lines(10))
    (directory / "cryptobot.sqlite").write_text("not a log")  # other files are left alone


def _events(out: str) -> list[str]:
    return [line.split("event ")[1].split()[0] for line in out.splitlines() if "event " in line]


def test_tail_merges_every_process_and_its_rotated_files_in_time_order(run_cli, tmp_path):
    _write_two_processes(tmp_path / "logs")
    code, out, err = run_cli("logs", "tail", "--dir", str(tmp_path / "logs"), "-n", "100")
    assert code == 0, err
    assert _events(out) == [str(n) for n in range(11)]
    lines = out.strip().splitlines()
    assert lines[lines.index(next(x for x in lines if "event 6" in x)) + 1] == (
        "(not JSON) not json at all"
    )
    assert "2024-08-05T06:22:00Z WARNING cryptobot.engine.loop event 7  signal_id=sig-9" in out
    assert "reason=volume too low" in out and "ERROR" in out and "wall_ms" not in out


def test_tail_shows_the_last_n(run_cli, tmp_path):
    _write_two_processes(tmp_path / "logs")
    code, out, err = run_cli("logs", "tail", "--dir", str(tmp_path / "logs"), "-n", "5")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 5
    assert _events(out) == ["7", "8", "9", "10"]  # and the not-JSON line after 6


def test_tail_uses_the_configs_log_dir(run_cli, tmp_path):
    _write_two_processes(tmp_path / "mylogs")
    config = tmp_path / "c.toml"
    config.write_text(f'[logging]\ndir = "{tmp_path / "mylogs"}"\n')
    code, out, _ = run_cli("logs", "tail", "--config", str(config), "-n", "2")
    assert code == 0 and _events(out) == ["9", "10"]


def test_missing_log_is_a_clear_error(run_cli, tmp_path):
    code, out, err = run_cli("logs", "tail", "--dir", str(tmp_path / "nothing"))
    assert code == 2 and "no log files" in err and "Traceback" not in err + out


def test_follow_prints_new_events_across_rotations_and_new_processes(tmp_path):
    directory = tmp_path / "logs"
    directory.mkdir()
    first = directory / A
    first.write_text(_line(0))  # already there: follow starts after it
    second = directory / B
    console = Console(record=True, width=200)

    def append(path: Path, text: str) -> None:
        with path.open("a") as handle:
            handle.write(text)

    steps = iter(
        [
            lambda: append(first, _line(1) + _line(2)[:30]),  # a half-written line
            lambda: append(first, _line(2)[30:]),
            lambda: second.write_text(_line(3) + _line(4)),  # a process started since
            lambda: (
                append(first, _line(5)),  # written just before its file rotates
                first.rename(directory / f"{A}.1"),
                first.write_text(_line(7)),
                append(second, _line(6)),
            ),
            lambda: append(first, _line(8)),
        ]
    )
    done = []

    def sleep(_seconds: float) -> None:
        step = next(steps, None)
        if step is None:
            done.append(True)
        else:
            step()

    follow_log(directory, console, sleep=sleep, should_stop=lambda: bool(done))
    printed = console.export_text()
    # within one poll in the order written; across polls in the order found
    assert [line.split("event ")[1] for line in printed.splitlines()] == [
        "1", "2", "3", "4", "5", "6", "7", "8"
    ]


def _write_two_runs(directory: Path) -> None:
    """Run 1 in process A, run 2 in process B (started later); each line after a `run_start`
    belongs to that run, named or not (A's rotated part goes on with run 1)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{A}.1").write_text(
        _line(0, event="run_start", run_id="1", mode="paper")
        + _line(1, event="order", run_id="1"))
    (directory / A).write_text(
        _line(2, logging.WARNING, event="protection")  # a broker's line: no run_id of its own
        + _line(6, event="run_finish", run_id="1"))
    (directory / B).write_text(
        _line(3, event="run_start", run_id="2", mode="live")
        + _line(4, event="fill", run_id="2")
        + _line(5, logging.ERROR, event="error"))


def _tail(run_cli, directory: Path, *options: str) -> list[str]:
    code, out, err = run_cli("logs", "tail", "--dir", str(directory), "-n", "50", *options)
    assert code == 0, err
    return _events(out)


def test_tail_filters_by_run_level_and_event(run_cli, tmp_path):
    logs = tmp_path / "logs"
    _write_two_runs(logs)
    assert _tail(run_cli, logs) == ["0", "1", "2", "3", "4", "5", "6"]
    assert _tail(run_cli, logs, "--run", "1") == ["0", "1", "2", "6"]
    assert _tail(run_cli, logs, "--run", "2") == ["3", "4", "5"]
    assert _tail(run_cli, logs, "--level", "warning") == ["2", "5"]
    assert _tail(run_cli, logs, "--level", "ERROR", "--run", "1") == []
    assert _tail(run_cli, logs, "--event", "order,fill") == ["1", "4"]
    assert _tail(run_cli, logs, "--event", "protection", "--run", "1", "-n", "1") == ["2"]
    code, _, err = run_cli("logs", "tail", "--dir", str(logs), "--level", "LOUD")
    assert code == 2 and err.startswith("error: --level 'LOUD': one of DEBUG")


def test_follow_filters_too(tmp_path):
    from cryptobot.report.logs_view import LogFilter

    directory = tmp_path / "logs"
    directory.mkdir()
    first = directory / A
    first.write_text(_line(0, event="run_start", run_id="1", mode="live"))
    console = Console(record=True, width=200)
    steps = iter([lambda: first.write_text(
        first.read_text() + _line(1, logging.WARNING, event="protection")
        + _line(2, event="order", run_id="1") + _line(3, event="run_start", run_id="2")
        + _line(4, logging.WARNING, event="protection"))])
    done = []

    def sleep(_seconds: float) -> None:
        step = next(steps, None)
        done.append(step is None)
        if step is not None:
            step()

    follow_log(directory, console, sleep=sleep, should_stop=lambda: any(done),
               wanted=LogFilter("WARNING", "1"))
    assert _events(console.export_text()) == ["1"]


def test_nested_fields_are_named_unless_full(run_cli, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / A).write_text(_line(0, event="signal", run_id="1",
                                gate={"action": "REDUCE", "size_factor": 0.5}))
    code, out, _ = run_cli("logs", "tail", "--dir", str(logs))
    assert code == 0 and "gate={2 fields}" in out and "REDUCE" not in out
    code, out, _ = run_cli("logs", "tail", "--dir", str(logs), "--full")
    assert code == 0 and 'gate={"action": "REDUCE", "size_factor": 0.5}' in out
