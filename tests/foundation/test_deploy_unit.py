"""deploy/*.service against the CLI they run: the flags exist, the restart policy uses the CLI's
real exit codes, the hardening leaves writable what the config writes, and no secret is in them.

Exit codes of `cryptobot live` (cryptobot/cli/__init__.py): 0 for a clean stop (SIGTERM/SIGHUP,
the kill switch, engaged while trading or found at start: tests/live/test_live_cli.py), 2
(USER_ERROR_EXIT_CODE) for any CryptobotError or OSError, 1 for an unexpected exception.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from cryptobot.secrets import API_KEY_ENV, API_SECRET_ENV, FRED_KEY_ENV, NOTIFY_URLS_ENV
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
LIVE_UNIT = DEPLOY / "cryptobot-live.service"
KILL_UNIT = DEPLOY / "cryptobot-kill.service"
NOTIFY_UNIT = DEPLOY / "cryptobot-notify@.service"  # a template: OnFailure= names an instance
STATUS_UNIT = DEPLOY / "cryptobot-status.service"
STATUS_TIMER = DEPLOY / "cryptobot-status.timer"
ENV_EXAMPLE = DEPLOY / "cryptobot.env.example"
# what deploy/README.md copies to <WorkingDirectory>/config/live.toml
LIVE_CONFIG = REPO_ROOT / "config" / "live.example.toml"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """A systemd unit file: `[Section]` headers, `Key=value` lines, `#` and `;` comment lines, a
    trailing backslash continuing a line. A key may repeat: its assignments are kept in order
    (see `values`)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"assignment before any section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a Key=value line: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def values(unit: Unit, section: str, key: str) -> list[str]:
    """The space-separated items of a list setting; an empty assignment resets the list."""
    items: list[str] = []
    for assignment in unit.get(section, {}).get(key, []):
        items = [] if not assignment else items + assignment.split()
    return items


def single(unit: Unit, section: str, key: str) -> str:
    """A setting whose last assignment wins (as systemd reads it)."""
    assignments = unit.get(section, {}).get(key)
    assert assignments, f"[{section}] {key}= is not set"
    return assignments[-1]


def seconds(span: str) -> float:
    """A systemd time span: "30", "30s", "2min", "1h 30min", "500ms"."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600,
             "hr": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span.strip())
    assert parts and "".join(n + u for n, u in parts) == span.replace(" ", ""), span
    return sum(float(number) * units[unit or "s"] for number, unit in parts)


def exec_start(unit: Unit) -> list[str]:
    command = single(unit, "Service", "ExecStart").lstrip("-@:+!")
    return shlex.split(command)


@pytest.fixture(scope="module")
def live_unit() -> Unit:
    return parse_unit(LIVE_UNIT.read_text())


@pytest.fixture(scope="module")
def kill_unit() -> Unit:
    return parse_unit(KILL_UNIT.read_text())


def test_the_parser_reads_systemd_syntax():
    unit = parse_unit("# c\n[Service]\n; c\nA=1\nA=\nA=2 3\nB=x \\\n  y\n")
    assert values(unit, "Service", "A") == ["2", "3"]
    assert single(unit, "Service", "B") == "x y"
    assert seconds("2min 30s") == 150 and seconds("90") == 90


def test_the_live_unit_runs_as_a_dedicated_user_in_its_working_directory(live_unit):
    service = live_unit["Service"]
    assert {"Unit", "Service", "Install"} <= live_unit.keys()
    assert single(live_unit, "Service", "User") not in ("root", "0")
    assert PurePosixPath(single(live_unit, "Service", "WorkingDirectory")).is_absolute()
    assert single(live_unit, "Install", "WantedBy") == "multi-user.target"
    assert "network-online.target" in values(live_unit, "Unit", "Wants")
    assert service["Type"] == ["exec"]


def test_the_cryptobot_entry_point_is_the_clis_main():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["cryptobot"] == "cryptobot.cli:main"  # what run_cli calls


@pytest.mark.parametrize(("unit_file", "command"), [(LIVE_UNIT, "live"), (KILL_UNIT, "kill"),
                                                    (NOTIFY_UNIT, "notify"),
                                                    (STATUS_UNIT, "status")])
def test_exec_start_runs_the_command_with_flags_the_cli_has(run_cli, monkeypatch, unit_file,
                                                            command):
    unit = parse_unit(unit_file.read_text())
    argv = exec_start(unit)
    executable = PurePosixPath(argv[0])
    assert executable.is_absolute() and executable.name == "cryptobot", argv
    assert argv[1] == command, argv
    flags = [arg.split("=", 1)[0] for arg in argv[2:] if arg.startswith("-")]
    assert "--config" in flags or command == "notify"
    monkeypatch.setenv("COLUMNS", "200")  # rich must not wrap an option name
    code, out, err = run_cli(command, "--help")
    assert code == 0, err
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", out), \
            f"{unit_file.name}: {flag} is not an option of `cryptobot {command}`"
    if command == "live":
        assert "--confirm-live" in flags and "--once" not in flags


def _config_path(unit: Unit) -> PurePosixPath:
    argv = exec_start(unit)
    path = PurePosixPath(argv[argv.index("--config") + 1])
    return path if path.is_absolute() else \
        PurePosixPath(single(unit, "Service", "WorkingDirectory")) / path


def test_the_config_sits_beside_the_default_it_extends(live_unit):
    # deploy/README.md copies config/live.example.toml to config/live.toml of the checkout
    assert tomllib.loads(LIVE_CONFIG.read_text())["extends"] == "default.toml"
    config = _config_path(live_unit)
    assert config.parent == PurePosixPath(single(live_unit, "Service", "WorkingDirectory")) / \
        "config"


def test_the_kill_unit_matches_the_live_unit(live_unit, kill_unit):
    for key in ("User", "Group", "WorkingDirectory", "EnvironmentFile", "ReadWritePaths",
                "ProtectSystem"):
        assert kill_unit["Service"][key] == live_unit["Service"][key], key
    assert _config_path(kill_unit) == _config_path(live_unit)
    assert "cryptobot-live.service" in values(kill_unit, "Unit", "Conflicts")
    assert "Install" not in kill_unit  # run by hand, never at boot


def test_restart_on_failure_with_a_pause_and_a_start_limit(live_unit):
    assert single(live_unit, "Service", "Restart") == "on-failure"
    assert seconds(single(live_unit, "Service", "RestartSec")) >= 10
    # StartLimit* belong to [Unit] (in [Service] newer systemd ignores them)
    burst = int(single(live_unit, "Unit", "StartLimitBurst"))
    interval = seconds(single(live_unit, "Unit", "StartLimitIntervalSec"))
    assert 1 <= burst <= 10
    assert interval > burst * seconds(single(live_unit, "Service", "RestartSec"))


def test_a_stop_is_the_sigterm_the_cli_handles_with_time_to_finish(live_unit):
    from cryptobot.config import load_settings
    from cryptobot.runners.stream_session import STOP_SIGNALS

    assert single(live_unit, "Service", "KillSignal") == "SIGTERM"
    assert signal.SIGTERM in STOP_SIGNALS
    live = load_settings(LIVE_CONFIG).live
    # a clean stop catches up fills by REST: at least one request with all its retries
    one_request_s = live.retry_attempts * live.request_timeout_ms / 1000
    assert seconds(single(live_unit, "Service", "TimeoutStopSec")) >= one_request_s + 30


def test_restart_prevent_exit_status_is_the_clis_user_error_code(live_unit):
    from cryptobot.cli import USER_ERROR_EXIT_CODE

    codes = {int(code) for code in values(live_unit, "Service", "RestartPreventExitStatus")}
    assert codes == {USER_ERROR_EXIT_CODE}
    # the kill switch and a stop exit 0, which Restart=on-failure never restarts; a crash (1,
    # an unexpected exception) must stay restartable
    assert not {0, 1} & codes
    assert not live_unit["Service"].get("SuccessExitStatus")


def _group_readable_key_file(tmp_path: Path) -> list[str]:
    path = tmp_path / "keys.toml"
    path.write_text('key = "k-0000"\nsecret = "s-0000"\n')
    path.chmod(0o640)
    return ["--key-file", str(path)]


@pytest.mark.parametrize("case", ["config file missing", "no --confirm-live", "no keys",
                                  "key file others can read"])
def test_the_deliberate_stops_exit_with_a_code_that_is_not_restarted(run_cli, monkeypatch,
                                                                     tmp_path, live_unit, case):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(API_SECRET_ENV, raising=False)
    config = str(LIVE_CONFIG)
    args = {"config file missing": ["--config", str(tmp_path / "nope.toml"), "--confirm-live"],
            "no --confirm-live": ["--config", config],
            "no keys": ["--config", config, "--confirm-live"],
            "key file others can read": ["--config", config, "--confirm-live",
                                         *_group_readable_key_file(tmp_path)]}[case]
    code, _, err = run_cli("live", *args)
    prevented = {int(c) for c in values(live_unit, "Service", "RestartPreventExitStatus")}
    assert code in prevented, (case, code, err)
    assert "Traceback" not in err


def _under(path: PurePosixPath, roots: list[PurePosixPath]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def test_read_write_paths_cover_the_logs_and_databases_of_the_config(live_unit):
    from sqlalchemy.engine import make_url

    from cryptobot.config import Settings, load_settings

    workdir = PurePosixPath(single(live_unit, "Service", "WorkingDirectory"))
    assert single(live_unit, "Service", "ProtectSystem") == "strict"
    writable = [PurePosixPath(p.lstrip("-+")) for p in
                values(live_unit, "Service", "ReadWritePaths")]
    assert writable and all(p.is_absolute() for p in writable)
    assert workdir not in writable  # only logs/, not the code or the config

    def resolved(text: str) -> PurePosixPath:
        path = PurePosixPath(text)
        return path if path.is_absolute() else workdir / path

    for settings in (Settings(), load_settings(LIVE_CONFIG)):  # the defaults and the live one
        wanted = {"logging.dir": settings.logging.dir,
                  "risk.kill_switch_file": str(PurePosixPath(settings.risk.kill_switch_file)
                                               .parent),
                  "macro.cache_dir": settings.macro.cache_dir}
        urls = {"store.url": settings.store.url,  # the runs (and the live broker's state)
                "live.state_url": getattr(settings.live, "state_url", None)}  # older versions
        for name, url in urls.items():
            if url is None:
                continue
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                                  ":memory:"):
                wanted[name] = str(PurePosixPath(parsed.database).parent)  # + its lock, journal
        assert {"logging.dir", "store.url"} <= wanted.keys()
        for name, folder in wanted.items():
            assert _under(resolved(folder), writable), \
                f"{name} ({resolved(folder)}) is not under ReadWritePaths={writable}"


def test_hardening_that_keeps_the_bot_working(live_unit):
    service = live_unit["Service"]
    for key, value in (("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                       ("ProtectHome", "yes"), ("UMask", "0077")):
        assert service.get(key) == [value], key
    families = values(live_unit, "Service", "RestrictAddressFamilies")
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)  # exchange, FRED, PostgreSQL
    assert "PrivateNetwork" not in service
    assert "MemoryDenyWriteExecute" not in service


SECRET_NAMES = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD)", re.IGNORECASE)


def test_a_failure_of_the_bot_or_a_silent_bot_is_told(run_cli, tmp_path, monkeypatch):
    """OnFailure= of the live unit and of the status check starts the notify template, which
    runs `cryptobot notify` as the bot's user with its environment file (the URLs); the timer
    runs the check every few minutes, with a --stale-after the status command accepts."""
    live, status = parse_unit(LIVE_UNIT.read_text()), parse_unit(STATUS_UNIT.read_text())
    notify = parse_unit(NOTIFY_UNIT.read_text())
    for unit in (live, status):
        assert values(unit, "Unit", "OnFailure") == ["cryptobot-notify@%N.service"]
    argv = exec_start(notify)
    assert argv[1] == "notify" and any("%i" in arg for arg in argv[2:])  # names the failed unit
    assert single(notify, "Service", "Type") == "oneshot" and "Install" not in notify
    for key in ("User", "Group", "WorkingDirectory", "EnvironmentFile"):
        assert notify["Service"][key] == live["Service"][key], key
    timer = parse_unit(STATUS_TIMER.read_text())
    assert seconds(single(timer, "Timer", "OnUnitActiveSec")) <= 600
    assert single(timer, "Install", "WantedBy") == "timers.target"
    status_argv = exec_start(status)
    assert status_argv[1] == "status"
    stale_after = status_argv[status_argv.index("--stale-after") + 1]
    assert seconds(stale_after) <= 3 * seconds(single(timer, "Timer", "OnUnitActiveSec"))
    monkeypatch.delenv(NOTIFY_URLS_ENV, raising=False)
    code, _, err = run_cli("status", "--stale-after", stale_after, "--dir", str(tmp_path))
    assert code == 1 and "0 running" in err  # nothing running: a failure, so it is told
    code, _, err = run_cli(*argv[1:2], "unit x failed")
    assert code == 2 and err.startswith(f"error: no notification URL: set {NOTIFY_URLS_ENV}")


@pytest.mark.parametrize("unit_file", [LIVE_UNIT, KILL_UNIT, NOTIFY_UNIT, STATUS_UNIT])
def test_no_secret_in_the_unit(unit_file):
    text = unit_file.read_text()
    unit = parse_unit(text)
    for assignment in unit["Service"].get("Environment", []):
        for pair in shlex.split(assignment):
            assert not SECRET_NAMES.search(pair.split("=", 1)[0]), pair
    for name in (API_KEY_ENV, API_SECRET_ENV, FRED_KEY_ENV):
        assert f"{name}=" not in text
    assert not re.search(r"[A-Za-z0-9]{32,}", text)  # nothing shaped like an API key
    if unit_file == STATUS_UNIT:
        assert "EnvironmentFile" not in unit["Service"]  # it needs no secret
        return
    env_file = single(unit, "Service", "EnvironmentFile").lstrip("-")
    assert PurePosixPath(env_file).is_absolute()
    assert not _under(PurePosixPath(env_file),
                      [PurePosixPath(single(unit, "Service", "WorkingDirectory"))])


def test_the_environment_file_example_names_the_keys_and_holds_none():
    text = ENV_EXAMPLE.read_text()
    assignments = dict(line.split("=", 1) for line in text.splitlines()
                       if line and not line.startswith("#"))
    assert assignments.keys() == {API_KEY_ENV, API_SECRET_ENV, FRED_KEY_ENV, NOTIFY_URLS_ENV}
    assert all(value == "" for value in assignments.values())
    assert "chmod 600" in text or "-m 600" in text


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify wants ExecStart's program to exist: the installed path becomes this machine's
    # `cryptobot` (any executable would do); the rest of the unit is checked as written
    program = shutil.which("cryptobot") or shutil.which("python3")
    assert program is not None
    names = []
    for unit_file in (LIVE_UNIT, KILL_UNIT, NOTIFY_UNIT, STATUS_UNIT, STATUS_TIMER):
        text = unit_file.read_text()
        if unit_file.suffix == ".service":
            text = text.replace(exec_start(parse_unit(text))[0], program)
        # a template is verified as the instance OnFailure= starts
        name = unit_file.name.replace("@.", "@cryptobot-live.")
        (tmp_path / name).write_text(text)
        names.append(name)
    done = subprocess.run([analyze, "verify", "--man=no",
                           *(str(tmp_path / name) for name in names)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    output = done.stdout + done.stderr
    ours = [line for line in output.splitlines() if any(name in line for name in names)]
    assert not ours, output  # verify exits 0 on unknown keys and bad values: read its output
    if done.returncode != 0:
        pytest.skip(f"systemd-analyze verify failed on something else: {output.strip()}")
