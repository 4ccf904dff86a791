"""Bad inputs a user (or a venue) can hand cryptobot, each run as a `cryptobot` subprocess.

    python benchmarks/robust_bad_inputs.py [--only NAME ...]

Five families, 60 or more inputs: config files (wrong types, unknown keys, timeframes the venue
lacks, inf and nan, a folder, a binary file, unwritable folders), data files (NaN, zero and
negative prices, high below low, another market, off-grid, future, duplicated and shuffled
rows; each through `backtest` and through `paper --replay`, which must agree), command-line
options, DB URLs and files (bad scheme, unreachable host, unwritable folder, a corrupt or
foreign SQLite file, a read-only database), and stream messages: wrong klines injected into the
loopback stream of a paper replay of the bundled crash window.

Counts, with their goals:
- bad_inputs (60 or more) and bad_inputs_clear (all): a clear answer is exit code 2 with stderr
  exactly one line starting `error:`; for a stream message, the replay completes and reports the
  refused message as a counted warning (`stream_results_changed` counts replays whose trades
  differ from the clean one: goal 0, the good candles around a bad one are all kept);
- tracebacks (0): any "Traceback" in stdout or stderr;
- rows_changed (0): a SQLite store holding a run is hashed before and after every input that
  names it; a change or a loss counts.
`unclear` lists what was not clear, with its output, so a failure says where to look.
Where the runner is root, unwritable folders are tried as the user nobody (setpriv); elsewhere
as the runner itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CRASH = REPO / "data" / "btc_2024-08_crash"
CANDLES_FILE = "binance_um_BTCUSDT_5m_2024-08-05_window.csv"
WINDOW = ("--from", "2024-08-04", "--to", "2024-08-06")  # 864 candles, 2 trades
INJECT_AT = "2024-08-05T03:00:00Z"  # a position is open: a wrong price would hit its stop
DAY_MS = 86_400_000
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
RESULT_LINE = re.compile(r"paper run finished: .*")
TIMEOUT_S = 180
SHOW = False  # --show: each case's answer on stderr as it comes


@dataclass(frozen=True)
class Case:
    name: str
    family: str  # config, data, cli, db, stream
    argv: Callable[[Lab], list[str]]
    touches_store: bool = True  # runs against the hashed store
    as_other_user: bool = False  # needs a user for whom chmod counts


@dataclass
class Outcome:
    case: Case
    code: int
    out: str
    err: str

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.out or "Traceback" in self.err

    def clear(self) -> bool:
        if self.case.family == "stream":
            return self.code == 0 and bool(re.search(
                r"stream: [1-9]\d* message\(s\) refused by the market-data checks", self.err))
        lines = self.err.splitlines()
        return self.code == 2 and len(lines) == 1 and lines[0].startswith("error:")

    def result(self) -> str | None:
        found = RESULT_LINE.findall(self.out)
        return found[-1] if found else None


@dataclass
class Lab:
    """The folders, files and store the cases use, in `root`: a folder any user may enter (the
    cases tried as nobody read the config and the data from here, and run in it)."""

    root: Path
    config: Path = field(init=False)
    store_url: str = field(init=False)

    def __post_init__(self) -> None:
        macro = REPO / "data" / "macro"
        self.config = self.root / "base.toml"
        self.config.write_text(
            f'extends = "{REPO / "config" / "replay.toml"}"\n[macro]\n'
            f'snapshot_dir = "{macro}"\nhyg_csv = "{macro / "HYG_daily_adjusted.csv"}"\n'
            f'cache_dir = "{self.root / "macro_cache"}"\n[logging]\ndir = "{self.root / "logs"}"\n'
            f'[risk]\nkill_switch_file = "{self.root / "KILL"}"\n')
        self.store = self.root / "store" / "runs.sqlite"
        self.store_url = f"sqlite:///{self.store}"

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.root / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def config_with(self, name: str, text: str) -> Path:
        return self.file(f"{name}.toml", f'extends = "{self.config}"\n{text}\n')

    def data_with(self, name: str, change: Callable[[list[str]], list[str]],
                  file_name: str = CANDLES_FILE) -> Path:
        """The crash folder with its candle file's lines changed (header first)."""
        folder = self.root / "data" / name
        if not folder.exists():
            shutil.copytree(CRASH, folder)
            (folder / CANDLES_FILE).unlink()
            lines = (CRASH / CANDLES_FILE).read_text().splitlines()
            (folder / file_name).write_text("\n".join(change(lines)) + "\n")
        return folder


def _backtest(lab: Lab, *extra: str, config: Path | None = None, data: Path = CRASH,
              db: str | None = None) -> list[str]:
    return ["backtest", "--data", str(data), "--config", str(config or lab.config),
            "--db", db or lab.store_url, *WINDOW, *extra]


def _replay(lab: Lab, *extra: str, data: Path = CRASH, db: str | None = None) -> list[str]:
    return ["paper", "--replay", str(data), "--config", str(lab.config), "--db",
            db or lab.store_url, "--no-heartbeat", *WINDOW, *extra]


# ---- config files -----------------------------------------------------------------------

CONFIG_TEXTS = {
    "string for a boolean": '[macro]\nenabled = "yes"',
    "number for a boolean": "[exits]\ntrailing = 1",
    "string for a number": '[risk]\natr_period = "14"',
    "string for a float": '[risk]\nrisk_per_trade = "0.01"',
    "out of range": "[risk]\nrisk_per_trade = 0.5",
    "unknown key": "[risk]\nrisk_per_trad = 0.01",
    "unknown section": "[riskk]\nrisk_per_trade = 0.01",
    "banana timeframe": '[market]\nbase_timeframe = "banana"',
    "banana signal timeframe": '[market]\nsignal_timeframe = "banana"',
    "base timeframe no venue has": '[market]\nbase_timeframe = "7m"\nsignal_timeframe = "14m"',
    "base longer than signal": '[market]\nbase_timeframe = "1h"',
    "signal not built of base": '[market]\nbase_timeframe = "5m"\nsignal_timeframe = "8m"',
    "bybit lacks 8h": '[market]\nexchange = "bybit"\nbase_timeframe = "8h"\n'
                      'signal_timeframe = "1d"',
    "unknown exchange": '[market]\nexchange = "kraken"',
    "inf equity": "[risk]\nstarting_equity_usdt = inf",
    "nan slippage": "[costs]\nslippage_bps = nan",
    "-inf notional": "[risk]\nmax_notional_usdt = -inf",
    "inf strategy parameter": "[strategy.params]\nspike_body_atr = inf",
    "empty kill switch": '[risk]\nkill_switch_file = ""',
    "unknown log level": '[logging]\nlevel = "LOUD"',
    "number for a URL": "[feed]\nws_url = 3",
    "strategy that does not load": '[strategy]\npath = "nowhere.at_all:Nothing"',
    "broken TOML": "[risk\nrisk_per_trade = 0.01",
}


def _config_cases() -> list[Case]:
    cases = [Case(f"config: {name}", "config",
                  lambda lab, name=name, text=text: _backtest(lab, config=lab.config_with(
                      re.sub(r"\W+", "_", name), text)))
             for name, text in CONFIG_TEXTS.items()]
    cases += [
        Case("config: binary file", "config", lambda lab: _backtest(
            lab, config=lab.file("binary.toml", bytes(range(256)) * 4))),
        Case("config: a folder", "config", lambda lab: _backtest(lab, config=lab.root)),
        Case("config: missing file", "config", lambda lab: _backtest(
            lab, config=lab.root / "missing.toml")),
        Case("config: extends itself", "config", lambda lab: _backtest(
            lab, config=lab.file("loop.toml", 'extends = "loop.toml"\n'))),
        Case("config: log folder under a file", "config", lambda lab: _backtest(
            lab, config=lab.config_with("log_under_file",
                                        f'[logging]\ndir = "{_a_file(lab)}/logs"'))),
        Case("config: unwritable log folder", "config", lambda lab: _backtest(
            lab, config=lab.config_with("log_unwritable",
                                        f'[logging]\ndir = "{_read_only_dir(lab)}/logs"'),
            db=f"sqlite:///{lab.root / 'writable' / 'runs.sqlite'}"),
             touches_store=False, as_other_user=True),
    ]
    return cases


def _a_file(lab: Lab) -> Path:
    return lab.file("a_file", "not a folder\n")


def _read_only_dir(lab: Lab) -> Path:
    folder = lab.root / "read_only"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    return folder


# ---- data files: each through backtest and through paper --replay ----------------------------

def _set(column: int, value: str, row: int = 2000) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        fields = lines[row].split(",")
        fields[column] = value
        return [*lines[:row], ",".join(fields), *lines[row + 1:]]
    return change


def _shift_time(ms: int, row: int = 2000) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        fields = lines[row].split(",")
        fields[0] = str(int(fields[0]) + ms)
        return [*lines[:row], ",".join(fields), *lines[row + 1:]]
    return change


def _append_future(lines: list[str]) -> list[str]:
    fields = lines[-1].split(",")
    fields[0], fields[1] = "1924992000000", "2031-01-01T00:00:00Z"
    return [*lines, ",".join(fields)]


def _shuffled(lines: list[str]) -> list[str]:
    body = lines[1:]
    return [lines[0], *body[1::2], *body[::2]]


DATA_CHANGES: dict[str, tuple[Callable[[list[str]], list[str]], str]] = {
    "NaN close": (_set(5, "NaN"), CANDLES_FILE),
    "zero close": (_set(5, "0"), CANDLES_FILE),
    "negative low": (_set(4, "-1.5"), CANDLES_FILE),
    "high below low": (_set(3, "1000"), CANDLES_FILE),
    "open above high": (_set(2, "99999"), CANDLES_FILE),
    "negative volume": (_set(6, "-3"), CANDLES_FILE),
    "text for a price": (_set(5, "n/a"), CANDLES_FILE),
    "off-grid time": (_shift_time(60_000), CANDLES_FILE),
    "future time": (_append_future, CANDLES_FILE),
    "duplicated rows": (lambda lines: [*lines[:3000], *lines[2990:]], CANDLES_FILE),
    "shuffled rows": (_shuffled, CANDLES_FILE),
    "another market": (lambda lines: lines, CANDLES_FILE.replace("BTCUSDT", "ETHUSDT")),
    "missing columns": (lambda lines: [line.rsplit(",", 2)[0] for line in lines], CANDLES_FILE),
    "empty file": (lambda lines: [], CANDLES_FILE),
}


def _data_cases() -> list[Case]:
    cases = []
    for name, (change, file_name) in DATA_CHANGES.items():
        def folder(lab: Lab, name: str = name, change=change, file_name: str = file_name):
            return lab.data_with(re.sub(r"\W+", "_", name), change, file_name)
        cases.append(Case(f"data, backtest: {name}", "data",
                          lambda lab, folder=folder: _backtest(lab, data=folder(lab))))
        cases.append(Case(f"data, replay: {name}", "data",
                          lambda lab, folder=folder: _replay(lab, data=folder(lab))))
    cases.append(Case("data: binary candle file", "data", lambda lab: _backtest(
        lab, data=lab.file("garbage.csv", bytes(range(256)) * 8))))
    cases.append(Case("data: folder without candles", "data", lambda lab: _backtest(
        lab, data=lab.file("notes/README.md", "# nothing\n").parent)))
    return cases


# ---- command-line options -------------------------------------------------------------------

def _cli_cases() -> list[Case]:
    return [
        Case("cli: --json true", "cli", lambda lab: _backtest(lab, "--json", "true")),
        Case("cli: misspelt option", "cli", lambda lab: _backtest(lab, "--jsno")),
        Case("cli: negative speed", "cli", lambda lab: _replay(lab, "--speed", "-1")),
        Case("cli: --from not a date", "cli", lambda lab: [
            "backtest", "--data", str(CRASH), "--config", str(lab.config), "--db",
            lab.store_url, "--from", "yesterday"]),
        Case("cli: --to before --from", "cli", lambda lab: [
            "backtest", "--data", str(CRASH), "--config", str(lab.config), "--db",
            lab.store_url, "--from", "2024-08-06", "--to", "2024-08-04"]),
        Case("cli: another market's symbol", "cli", lambda lab: _backtest(
            lab, "--symbol", "ETH/USDT:USDT")),
        Case("cli: missing --data", "cli", lambda lab: ["backtest", "--config", str(lab.config)]),
        Case("cli: unknown command", "cli", lambda lab: ["bakctest"]),
        Case("cli: import a README", "cli", lambda lab: [
            "data", "import", "--store", str(lab.root / "market"), str(REPO / "data" /
                                                                      "README.md")]),
    ]


# ---- DB URLs and files ----------------------------------------------------------------------

def _db_cases() -> list[Case]:
    def backtest_into(url: Callable[[Lab], str]) -> Callable[[Lab], list[str]]:
        return lambda lab: _backtest(lab, db=url(lab))

    def corrupt(lab: Lab) -> str:
        return f"sqlite:///{lab.file('corrupt.sqlite', b'SQLite format 3' + bytes(4000))}"

    def foreign(lab: Lab) -> str:
        path = lab.root / "inputs" / "foreign.sqlite"
        if not path.exists():
            with sqlite3.connect(path) as connection:
                connection.execute("CREATE TABLE notes (text TEXT)")
        return f"sqlite:///{path}"

    def read_only_db(lab: Lab) -> str:
        folder = lab.root / "read_only_db"
        if not folder.exists():
            folder.mkdir()
            shutil.copy(lab.store, folder / "runs.sqlite")
            (folder / "runs.sqlite").chmod(0o444)
            folder.chmod(0o555)
        return f"sqlite:///{folder / 'runs.sqlite'}"

    return [
        Case("db: unknown scheme", "db", backtest_into(lambda lab: "foo://nowhere/db"),
             touches_store=False),
        Case("db: not a URL", "db", backtest_into(lambda lab: "just some words"),
             touches_store=False),
        Case("db: unreachable PostgreSQL", "db", backtest_into(
            lambda lab: "postgresql+psycopg://bot:secret@127.0.0.1:9/bot"), touches_store=False),
        Case("db: MySQL without a driver", "db", backtest_into(
            lambda lab: "mysql://bot:secret@127.0.0.1:9/bot"), touches_store=False),
        Case("db: folder under a file", "db", backtest_into(
            lambda lab: f"sqlite:///{_a_file(lab)}/runs.sqlite"), touches_store=False),
        Case("db: unwritable folder", "db", backtest_into(
            lambda lab: f"sqlite:///{_read_only_dir(lab)}/new/runs.sqlite"),
             touches_store=False, as_other_user=True),
        Case("db: read-only database, written", "db", backtest_into(read_only_db),
             touches_store=False, as_other_user=True),
        Case("db: corrupt SQLite file", "db", backtest_into(corrupt), touches_store=False),
        Case("db: corrupt SQLite file, read", "db", lambda lab: [
            "trades", "--db", corrupt(lab)], touches_store=False),
        Case("db: another app's SQLite file", "db", lambda lab: [
            "runs", "--db", foreign(lab)], touches_store=False),
        Case("db: a folder as the database", "db", lambda lab: [
            "runs", "--db", f"sqlite:///{lab.root}"], touches_store=False),
        Case("db: missing database, read", "db", lambda lab: [
            "trades", "--db", f"sqlite:///{lab.root / 'missing.sqlite'}"], touches_store=False),
        Case("db: unknown run", "db", lambda lab: ["trades", "--db", lab.store_url, "--run",
                                                   "999"]),
        Case("db: report into a folder under a file", "db", lambda lab: [
            "report", "--db", lab.store_url, "--out", f"{_a_file(lab)}/report.html"]),
    ]


# ---- stream messages: wrong klines injected into a replay's loopback stream --------------------

STREAM_KINDS = ("nan-close", "zero-close", "negative-low", "high-below-low", "negative-volume",
                "off-grid", "another-market", "future-dated", "future-dated-and-stamped")


def _stream_cases() -> list[Case]:
    return [Case(f"stream: {kind} ({mode})", "stream",
                 lambda lab, kind=kind, mode=mode: ["--inject", f"{kind}:{mode}", *_replay(
                     lab, db=f"sqlite:///{lab.root / 'streams.sqlite'}")], touches_store=False)
            for kind in STREAM_KINDS for mode in ("insert", "replace")]


def corrupt_kline(text: str, kind: str) -> str:
    """A Binance kline message made wrong in one way, still well-formed."""
    message = json.loads(text)
    data, kline = message["data"], message["data"]["k"]
    if kind == "nan-close":
        kline["c"] = "NaN"
    elif kind == "zero-close":
        kline["c"] = "0"
    elif kind == "negative-low":
        kline["l"] = "-1"
    elif kind == "high-below-low":
        kline["h"], kline["l"] = kline["l"], kline["h"]
    elif kind == "negative-volume":
        kline["v"] = "-5"
    elif kind == "off-grid":
        kline["t"], kline["T"] = kline["t"] + 60_000, kline["T"] + 60_000
    elif kind == "another-market":
        data["s"] = kline["s"] = "ETHUSDT"
        kline.update(o="2510.0", h="2520.0", l="2490.0", c="2498.0")
    elif kind.startswith("future-dated"):
        kline["t"], kline["T"] = kline["t"] + DAY_MS, kline["T"] + DAY_MS
        if kind.endswith("stamped"):
            data["E"] += DAY_MS
    return json.dumps(message, separators=(",", ":"))


def _run_injected(spec: str, argv: list[str]) -> None:
    """The driver of a stream case: `cryptobot ARGV` with one kline message corrupted."""
    from cryptobot.clock import parse_utc
    from cryptobot.exchange import replay

    kind, mode = spec.split(":")
    build = replay.kline_messages
    at_ms = parse_utc(INJECT_AT)

    def with_a_wrong_one(symbol, candles, *frame_delay_ms):
        messages = build(symbol, candles, *frame_delay_ms)
        i = next(n for n, (_, text) in enumerate(messages) if f'"t":{at_ms},' in text)
        wrong = (messages[i][0], corrupt_kline(messages[i][1], kind))
        return [*messages[:i], wrong, *messages[i + (mode == "replace"):]]

    replay.kline_messages = with_a_wrong_one
    from cryptobot.cli import main as cryptobot_main

    cryptobot_main(argv)


# ---- running ----------------------------------------------------------------------------------

def all_cases() -> list[Case]:
    return [*_config_cases(), *_data_cases(), *_cli_cases(), *_db_cases(), *_stream_cases()]


def _other_user_prefix() -> list[str] | None:
    """How to run as a user whom chmod binds: nobody when we are root, else ourselves."""
    if os.geteuid() != 0:
        return []
    return NOBODY if shutil.which("setpriv") else None


def run_case(case: Case, lab: Lab) -> Outcome | None:
    """One case as a subprocess (None when it cannot be tried here)."""
    prefix: list[str] = []
    if case.as_other_user:
        found = _other_user_prefix()
        if found is None:
            return None
        prefix = found
    argv = case.argv(lab)
    if argv[0] == "--inject":
        command = [sys.executable, str(Path(__file__).resolve()), *argv]
    else:
        command = [sys.executable, "-m", "cryptobot", *argv]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run([*prefix, *command], cwd=lab.root, capture_output=True, text=True,
                          env=env, timeout=TIMEOUT_S, check=False)
    return Outcome(case, done.returncode, done.stdout, done.stderr)


def store_hash(path: Path) -> str:
    """Every row of every table, in a stable order (read-only: hashing changes nothing)."""
    digest = hashlib.sha256()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            rows = sorted(repr(row) for row in connection.execute(f'SELECT * FROM "{table}"'))
            digest.update(f"{table}:{len(rows)}:".encode())
            for row in rows:
                digest.update(row.encode())
    connection.close()
    return digest.hexdigest()


def prepare(lab: Lab, clean_replay: bool = True) -> Callable[[Lab], str | None]:
    """The store with one run in it; returns what the clean replay (the one the stream cases
    compare with) ends with, run now or, without `clean_replay`, on first use."""
    lab.store.parent.mkdir(parents=True, exist_ok=True)
    stored = run_case(Case("setup: a stored run", "setup", lambda lab: _backtest(lab)), lab)
    assert stored is not None and stored.code == 0, stored and stored.err
    found: list[str | None] = []

    def clean(lab: Lab) -> str | None:
        if not found:
            replayed = run_case(Case("setup: clean replay", "setup", lambda lab: _replay(
                lab, db=f"sqlite:///{lab.root / 'streams.sqlite'}")), lab)
            assert replayed is not None and replayed.code == 0, replayed and replayed.err
            found.append(replayed.result())
        return found[0]

    if clean_replay:
        clean(lab)
    return clean


def bad_inputs(tmp_dir: Path, only: list[str] | None = None) -> dict:
    """Try every bad input (or those whose names contain one of `only`); the counts."""
    # The cases tried as nobody must reach the folder: inside `tmp_dir` if they can, else in
    # the system's temporary folder.
    parent = Path(tmp_dir) if _others_can_enter(Path(tmp_dir)) else None
    root = Path(tempfile.mkdtemp(prefix="cryptobot-bad-inputs-", dir=parent))
    root.chmod(0o777)
    (root / "writable").mkdir(mode=0o777)
    (root / "writable").chmod(0o777)
    try:
        lab = Lab(root)
        clean = prepare(lab)(lab)
        return _count(lab, clean, [c for c in all_cases()
                                   if not only or any(o in c.name for o in only)])
    finally:
        for path in [root, *root.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(stat.S_IRWXU)
        shutil.rmtree(root, ignore_errors=True)


def _others_can_enter(folder: Path) -> bool:
    return all(path.stat().st_mode & stat.S_IXOTH for path in [folder.resolve(),
                                                                 *folder.resolve().parents])


def _count(lab: Lab, clean: str | None, cases: list[Case]) -> dict:
    counts = {"bad_inputs": 0, "bad_inputs_clear": 0, "tracebacks": 0, "rows_changed": 0,
              "stream_results_changed": 0, "not_tried": [], "unclear": []}
    for case in cases:
        before = store_hash(lab.store) if case.touches_store else None
        outcome = run_case(case, lab)
        if outcome is None:
            counts["not_tried"].append(case.name)
            continue
        counts["bad_inputs"] += 1
        if outcome.clear():
            counts["bad_inputs_clear"] += 1
        else:
            counts["unclear"].append({"case": case.name, "exit": outcome.code,
                                      "stderr": outcome.err[-600:],
                                      "stdout": outcome.out[-300:]})
        if SHOW:
            answer = outcome.err.strip().splitlines()[-1:] or ["(nothing on stderr)"]
            print(f"{case.name}: exit {outcome.code}: {answer[0][:160]}", file=sys.stderr)
        counts["tracebacks"] += outcome.traceback
        if before is not None and store_hash(lab.store) != before:
            counts["rows_changed"] += 1
        if case.family == "stream" and outcome.result() != clean:
            counts["stream_results_changed"] += 1
    counts["clean_replay"] = clean
    return counts


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--inject":  # a stream case's own process
        _run_injected(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="only cases whose names contain these")
    parser.add_argument("--show", action="store_true", help="print each case's answer")
    args = parser.parse_args()
    global SHOW
    SHOW = args.show
    with tempfile.TemporaryDirectory(prefix="cryptobot-bad-inputs-") as folder:
        print(json.dumps(bad_inputs(Path(folder), args.only), indent=1))


if __name__ == "__main__":
    main()
