"""Machine-readable trades and signals: `{"trades": [...]}` / `{"signals": [...]}` JSON and CSV,
each row naming its symbol."""

from __future__ import annotations

import csv
import io
import json

from cryptobot.report.lines import SignalLine, TradeLine


def trades_json(lines: list[TradeLine]) -> str:
    return json.dumps({"trades": [line.as_json for line in lines]}, indent=2)


def trades_csv(lines: list[TradeLine]) -> str:
    return _csv([line.csv_row() for line in lines], ["entry_time", "exit_time", "pnl_usdt"])


def signals_json(lines: list[SignalLine]) -> str:
    return json.dumps({"signals": [line.as_json for line in lines]}, indent=2)


def signals_csv(lines: list[SignalLine]) -> str:
    return _csv([line.csv_row() for line in lines], ["time", "status", "reason"])


def _csv(rows: list[dict], empty_columns: list[str]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    if not columns:
        columns = empty_columns
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
