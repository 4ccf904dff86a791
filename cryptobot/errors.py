"""The exception tree. Imports nothing from cryptobot.

    CryptobotError                 anything the bot raises on purpose
    ├── ConfigError                a config file or value is wrong (names file and key)
    ├── DataError                  a data file or stored data is unusable (names file and row)
    │   └── GapError               a hole longer than allowed inside the requested span
    ├── StrategyLoadError          a strategy import path does not load
    ├── StrategyError              user strategy code raised (names the strategy and the call)
    ├── SecretError                missing keys, or a key file others can read
    ├── StoreError                 the database is missing, empty or holds a corrupted row
    ├── MacroDataError             a macro series is unknown, malformed or unreachable
    └── ExchangeError              anything the venue said or did not say
        ├── TemporaryExchangeError     worth retrying: rate limit, 5xx, timeout, network
        │   └── RateLimitError
        │       └── VenueWaitError     not sent: the venue's wait (a 429's, a ban) is not over
        ├── OrderRejectedError         the venue refused an order (not worth retrying as is)
        ├── InsufficientFundsError
        └── ReconciliationError        stored state and the venue disagree in a way we can't fix

A user-caused error ends the CLI with its message on one line and exit code 2.
"""


class CryptobotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(CryptobotError):
    pass


class DataError(CryptobotError):
    pass


class GapError(DataError):
    pass


class StrategyLoadError(CryptobotError):
    pass


class StrategyError(CryptobotError):
    """User strategy code raised: names the strategy and the call."""


class SecretError(CryptobotError):
    pass


class StoreError(CryptobotError):
    pass


class MacroDataError(CryptobotError):
    pass


class ExchangeError(CryptobotError):
    pass


class TemporaryExchangeError(ExchangeError):
    pass


class RateLimitError(TemporaryExchangeError):
    pass


class VenueWaitError(RateLimitError):
    """Refused before sending: the venue asked us to wait (429 Retry-After, a 418 ban) and
    `wait_s` of it is left. This call did not reach the venue (an order whose earlier answer
    was lost may be there: it is looked up before it is sent again); try again once the wait
    is over."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class OrderRejectedError(ExchangeError):
    pass


class InsufficientFundsError(OrderRejectedError):
    pass


class ReconciliationError(ExchangeError):
    pass
