"""`cryptobot logs tail`: the JSON-lines log, rotated files included, pretty-printed."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from cryptobot.logs import LOG_FILE_NAME, JsonLineFormatter
from cryptobot.report.logs_view import follow_log


def _line(n: int, level: int = logging.INFO, **extra) -> str:
    record = logging.makeLogRecord(
        {
            "name": "cryptobot.engine.loop",
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": f"event {n}",
            **extra,
        }
    )
    return JsonLineFormatter(clock_ms=lambda: 1722838500000 + n * 60_000).format(record) + "\n"


def _write_rotated(directory: Path) -> None:
    """Events 0-8 over cryptobot.jsonl.2 (oldest), .1 and the current file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{LOG_FILE_NAME}.2").write_text("".join(_line(n) for n in range(0, 3)))
    (directory / f"{LOG_FILE_NAME}.1").write_text("".join(_line(n) for n in range(3, 6)))
    (directory / LOG_FILE_NAME).write_text(
        _line(6)
        + "not json at all\n"
        + _line(7, logging.WARNING, signal_id="sig-9")
        + _line(8, logging.ERROR, reason="volume too low")
    )


def test_tail_reads_across_rotated_files_in_order(run_cli, tmp_path):
    _write_rotated(tmp_path / "logs")
    code, out, err = run_cli("logs", "tail", "--dir", str(tmp_path / "logs"), "-n", "6")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 6
    assert [line.split("event ")[1].split()[0] for line in lines if "event" in line] == [
        "4",
        "5",
        "6",
        "7",
        "8",
    ]
    assert "(not JSON) not json at all" in out
    assert "2024-08-05T06:22:00Z WARNING cryptobot.engine.loop event 7  signal_id=sig-9" in out
    assert "reason=volume too low" in out and "ERROR" in out


def test_tail_uses_the_configs_log_dir(run_cli, tmp_path):
    _write_rotated(tmp_path / "mylogs")
    config = tmp_path / "c.toml"
    config.write_text(f'[logging]\ndir = "{tmp_path / "mylogs"}"\n')
    code, out, _ = run_cli("logs", "tail", "--config", str(config), "-n", "1")
    assert code == 0 and "event 8" in out and "event 7" not in out


def test_missing_log_is_a_clear_error(run_cli, tmp_path):
    code, out, err = run_cli("logs", "tail", "--dir", str(tmp_path / "nothing"))
    assert code == 2 and "no log file" in err and "Traceback" not in err + out


def test_follow_prints_new_events_across_a_rotation(tmp_path):
    directory = tmp_path / "logs"
    directory.mkdir()
    current = directory / LOG_FILE_NAME
    current.write_text(_line(0))  # already there: follow starts after it
    console = Console(record=True, width=200)
    steps = iter(
        [
            lambda: current.open("a").write(_line(1) + _line(2)[:30]),  # a half-written line
            lambda: current.open("a").write(_line(2)[30:]),
            lambda: (
                current.rename(directory / f"{LOG_FILE_NAME}.1"),
                current.write_text(_line(3)),
            ),
            lambda: current.open("a").write(_line(4)),
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
    assert [line.split("event ")[1] for line in printed.splitlines()] == ["1", "2", "3", "4"]
