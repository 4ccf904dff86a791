"""Machine-readable trades: `{"trades": [...]}` JSON and CSV, each row naming its symbol."""

from __future__ import annotations

import csv
import io
import json

from cryptobot.report.lines import TradeLine


def trades_json(lines: list[TradeLine]) -> str:
    return json.dumps({"trades": [line.as_json for line in lines]}, indent=2)


def trades_csv(lines: list[TradeLine]) -> str:
    rows = [line.csv_row() for line in lines]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    if not columns:
        columns = ["entry_time", "exit_time", "pnl_usdt"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
