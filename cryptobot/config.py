"""Typed settings from config/*.toml. Unknown keys are rejected; errors name the file and key.

A file may start with `extends = "default.toml"` (relative to itself) and then list only what
it changes. Secrets never live here: see `cryptobot.secrets`.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cryptobot.config_files import read_profile
from cryptobot.data.timeframes import timeframe_to_ms
from cryptobot.errors import ConfigError

# The kline intervals each venue streams, in our names: the base timeframe must be one of them
# (the signal timeframe is built here from base candles). Binance USD-M: the "Kline/Candlestick
# chart intervals" enum of its futures API docs (developers.binance.com/docs/derivatives/
# usds-margined-futures/common-definition); Bybit v5: the `interval` enum (bybit-exchange.github.io
# /docs/v5/enum#interval: 1 3 5 15 30 60 120 240 360 720 D W M). Both also serve a month, which
# has no fixed length in milliseconds and so is not offered.
EXCHANGE_TIMEFRAMES: dict[str, tuple[str, ...]] = {
    "binanceusdm": ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
                    "3d", "1w"),
    "bybit": ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w"),
}


class _Section(BaseModel):
    # strict: a TOML value of the wrong type is refused, never coerced ("yes" is no boolean,
    # "14" no number); an int is still a float. No float may be inf or nan.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                              validate_default=True)


class MarketSettings(_Section):
    """`symbols`: the perpetuals one run watches and trades, in the order it breaks ties (two
    candles closing at the same time go in this order). A file may say `symbol = "..."` for
    one; both at once are refused."""

    exchange: Literal["binanceusdm", "bybit"] = "binanceusdm"
    symbols: tuple[str, ...] = Field(("BTC/USDT:USDT",), strict=False, min_length=1)
    base_timeframe: str = "1m"
    signal_timeframe: str = "15m"

    @model_validator(mode="before")
    @classmethod
    def _one_symbol_key(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or "symbol" not in raw:
            return raw
        if "symbols" in raw:
            raise ValueError("give market.symbols (a list) or market.symbol (one), not both")
        raw = dict(raw)
        symbol = raw.pop("symbol")
        if not isinstance(symbol, str):
            raise ValueError("market.symbol is one symbol; list several under market.symbols")
        raw["symbols"] = [symbol]
        return raw

    @field_validator("symbols")
    @classmethod
    def _distinct_symbols(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in symbols:
            if not isinstance(symbol, str) or not symbol.strip():
                raise ValueError("each symbol must be a ccxt symbol like \"BTC/USDT:USDT\"")
        if len(set(symbols)) != len(symbols):
            raise ValueError("a symbol is listed twice")
        return symbols

    @property
    def symbol(self) -> str:
        """The run's one symbol: for the parts that serve one market (a broker, a strategy);
        asking a several-symbol run is a programming error, never a silent first pick."""
        if len(self.symbols) != 1:
            raise ValueError(f"market.symbol asked of a run with {len(self.symbols)} symbols "
                             "(use Settings.for_symbol)")
        return self.symbols[0]

    @field_validator("base_timeframe")
    @classmethod
    def _streamed_by_the_exchange(cls, timeframe: str, info: ValidationInfo) -> str:
        exchange = info.data.get("exchange", "binanceusdm")
        offered = EXCHANGE_TIMEFRAMES[exchange]
        if timeframe not in offered:
            raise ValueError(f"{exchange} has no {timeframe!r} candles (it has "
                             f"{', '.join(offered)})")
        return timeframe

    @field_validator("signal_timeframe")
    @classmethod
    def _built_from_base_candles(cls, timeframe: str, info: ValidationInfo) -> str:
        # Built here from base candles, so any length that holds whole base candles will do.
        signal_ms = timeframe_to_ms(timeframe)
        base = info.data.get("base_timeframe")
        if base is not None and signal_ms % timeframe_to_ms(base):
            raise ValueError(f"{timeframe} is not a whole number of base_timeframe {base} "
                             "candles (signal candles are built from base ones)")
        return timeframe


class StrategySettings(_Section):
    path: str = "strategies.liquidation_rebound:LiquidationRebound"
    # Checked against the strategy's own declared parameters when it is loaded
    # (cryptobot.strategy.loading): the strategy owns them, this file only carries them.
    params: dict[str, Any] = Field(default_factory=dict)


class ExitSettings(_Section):
    targets: Literal["milestones", "fixed_r"] = "milestones"
    min_target_r: float = Field(0.5, ge=0, le=100)
    tp1_fraction: float = Field(0.5, gt=0, le=1)
    fixed_tp1_r: float = Field(1.0, gt=0, le=100)
    fixed_tp2_r: float = Field(2.0, gt=0, le=100)
    breakeven_after_tp1: bool = True
    trailing: bool = True
    trailing_atr_mult: float = Field(2.0, gt=0, le=50)
    time_stop_hours: float = Field(24.0, gt=0, le=24 * 90)


class RiskSettings(_Section):
    starting_equity_usdt: float = Field(10_000.0, gt=0)
    risk_per_trade: float = Field(0.005, gt=0, le=0.1)
    max_leverage: float = Field(3.0, gt=0, le=125)
    max_notional_usdt: float = Field(1_000_000.0, gt=0)
    atr_period: int = Field(14, ge=2, le=500)  # the engine's ATR: volatility and trailing
    volatility_scaling: bool = True
    volatility_floor: float = Field(0.25, gt=0, le=1)
    volatility_median_days: int = Field(30, ge=1, le=365)
    volatility_min_history_days: int = Field(1, ge=0, le=365)
    max_daily_loss: float = Field(0.02, ge=0, le=1)  # of equity, portfolio-wide; 0: off
    lot_rounding: bool = True
    kill_switch_file: str = "logs/KILL"  # paper and live flatten and stop while it exists

    @field_validator("kill_switch_file")
    @classmethod
    def _names_a_file(cls, path: str) -> str:
        if not path.strip():
            raise ValueError("must name a file: the kill switch cannot be turned off")
        return path


class PortfolioSettings(_Section):
    """Caps across all symbols of a run (each symbol holds at most one position anyway)."""

    max_open_positions: int = Field(3, ge=1, le=100)
    max_open_risk: float = Field(0.015, gt=0, le=1)  # open stop losses as a fraction of equity
    max_entries_per_hour: int = Field(3, ge=1, le=1000)


class CostSettings(_Section):
    taker_fee: float = Field(0.0005, ge=0, le=0.01)
    maker_fee: float = Field(0.0002, ge=-0.001, le=0.01)
    slippage_bps: float = Field(5.0, ge=0, le=500)
    funding: bool = True
    stop_trigger: Literal["last", "mark"] = "last"


class MacroSettings(_Section):
    """The macro gate's keys; config/default.toml documents the decision table they drive."""

    enabled: bool = True
    qt_threshold_musd: float = Field(25_000.0, ge=0)  # +-$25B on the 4-week avg of 13-week change
    qt_change_weeks: int = Field(13, ge=1, le=104)
    qt_average_weeks: int = Field(4, ge=1, le=52)
    # The Fed's official runoff periods, [first day, first day after]; a TOML list of pairs.
    qt_periods: tuple[Annotated[tuple[str, str], Strict(False)], ...] = Field(
        (("2017-10-01", "2019-08-01"), ("2022-06-01", "2025-12-01")), strict=False)
    qt_dates_decide: bool = True  # where dates and WALCL data disagree, the dates decide
    tga_change_weeks: int = Field(4, ge=1, le=52)
    tga_threshold_musd: float = Field(100_000.0, ge=0)
    tga_max_age_days: float = Field(14, gt=0)
    repo_stress_bps: float = Field(10.0, gt=0)
    repo_range_days: int = Field(20, ge=2, le=250)
    repo_max_age_days: int = Field(5, ge=1)  # business days
    credit_low_days: int = Field(20, ge=2, le=400)
    hyg_sma_fast: int = Field(20, ge=2, le=400)
    hyg_sma_slow: int = Field(50, ge=2, le=400)
    hyg_slope_days: int = Field(10, ge=1, le=200)
    reduce_size_factor: float = Field(0.5, gt=0, le=1)
    walcl_max_age_days: float = Field(14, gt=0)
    credit_max_age_trading_days: int = Field(5, ge=1)
    walcl_publication_delay_days: int = Field(1, ge=0, le=14)  # business days
    walcl_publication_time_ny: str = "16:30"
    hyg_close_time_ny: str = "16:15"
    oas_publication_delay_days: int = Field(1, ge=0, le=14)
    oas_publication_time_ny: str = "16:30"
    # Loaded point in time: WTREGEN, SOFR and IORB feed the gate, the others are reported.
    funding_series: tuple[str, ...] = Field(("WTREGEN", "RRPONTSYD", "SOFR", "IORB"),
                                            strict=False)
    funding_publication_delay_days: int = Field(1, ge=0, le=14)
    funding_publication_time_ny: str = "16:30"
    hyg_source: Literal["csv", "yfinance", "none"] = "csv"
    hyg_csv: str = "data/macro/HYG_daily_adjusted.csv"
    hyg_ticker: str = "HYG"
    snapshot_dir: str = "data/macro"
    use_fred: bool = False  # fetch from FRED (key or keyless CSV) instead of the bundled snapshot
    fred_api_url: str = "https://api.stlouisfed.org/fred"
    fred_csv_url: str = "https://fred.stlouisfed.org/graph/fredgraph.csv"
    fred_observation_start: str = "2015-01-01"  # fetch from here on (smaller, faster answers)
    http_timeout_s: float = Field(30.0, gt=0, le=600)
    cache_dir: str = "logs/macro_cache"
    cache_max_age_hours: float = Field(12.0, ge=0)

    @model_validator(mode="after")
    def _check_dates_and_times(self) -> MacroSettings:
        try:
            date.fromisoformat(self.fred_observation_start)
            periods = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in self.qt_periods]
        except ValueError:
            raise ValueError("fred_observation_start and qt_periods need dates like "
                             "2022-06-01") from None
        for start, end in periods:
            if end <= start:
                raise ValueError(f"qt_periods: {end} must be after {start}")
        if any(later[0] < earlier[1]
               for earlier, later in zip(periods, periods[1:], strict=False)):
            raise ValueError("qt_periods must be in order and must not overlap")
        for key in ("walcl_publication_time_ny", "hyg_close_time_ny", "oas_publication_time_ny",
                    "funding_publication_time_ny"):
            try:
                time.fromisoformat(getattr(self, key))
            except ValueError:
                raise ValueError(f"{key} must be a New York time like 16:30") from None
        return self


class StoreSettings(_Section):
    url: str = "sqlite:///logs/cryptobot.sqlite"


class LoggingSettings(_Section):
    dir: str = "logs"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_bytes: int = Field(10_000_000, ge=10_000)
    backup_count: int = Field(5, ge=0, le=100)


class FeedSettings(_Section):
    oi_poll_seconds: float = Field(30.0, gt=0, le=3600)
    reconnect_min_backoff_s: float = Field(0.5, gt=0, le=60)
    reconnect_max_backoff_s: float = Field(60.0, gt=0)
    rotate_after_hours: float = Field(23.5, gt=0, le=24)
    warmup_days: int = Field(31, ge=1, le=120)
    ws_url: str | None = None  # override, e.g. a loopback server
    rest_url: str | None = None


class LiveSettings(_Section):
    margin_mode: Literal["isolated", "cross"] = "isolated"
    leverage: int = Field(3, ge=1, le=125)
    demo_trading: bool = False
    adopt_unknown_positions: bool = False
    reconcile_interval_s: float = Field(180.0, ge=5)
    stop_place_retries: int = Field(3, ge=0, le=20)
    recovery_stop_pct: float = Field(0.02, gt=0, le=0.5)  # stop for a position with no known stop
    request_timeout_ms: int = Field(10_000, ge=100, le=120_000)
    retry_attempts: int = Field(5, ge=1, le=20)
    retry_base_delay_s: float = Field(0.5, ge=0, le=60)
    # a stop or flatten the venue failed to take (and its look-ups) backs off from this instead
    retry_protect_delay_s: float = Field(0.1, ge=0, le=60)
    # a market entry is sent as a limit IOC at most this far beyond the signal's price (above
    # for a long, below for a short): in a cascade the book is thin; what does not fill at
    # once is cancelled (0: a plain market order)
    max_entry_slippage_bps: float = Field(50.0, ge=0, le=1000)
    # protection retries (a stop, a refused exit) back off from this delay, doubling to the max
    protect_retry_base_s: float = Field(1.0, gt=0, le=60)
    protect_retry_max_s: float = Field(30.0, gt=0, le=600)


class EvidenceSettings(_Section):
    """The rebound's evidence per signal (engine/evidence.py): what is measured and how many
    items beyond open interest (the strategy's own rule) an entry needs."""

    required_beyond_oi: int = Field(0, ge=0, le=4)  # 0: recorded, not required
    liquidation_ratio: float = Field(2.0, gt=0, le=1000)  # spike window vs its median
    liquidation_median_days: int = Field(7, ge=1, le=90)  # same window, this many days back
    liquidation_gap_minutes: float = Field(60.0, gt=0, le=24 * 60)  # files: longer silence = gap
    liquidations_dir: str = "data/liquidations"  # backtests: forceOrder files found here
    funding_flushed_rate: float = Field(0.0, ge=-0.01, le=0.01)  # last rate <= this: flushed


class Settings(_Section):
    _source: str | None = PrivateAttr(None)  # the file these came from, for error messages
    market: MarketSettings = MarketSettings()
    strategy: StrategySettings = StrategySettings()
    exits: ExitSettings = ExitSettings()
    risk: RiskSettings = RiskSettings()
    portfolio: PortfolioSettings = PortfolioSettings()
    costs: CostSettings = CostSettings()
    macro: MacroSettings = MacroSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    feed: FeedSettings = FeedSettings()
    live: LiveSettings = LiveSettings()
    evidence: EvidenceSettings = EvidenceSettings()

    @model_validator(mode="after")
    def _check_cross_fields(self) -> Settings:
        if self.exits.fixed_tp2_r <= self.exits.fixed_tp1_r:
            raise ValueError("exits.fixed_tp2_r must be above exits.fixed_tp1_r")
        if self.risk.risk_per_trade > self.portfolio.max_open_risk:
            raise ValueError(f"portfolio.max_open_risk {self.portfolio.max_open_risk} is below "
                             f"risk.risk_per_trade {self.risk.risk_per_trade}: a full-size "
                             "entry could never be taken")
        if self.macro.hyg_sma_fast >= self.macro.hyg_sma_slow:
            raise ValueError("macro.hyg_sma_fast must be shorter than macro.hyg_sma_slow")
        return self

    @property
    def source(self) -> str | None:
        return self._source

    def for_symbol(self, symbol: str) -> Settings:
        """These settings for one of the run's symbols (what a broker or strategy sees)."""
        if symbol not in self.market.symbols:
            raise ValueError(f"{symbol} is not one of the run's symbols")
        one = self.model_copy(update={"market": self.market.model_copy(
            update={"symbols": (symbol,)})})
        one._source = self._source
        return one

    def with_symbols(self, symbols: tuple[str, ...]) -> Settings:
        """These settings watching `symbols` instead (a command's --symbol), validated."""
        raw = self.model_dump()
        raw["market"]["symbols"] = list(symbols)
        try:
            changed = Settings.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"--symbol: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")\
                from None
        changed._source = self._source
        return changed


def load_settings(path: str | Path | None) -> Settings:
    """Settings from a TOML file (or the built-in defaults when `path` is None)."""
    if path is None:
        return Settings()
    raw = read_profile(Path(path), StrategySettings().path)
    _refuse_moved_keys(path, raw)
    try:
        settings = Settings.model_validate(raw)
        settings._source = str(path)
        return settings
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{path}: {key}: {message}") from None


def _refuse_moved_keys(path: str | Path, raw: dict[str, Any]) -> None:
    """A strategy's parameters live under [strategy.params], and the live broker's state in the
    store: an old key says where its value went."""
    risk = raw.get("risk")
    if isinstance(risk, dict) and "max_open_positions" in risk:
        raise ConfigError(f"{path}: risk.max_open_positions: the cap across symbols moved to "
                          "[portfolio] max_open_positions (one position per symbol always holds)")
    macro = raw.get("macro")
    for key in ("qt_calendar_start", "qt_calendar_end"):
        if isinstance(macro, dict) and key in macro:
            raise ConfigError(f"{path}: macro.{key}: the official QT dates moved to "
                              "macro.qt_periods, a list of [first day, first day after] pairs")
    live = raw.get("live")
    if isinstance(live, dict) and "state_url" in live:
        raise ConfigError(f"{path}: live.state_url: the live broker's state now lives in the "
                          "store (store.url); remove the key. An old live_state.sqlite in "
                          "logging.dir is imported at live start, any other with `cryptobot db "
                          "import-live-state PATH`")
    strategy = raw.get("strategy")
    if not isinstance(strategy, dict):
        return
    for key in strategy:
        if key not in StrategySettings.model_fields:
            raise ConfigError(f"{path}: strategy.{key}: strategy parameters live under "
                              f"[strategy.params]: strategy.params.{key}")
