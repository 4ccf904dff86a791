"""One notification URL as a sink, through apprise (the optional extra `notify`).

apprise's own log lines may name the URL: they are kept out of every handler (the notifier
logs one warning of its own instead, naming only the URL's scheme).
"""

from __future__ import annotations

import logging

from cryptobot.errors import ConfigError
from cryptobot.secrets import NOTIFY_URLS_ENV


def _quiet_apprise() -> None:
    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = False
    if not apprise_log.handlers:
        apprise_log.addHandler(logging.NullHandler())


class AppriseSink:
    def __init__(self, url: str, position: int) -> None:
        try:
            import apprise
        except ImportError:
            raise ConfigError(f"{NOTIFY_URLS_ENV} is set but apprise is not installed: "
                              "pip install 'cryptobot[notify]'") from None
        _quiet_apprise()
        scheme = url.partition("://")[0] if "://" in url else "?"
        self.name = f"{scheme}:// (URL {position})"
        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            raise ConfigError(f"{NOTIFY_URLS_ENV}: URL {position} ({scheme}://...) is not a "
                              "notification URL apprise knows (see its wiki for the formats)")

    def send(self, title: str, body: str) -> bool:
        return bool(self._apprise.notify(body=body, title=title))


def apprise_sinks(urls: tuple[str, ...]) -> list[AppriseSink]:
    return [AppriseSink(url, position) for position, url in enumerate(urls, start=1)]
