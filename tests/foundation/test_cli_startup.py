"""The CLI starts without its heavy libraries: a command line imports only the module of the
command it names, and that module imports pandas, ccxt, SQLAlchemy and plotly only when the
command runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

HEAVY = ("pandas", "ccxt", "sqlalchemy", "plotly", "numpy", "aiohttp", "websockets")


def _command_names(app) -> dict[str, str]:
    """Every command and group registered on `app`, with the module that registers it."""
    names = {info.name or info.callback.__name__.replace("_", "-"): info.callback.__module__
             for info in app.registered_commands}
    for group in app.registered_groups:
        names[group.name] = group.typer_instance.registered_commands[0].callback.__module__
    return names


def test_every_command_is_mapped_to_the_module_that_registers_it():
    from cryptobot.cli import COMMAND_MODULES, app, register_commands

    register_commands([])  # all of them
    assert _command_names(app) == {name: f"cryptobot.cli.{module}"
                                   for name, module in COMMAND_MODULES.items()}


def test_help_of_the_run_and_review_commands_imports_no_heavy_library():
    script = (
        "import sys\n"
        "from cryptobot.cli import main\n"
        "for argv in (['backtest', '--help'], ['paper', '--help'], ['live', '--help'],\n"
        "             ['report', '--help'], ['logs', 'tail', '--help'], ['demo', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "--from" in done.stdout and "--replay" in done.stdout  # the helps were printed
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_user_error_is_still_one_line_and_exit_code_2(run_cli, tmp_path):
    code, out, err = run_cli("backtest", "--data", str(tmp_path / "nope"), "--config",
                             str(tmp_path / "missing.toml"))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "missing.toml" in err


def test_an_option_error_is_one_line_and_exit_code_2(run_cli, tmp_path):
    for args in (["backtest", "--data", str(tmp_path), "--json", "true"],
                 ["backtest", "--data", str(tmp_path), "--jsn"],
                 ["paper", "--speed", "fast"], ["backtest"], ["nosuchcommand"]):
        code, out, err = run_cli(*args)
        assert (code, out) == (2, ""), args
        assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert "--help" in err


def test_help_shows_flags_as_flags():
    from typer.testing import CliRunner

    from cryptobot.cli import register_commands
    from cryptobot.cli.app import app

    register_commands(["backtest"])
    done = CliRunner().invoke(app, ["backtest", "--help"], terminal_width=100)
    assert done.exit_code == 0
    json_line = next(line for line in done.output.splitlines() if "--json" in line)
    assert "<bool>" not in done.output and "<bool>" not in json_line
    assert "<path>" in done.output  # options that take a value still say which


def _modules_after(argv: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has imported after `cryptobot ARGV`."""
    script = (
        "import sys\n"
        "from cryptobot.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"print(sorted(m for m in {watched!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])  # a printed list of module names


def test_the_whole_help_imports_no_settings_model_and_no_heavy_library():
    # Every command module is imported for it: none may load pydantic's settings at import.
    # Plain help: rich's markdown renderer (markdown-it, pygments) is not loaded for it either.
    assert _modules_after(["--help"], (*HEAVY, "pydantic", "alembic", "dask", "markdown_it",
                                       "pygments")) == []


CRASH = REPO_ROOT / "data" / "btc_2024-08_crash"


def _feather_folder(folder):
    """The crash window's candles as a freqtrade feather file, beside its funding CSV."""
    import shutil

    import pyarrow as pa
    import pyarrow.feather as feather

    from cryptobot.data import load_market_data

    candles = load_market_data(CRASH, "BTC/USDT:USDT").candles
    folder.mkdir()
    dates = pa.array(candles["ts_open_ms"] * 1_000_000, type=pa.timestamp("ns", tz="UTC"))
    feather.write_feather(pa.table({"date": dates, **{name: candles[name] for name in (
        "open", "high", "low", "close", "volume")}}), folder / "BTC_USDT_USDT-5m-futures.feather")
    for funding in CRASH.glob("*funding*.csv"):
        shutil.copy(funding, folder)
    return folder


@pytest.mark.parametrize("layout", ["csv", "feather"])
def test_a_backtest_on_a_current_store_imports_only_what_it_runs(tmp_path, layout):
    from cryptobot.clock import LiveClock
    from cryptobot.store import SqlRecorder

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    SqlRecorder(url, clock=LiveClock()).close()  # created and migrated to head beforehand
    config = tmp_path / "quiet.toml"
    config.write_text(f'extends = "{REPO_ROOT / "config" / "crosscheck.toml"}"\n'
                      f'[logging]\ndir = "{tmp_path / "logs"}"\n')
    data = CRASH if layout == "csv" else _feather_folder(tmp_path / "feather")
    argv = ["backtest", "--config", str(config), "--data", str(data), "--db", url, "--json"]
    # pandas too: the data is read with pyarrow and csv into numpy arrays; rich: --json
    # shows no progress bar
    unused = ("ccxt", "plotly", "websockets", "aiohttp", "alembic", "dask", "distributed",
              "apprise", "pandas", "rich")
    assert _modules_after(argv, unused) == []
