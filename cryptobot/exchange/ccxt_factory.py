"""One place that builds ccxt clients, so every part talks to the venue the same way.

`rest_url` points every REST endpoint at another host (a loopback fake in tests, a replay) while
keeping each endpoint's path: https://fapi.binance.com/fapi/v1 -> {rest_url}/fapi/v1.

A sync client talks HTTP through `LeanSession` (lean_http.py) instead of ccxt's
`requests.Session`: the same answers and errors for ccxt, ~0.5 ms less per request (an order's
round trip is most of what the live broker waits on), and spends ccxt's rate-limit costs from a
`RequestBudget` (request_budget.py, `exchange.request_budget`) instead of ccxt's throttle,
which spaced every call (an order 200 ms after the last request on binanceusdm): reads at the
same sustained rate, a burst at once, and orders counted apart (Binance's order counts), so a
stop never waits behind reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from cryptobot.errors import ConfigError
from cryptobot.exchange.lean_http import LeanSession
from cryptobot.exchange.request_budget import RequestBudget
from cryptobot.secrets import ApiKeys, register_secret

# Only linear (USDT-margined) perpetuals: load_markets then makes one exchangeInfo call.
_LINEAR_ONLY: dict[str, dict[str, Any]] = {
    "binanceusdm": {"defaultType": "swap", "fetchMarkets": {"types": ["linear"]}},
    "bybit": {"defaultType": "swap", "fetchMarkets": {"types": ["linear"]}},
}


def make_exchange(exchange_id: str, *, rest_url: str | None = None, api_keys: ApiKeys | None = None,
                  demo_trading: bool = False, async_client: bool = False,
                  timeout_ms: int | None = None, rate_limit: bool = True,
                  options: Mapping[str, Any] | None = None) -> Any:
    """A configured ccxt instance (sync, or async with `async_client`).

    `timeout_ms` bounds each request (ccxt's default when None); `rate_limit` keeps the rate
    limit on (ccxt's limiter for an async client, a RequestBudget of ccxt's costs for a sync
    one; off only against a loopback fake); `options` are merged into ccxt's `options`.
    """
    module = ccxt_async if async_client else ccxt
    exchange_class = getattr(module, exchange_id, None)
    if exchange_class is None or exchange_id not in ccxt.exchanges:
        raise ConfigError(f"unknown exchange {exchange_id!r} (expected a ccxt id such as "
                          "binanceusdm or bybit)")
    config: dict[str, Any] = {"enableRateLimit": rate_limit,
                              "options": {**_LINEAR_ONLY.get(exchange_id, {}), **(options or {})}}
    if timeout_ms is not None:
        config["timeout"] = timeout_ms
    if api_keys is not None:
        register_secret(api_keys.key)
        register_secret(api_keys.secret)
        config["apiKey"], config["secret"] = api_keys.key, api_keys.secret
    exchange = exchange_class(config)
    if not async_client:
        exchange.session = LeanSession()
        if rate_limit:  # ccxt calls throttle(cost) before each request
            exchange.request_budget = RequestBudget(exchange.rateLimit)
            exchange.throttle = exchange.request_budget.spend
    if demo_trading:
        exchange.enable_demo_trading(True)
    if rest_url is not None:
        exchange.urls["api"] = rewrite_api_urls(exchange.urls["api"], rest_url)
        # ccxt picks some hosts (e.g. Bybit's) from `hostname`; keep it consistent.
        exchange.hostname = urlsplit(rest_url).netloc
    return exchange


def rewrite_api_urls(urls: Any, rest_url: str) -> Any:
    """Replace scheme and host of every URL (nested dicts too), keep the path."""
    base = rest_url.rstrip("/")
    if isinstance(urls, dict):
        return {key: rewrite_api_urls(value, rest_url) for key, value in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        parts = urlsplit(urls)
        return base + parts.path
    return urls
