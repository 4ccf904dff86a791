import re
import tomllib
from pathlib import Path

import pytest

from cryptobot.config import Settings, load_settings
from cryptobot.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize("name", ["default.toml", "crosscheck.toml", "paper.toml", "replay.toml",
                                  "live.example.toml"])
def test_every_shipped_profile_loads(name):
    path = CONFIG_DIR / name
    if not path.exists():
        pytest.skip(f"{name} not written yet")
    assert isinstance(load_settings(path), Settings)


def test_default_file_matches_the_built_in_defaults():
    assert load_settings(CONFIG_DIR / "default.toml").model_dump() == Settings().model_dump()


def test_default_file_documents_the_strategy_parameters_with_their_defaults():
    """default.toml shows the shipped strategy's parameters commented out (a profile for
    another strategy must not inherit them): every one, with the strategy's own default."""
    from strategies.liquidation_rebound import LiquidationRebound

    text = (CONFIG_DIR / "default.toml").read_text()
    shown = dict(re.findall(r"^# (\w+) = (\S+)", text.split("[strategy.params]")[1]
                            .split("\n[")[0], flags=re.M))
    declared = {name: default for name, default, _ in LiquidationRebound.Params.documented()}
    assert shown.keys() == declared.keys()
    for name, default in declared.items():
        assert tomllib.loads(f"v = {shown[name]}")["v"] == default, name


def test_an_old_strategy_key_names_its_new_place(tmp_path):
    config = tmp_path / "old.toml"
    config.write_text('[strategy]\nspike_body_atr = 2.0\n')
    with pytest.raises(ConfigError, match=r"strategy.spike_body_atr: .*strategy.params."
                                          r"spike_body_atr"):
        load_settings(config)


def test_crosscheck_profile_is_the_strategy_md_setting():
    settings = load_settings(CONFIG_DIR / "crosscheck.toml")
    assert settings.strategy.params == {"oi_confirmation": False}
    assert settings.macro.enabled is False
    assert (settings.exits.targets, settings.exits.trailing) == ("fixed_r", False)
    assert settings.costs.maker_fee == settings.costs.taker_fee == 0.0005
    assert settings.costs.slippage_bps == 0 and settings.costs.funding is False
    assert settings.risk.volatility_scaling is False and settings.risk.max_daily_loss == 0
    assert settings.risk.lot_rounding is False


def test_unknown_key_is_named_with_its_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[risk]\nrisk_per_trad = 0.01\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"{path}: risk.risk_per_trad: unknown key"


def test_out_of_range_value_names_file_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[risk]\nrisk_per_trade = 0.5\n")
    with pytest.raises(ConfigError,
                       match=r"bad.toml: risk.risk_per_trade: .*less than or equal to 0.1"):
        load_settings(path)


def test_extends_overrides_only_what_it_lists(tmp_path):
    (tmp_path / "base.toml").write_text("[risk]\nrisk_per_trade = 0.01\nmax_leverage = 2.0\n")
    child = tmp_path / "child.toml"
    child.write_text('extends = "base.toml"\n[risk]\nmax_leverage = 5.0\n')
    settings = load_settings(child)
    assert (settings.risk.risk_per_trade, settings.risk.max_leverage) == (0.01, 5.0)


def test_extends_loop_and_missing_file_are_clear(tmp_path):
    loop = tmp_path / "loop.toml"
    loop.write_text('extends = "loop.toml"\n')
    with pytest.raises(ConfigError, match="loops back"):
        load_settings(loop)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_broken_toml_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[risk\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_settings(path)


def test_cross_field_rule(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[exits]\nfixed_tp1_r = 2.0\nfixed_tp2_r = 1.0\n")
    with pytest.raises(ConfigError, match="fixed_tp2_r must be above"):
        load_settings(path)


@pytest.mark.parametrize(("text", "message"), [
    ('[market]\nbase_timeframe = "banana"', "market.base_timeframe: binanceusdm has no 'banana' "
                                            "candles (it has 1m, 3m, 5m"),
    ('[market]\nexchange = "bybit"\nbase_timeframe = "8h"\nsignal_timeframe = "1d"',
     "market.base_timeframe: bybit has no '8h' candles"),
    ('[market]\nbase_timeframe = "1h"', "market.signal_timeframe: 15m is not a whole number of "
                                        "base_timeframe 1h candles"),
    ('[market]\nbase_timeframe = "5m"\nsignal_timeframe = "8m"', "market.signal_timeframe: 8m "
                                                                 "is not a whole number"),
    ('[market]\nsignal_timeframe = "banana"', "market.signal_timeframe: unknown timeframe "
                                              "'banana'"),
    ('[macro]\nenabled = "yes"', "macro.enabled: Input should be a valid boolean"),
    ("[exits]\ntrailing = 1", "exits.trailing: Input should be a valid boolean"),
    ("[risk]\nstarting_equity_usdt = inf", "risk.starting_equity_usdt: Input should be a finite"),
    ("[costs]\nslippage_bps = nan", "costs.slippage_bps: Input should be a finite number"),
    ('[risk]\natr_period = "14"', "risk.atr_period: Input should be a valid integer"),
    ('[risk]\nkill_switch_file = ""', "risk.kill_switch_file: must name a file: the kill switch "
                                      "cannot be turned off"),
])
def test_wrong_values_are_refused_with_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_the_venues_timeframes_are_accepted(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text('[market]\nexchange = "bybit"\nbase_timeframe = "5m"\n'
                    'signal_timeframe = "8h"\n[macro]\nfunding_series = ["SOFR"]\n')
    settings = load_settings(path)
    assert settings.market.signal_timeframe == "8h"  # built from 5m candles: Bybit needs no 8h
    assert settings.macro.funding_series == ("SOFR",)  # a TOML list is fine for a tuple


def test_a_binary_file_or_a_folder_is_one_clear_error(tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="binary.toml: not a text file"):
        load_settings(binary)
    with pytest.raises(ConfigError, match=f"{tmp_path}: is a folder, not a config file"):
        load_settings(tmp_path)


def test_symbols_a_list_or_one_symbol_and_a_profile_replaces_its_parents(tmp_path):
    (tmp_path / "base.toml").write_text(
        '[market]\nsymbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]\n')
    (tmp_path / "one.toml").write_text(
        'extends = "base.toml"\n[market]\nsymbol = "SOL/USDT:USDT"\n')
    assert load_settings(tmp_path / "base.toml").market.symbols == ("BTC/USDT:USDT",
                                                                    "ETH/USDT:USDT")
    one = load_settings(tmp_path / "one.toml")
    assert one.market.symbols == ("SOL/USDT:USDT",) and one.market.symbol == "SOL/USDT:USDT"
    with pytest.raises(ValueError, match="use Settings.for_symbol"):
        _ = load_settings(tmp_path / "base.toml").market.symbol
    assert load_settings(tmp_path / "base.toml").for_symbol("ETH/USDT:USDT").market.symbol == \
        "ETH/USDT:USDT"


@pytest.mark.parametrize(("text", "message"), [
    ('[market]\nsymbol = "BTC/USDT:USDT"\nsymbols = ["ETH/USDT:USDT"]\n',
     "market: give market.symbols (a list) or market.symbol (one), not both"),
    ('[market]\nsymbols = ["BTC/USDT:USDT", "BTC/USDT:USDT"]\n',
     "market.symbols: a symbol is listed twice"),
    ('[market]\nsymbols = []\n', "market.symbols: "),
    ("[risk]\nmax_open_positions = 2\n",
     "risk.max_open_positions: the cap across symbols moved to [portfolio] max_open_positions"),
    ("[risk]\nrisk_per_trade = 0.02\n",
     "portfolio.max_open_risk 0.015 is below risk.risk_per_trade 0.02"),
])
def test_bad_symbol_lists_and_moved_portfolio_keys_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
