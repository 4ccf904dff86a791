"""`cryptobot live` / `cryptobot kill` safety rails, and no secret in logs or databases."""

from __future__ import annotations

from pathlib import Path

from cryptobot.secrets import API_KEY_ENV, API_SECRET_ENV
from tests.live.conftest import TEST_KEY, TEST_SECRET

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def write_config(tmp_path: Path, rest_url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "live.toml"
    path.write_text(
        f'extends = "{REPO_CONFIG / "live.example.toml"}"\n'
        f'[feed]\nrest_url = "{rest_url}"\n'
        f'[logging]\ndir = "{tmp_path / "logs"}"\n'
        f'[risk]\nkill_switch_file = "{tmp_path / "KILL"}"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "live.sqlite"}"\n'
        '[macro]\nuse_fred = false\n'
        '[live]\ndemo_trading = false\nrequest_timeout_ms = 2000\n'
    )
    return path


def test_missing_confirm_live_is_refused(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, TEST_KEY)
    monkeypatch.setenv(API_SECRET_ENV, TEST_SECRET)
    code, _, err = run_cli("live", "--config", str(write_config(tmp_path)))
    assert code == 2
    assert err.startswith("error: ") and "--confirm-live" in err and "Traceback" not in err


def test_missing_keys_are_refused(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(API_SECRET_ENV, raising=False)
    code, _, err = run_cli("live", "--config", str(write_config(tmp_path)), "--confirm-live")
    assert code == 2
    assert "missing exchange keys" in err and API_KEY_ENV in err


def test_key_file_readable_by_others_is_refused(run_cli, tmp_path):
    key_file = tmp_path / "keys.toml"
    key_file.write_text(f'key = "{TEST_KEY}"\nsecret = "{TEST_SECRET}"\n')
    key_file.chmod(0o644)
    code, out, err = run_cli("live", "--config", str(write_config(tmp_path)), "--confirm-live",
                             "--key-file", str(key_file))
    assert code == 2
    assert "readable by others" in err and "chmod 600" in err
    assert TEST_SECRET not in err + out and TEST_KEY not in err + out


def test_live_once_prints_rails_and_leaks_no_secret(run_cli, tmp_path, venue, monkeypatch):
    venue.state.new_order({"symbol": "BTCUSDT", "type": "MARKET", "side": "BUY",
                           "quantity": "0.003", "newClientOrderId": "manual-1"})
    key_file = tmp_path / "keys.toml"
    key_file.write_text(f'key = "{TEST_KEY}"\nsecret = "{TEST_SECRET}"\n')
    key_file.chmod(0o600)
    config = write_config(tmp_path, venue.base_url)
    code, out, err = run_cli("live", "--config", str(config), "--confirm-live", "--key-file",
                             str(key_file), "--once")
    assert code == 0, err
    for label in ("symbol", "BTC/USDT:USDT", "isolated, 3x", "2,000 USDT", "0.50% of equity",
                  "unknown position"):
        assert label in out
    code, out, err = run_cli("kill", "--config", str(config), "--key-file", str(key_file))
    assert code == 0, err
    assert (tmp_path / "KILL").exists()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "keys.toml"]
    assert any(p.suffix == ".sqlite" for p in written) and any("logs" in p.parts for p in written)
    for path in written:
        blob = path.read_bytes()
        assert TEST_KEY.encode() not in blob and TEST_SECRET.encode() not in blob, path
    assert TEST_KEY not in out + err and TEST_SECRET not in out + err


def test_kill_flattens_the_bots_position(run_cli, tmp_path, venue, keys):
    from cryptobot.brokers.live.setup import build_live_broker
    from cryptobot.config import load_settings
    from cryptobot.engine.risk import KillSwitch
    from tests.live.conftest import VenueClock
    from tests.live.trade_driver import TradeDriver

    config = write_config(tmp_path, venue.base_url)
    settings = load_settings(config)
    broker, _ = build_live_broker(settings, keys, VenueClock(venue.state),
                                  KillSwitch(settings.risk.kill_switch_file), sleep=lambda s: None,
                                  rate_limit=False)
    TradeDriver(broker, "sigK", qty=0.01, stop=59000.0, tp1=61000.0, tp2=62500.0).enter()
    assert float(venue.state.position("BTCUSDT").qty) > 0
    broker.state.close()
    key_file = tmp_path / "keys.toml"
    key_file.write_text(f'key = "{TEST_KEY}"\nsecret = "{TEST_SECRET}"\n')
    key_file.chmod(0o600)
    code, out, err = run_cli("kill", "--config", str(config), "--key-file", str(key_file))
    assert code == 0, err
    assert "closed 1 position(s)" in out
    assert float(venue.state.position("BTCUSDT").qty) == 0
    assert venue.state.open_orders() == [] and venue.state.open_algo_orders() == []


def test_live_with_the_kill_switch_present_flattens_and_does_not_trade(run_cli, tmp_path, venue,
                                                                      keys):
    from cryptobot.brokers.live.setup import build_live_broker
    from cryptobot.config import load_settings
    from cryptobot.engine.risk import KillSwitch
    from tests.live.conftest import VenueClock
    from tests.live.trade_driver import TradeDriver

    config = write_config(tmp_path, venue.base_url)
    settings = load_settings(config)
    broker, _ = build_live_broker(settings, keys, VenueClock(venue.state),
                                  KillSwitch(settings.risk.kill_switch_file), sleep=lambda s: None,
                                  rate_limit=False)
    TradeDriver(broker, "sigP", qty=0.01, stop=59000.0, tp1=61000.0, tp2=62500.0).enter()
    broker.state.close()
    (tmp_path / "KILL").write_text("")
    key_file = tmp_path / "keys.toml"
    key_file.write_text(f'key = "{TEST_KEY}"\nsecret = "{TEST_SECRET}"\n')
    key_file.chmod(0o600)
    code, out, err = run_cli("live", "--config", str(config), "--confirm-live", "--key-file",
                             str(key_file))
    assert code == 0, err
    assert "max notional" in out and "not trading" in out
    assert float(venue.state.position("BTCUSDT").qty) == 0
    assert venue.state.open_orders() == [] and venue.state.open_algo_orders() == []


def test_an_exchange_that_cannot_be_reached_exits_75_for_a_supervisor_to_retry(
        run_cli, tmp_path, monkeypatch):
    """Nothing listens on port 9: a temporary failure (exit 75, restarted by systemd), not a
    user error (exit 2, not restarted)."""
    from cryptobot.cli import TEMPORARY_FAILURE_EXIT_CODE

    monkeypatch.setenv(API_KEY_ENV, TEST_KEY)
    monkeypatch.setenv(API_SECRET_ENV, TEST_SECRET)
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(
        "request_timeout_ms = 2000\n",
        "request_timeout_ms = 2000\nretry_attempts = 2\nretry_base_delay_s = 0.0\n"))
    code, _, err = run_cli("live", "--config", str(config), "--confirm-live", "--once")
    assert code == TEMPORARY_FAILURE_EXIT_CODE == 75, err
    assert err.splitlines()[-1].startswith("error: load markets") and "Traceback" not in err


def test_hedge_mode_is_refused_in_one_line(run_cli, tmp_path, venue, monkeypatch):
    venue.state.dual_side = True
    monkeypatch.setenv(API_KEY_ENV, TEST_KEY)
    monkeypatch.setenv(API_SECRET_ENV, TEST_SECRET)
    code, _, err = run_cli("live", "--config", str(write_config(tmp_path, venue.base_url)),
                           "--confirm-live", "--once")
    assert code == 2
    assert err.count("\n") == 1 and "hedge mode" in err and "One-way" in err
    assert venue.state.orders == {} and venue.state.algo_orders == {}


def test_live_and_kill_take_several_symbols(run_cli, tmp_path, two_markets, keys):
    """`--symbol A,B`: both set up at start and named in the summary; `kill` (no symbol list:
    it closes everything the bot holds) closes the positions in both and sets nothing up."""
    from cryptobot.brokers.live.setup import build_live_broker
    from cryptobot.brokers.live.symbol_broker import symbol_brokers
    from cryptobot.cli.run_setup import with_symbols
    from cryptobot.config import load_settings
    from cryptobot.engine.risk import KillSwitch
    from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
    from tests.live.conftest import VenueClock

    both = "BTC/USDT:USDT,ETH/USDT:USDT"
    config = write_config(tmp_path, two_markets.base_url)
    config.write_text(config.read_text() + "[portfolio]\nmax_open_positions = 2\n")
    key_file = tmp_path / "keys.toml"
    key_file.write_text(f'key = "{TEST_KEY}"\nsecret = "{TEST_SECRET}"\n')
    key_file.chmod(0o600)
    code, out, err = run_cli("live", "--config", str(config), "--confirm-live", "--key-file",
                             str(key_file), "--symbol", both, "--once")
    assert code == 0, err
    assert "symbols" in out and "BTC/USDT:USDT, ETH/USDT:USDT" in out and "3x on each" in out
    state = two_markets.state
    assert state.position("BTCUSDT").leverage == state.position("ETHUSDT").leverage == 3

    settings = with_symbols(load_settings(config), both)
    broker, _ = build_live_broker(settings, keys, VenueClock(state),
                                  KillSwitch(settings.risk.kill_switch_file), sleep=lambda s: None,
                                  rate_limit=False)
    for symbol, view in symbol_brokers(broker, settings.market.symbols).items():
        view.bind(lambda fill: None, lambda event: None)
        qty, stop = (0.01, 59000.0) if symbol.startswith("BTC") else (0.2, 2450.0)
        view.submit(OrderIntent(f"{symbol[:3]}-K-entry", symbol, Side.BUY, OrderType.MARKET,
                                qty, OrderPurpose.ENTRY, stop_price=stop))
    assert float(state.position("ETHUSDT").qty) == 0.2
    broker.state.close()
    code, out, err = run_cli("kill", "--config", str(config), "--key-file", str(key_file))
    assert code == 0, err
    assert "closed 2 position(s)" in out
    assert float(state.position("BTCUSDT").qty) == float(state.position("ETHUSDT").qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
