"""ccxt exceptions mapped into cryptobot's tree, and a retry helper for temporary errors only.

    ccxt.RateLimitExceeded, DDoSProtection (429; 418 = IP ban) -> RateLimitError
    ccxt.NetworkError (RequestTimeout, ExchangeNotAvailable, ...) -> TemporaryExchangeError
    ccxt.InsufficientFunds                            -> InsufficientFundsError (orders)
    ccxt.InvalidOrder, OrderNotFound, BadRequest, ... -> OrderRejectedError (orders)
    ccxt.AuthenticationError, PermissionDenied        -> SecretError (never quotes the key)
    any other ccxt.BaseError                          -> ExchangeError

A refusal is an OrderRejectedError only when the call sent, changed or cancelled an order (or
the account's margin mode or leverage: `order=True`); a refused read (history, balance,
positions) is a plain ExchangeError. Messages are passed through `redact`, so a registered key
can never ride along in one.

Of the temporary errors, only some say the request was NOT carried out (`not_executed`: a rate
limit or ban, -1008 overload): those may be resent as they are. Every other one (a timeout,
5xx, -1007 "execution status unknown", 503 "Unknown error") leaves an order's fate unknown:
the caller must look before it resends (brokers/live/gateway.py does).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ccxt

from cryptobot.errors import (
    CryptobotError,
    ExchangeError,
    InsufficientFundsError,
    OrderRejectedError,
    RateLimitError,
    SecretError,
    TemporaryExchangeError,
)
from cryptobot.secrets import redact

T = TypeVar("T")
MAX_DELAY_S = 30.0  # the longest a retry waits (a venue asking for longer: given up)

_ORDER_REJECTIONS = (
    ccxt.InvalidOrder,
    ccxt.OrderNotFound,
    ccxt.BadRequest,
    ccxt.BadSymbol,
    ccxt.OperationRejected,
    ccxt.NotSupported,
)


# Binance's own error codes decide first: ccxt picks its class by the host name, so behind a
# proxy or a loopback URL the same answer would otherwise map differently.
_TEMPORARY_CODES = {-1000, -1001, -1006, -1007, -1008}
_RATE_LIMIT_CODES = {-1003, -1015}
_AUTH_CODES = {-1002, -1022, -2014, -2015}
_FUNDS_CODES = {-2018, -2019, -2024}
_NOT_EXECUTED_CODES = {-1003, -1008, -1015}  # refused before the matching engine saw it
NOT_FOUND_CODES = {-2011, -2013}
DUPLICATE_CLIENT_ID_CODE = -4116
_CODE = re.compile(r'"code"\s*:\s*"?(-\d+)')


def binance_code(exc: BaseException) -> int | None:
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def map_ccxt_error(exc: BaseException, action: str = "", *, order: bool = False) -> CryptobotError:
    """The cryptobot error for a ccxt one; `action` says what we were doing (one line), `order`
    whether that sent, changed or cancelled an order (else a refusal is no order rejection)."""
    if isinstance(exc, CryptobotError):
        return exc
    prefix = f"{action}: " if action else ""
    text = redact(" ".join(str(exc).split()))[:300]
    refused = OrderRejectedError if order else ExchangeError
    code = binance_code(exc)
    if code in _AUTH_CODES:
        return SecretError(f"{prefix}the exchange refused the API key or signature (code {code}); "
                           "check the key, its permissions and IP whitelist")
    if code in _RATE_LIMIT_CODES:
        return RateLimitError(f"{prefix}rate limited: {text}")
    if code in _TEMPORARY_CODES:
        return TemporaryExchangeError(f"{prefix}{text}")
    if code in _FUNDS_CODES and order:
        return InsufficientFundsError(f"{prefix}insufficient funds: {text}")
    if code is not None and code <= -1100:  # -11xx request issues, -2xxx/-4xxx order rejections
        return refused(f"{prefix}{text}")
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return SecretError(f"{prefix}the exchange refused the API key ({type(exc).__name__}); "
                           "check the key, its permissions and IP whitelist")
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimitError(f"{prefix}rate limited: {text}")
    if isinstance(exc, ccxt.NetworkError):  # RequestTimeout, ExchangeNotAvailable, ...
        return TemporaryExchangeError(f"{prefix}{type(exc).__name__}: {text}")
    if isinstance(exc, ccxt.InsufficientFunds) and order:
        return InsufficientFundsError(f"{prefix}insufficient funds: {text}")
    if isinstance(exc, _ORDER_REJECTIONS):
        return refused(f"{prefix}{type(exc).__name__}: {text}")
    if isinstance(exc, ccxt.BaseError):
        return ExchangeError(f"{prefix}{type(exc).__name__}: {text}")
    return ExchangeError(f"{prefix}{type(exc).__name__}: {redact(str(exc))[:300]}")


def is_order_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ccxt.OrderNotFound) or binance_code(exc) in NOT_FOUND_CODES


def not_executed(exc: BaseException) -> bool:
    """The venue surely did not carry the request out: a rate limit or IP ban, an overload."""
    return binance_code(exc) in _NOT_EXECUTED_CODES or isinstance(
        exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)


def call_ccxt(action: str, fn: Callable[[], T], *, order: bool = False) -> T:
    """Run one ccxt call; any ccxt error comes out as a cryptobot error (see map_ccxt_error)."""
    try:
        return fn()
    except ccxt.BaseError as exc:
        raise map_ccxt_error(exc, action, order=order) from None


def retry_after_s(exchange: Any) -> float | None:
    """The Retry-After seconds of the exchange's last answer (a 429 or 418), if it sent one."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for a venue; the doubled backoff applies instead


def retry_temporary(
    fn: Callable[[], T],
    attempts: int = 5,
    base_delay_s: float = 0.5,
    max_delay_s: float = MAX_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, TemporaryExchangeError], None] | None = None,
    server_delay_s: Callable[[], float | None] | None = None,
) -> T:
    """Call fn; on a temporary error wait (jittered, doubling) and try again, up to `attempts`.

    Anything else is raised as is; the last temporary error is raised saying how many tries it
    took. A rate limit waits what the server asked for where `server_delay_s` knows it (e.g.
    `lambda: retry_after_s(exchange)`), never less (asking again sooner is what earns an IP
    ban); when that is longer than `max_delay_s` the error is raised at once instead. Without
    it a rate limit waits twice as long as other temporary errors, so we back off harder when
    the venue asks us to.
    """
    jitter = rng or random.Random()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TemporaryExchangeError as exc:
            if attempt == attempts:
                raise type(exc)(f"{exc} (gave up after {attempt} tries)") from None
            asked_s = (server_delay_s() if isinstance(exc, RateLimitError)
                       and server_delay_s is not None else None)
            if asked_s is not None and asked_s > max_delay_s:
                raise type(exc)(f"{exc} (the exchange asks to wait {asked_s:g} s, longer than "
                                f"{max_delay_s:g} s: not asked again)") from None
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(retry_delay_s(exc, attempt, base_delay_s, max_delay_s, jitter,
                                server_delay_s))
    raise AssertionError("unreachable")


def retry_delay_s(exc: ExchangeError, attempt: int, base_delay_s: float,
                  max_delay_s: float, jitter: random.Random,
                  server_delay_s: Callable[[], float | None] | None) -> float:
    """How long to wait before try `attempt + 1` (the schedule `retry_temporary` follows)."""
    if isinstance(exc, RateLimitError) and server_delay_s is not None:
        asked_s = server_delay_s()
        if asked_s is not None:
            return min(asked_s, max_delay_s)  # the server's wait, as is: no jitter
    delay_s = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
    if isinstance(exc, RateLimitError):
        delay_s = min(max_delay_s, delay_s * 2)
    return delay_s * (0.5 + jitter.random())  # 50-150%: retries don't line up
