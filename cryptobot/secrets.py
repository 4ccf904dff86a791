"""Secrets come from the environment or an owner-only key file, never from config TOML.

Every secret read here is registered with the log redaction filter, so it cannot reach logs.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cryptobot.errors import SecretError

API_KEY_ENV = "CRYPTOBOT_API_KEY"
API_SECRET_ENV = "CRYPTOBOT_API_SECRET"
FRED_KEY_ENV = "FRED_API_KEY"
NOTIFY_URLS_ENV = "CRYPTOBOT_NOTIFY_URLS"

_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a value so log redaction masks it wherever it appears: as it is, and as JSON
    writes it (a quote, backslash or non-ASCII character in a nested field of a log line is
    escaped before the line is redacted)."""
    if value and len(value) >= 4:
        _registered.add(value)
        _registered.update({json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]})


def registered_secrets() -> frozenset[str]:
    return frozenset(_registered)


def redact(text: str) -> str:
    for secret in sorted(_registered, key=len, reverse=True):  # a secret holding another first
        if secret in text:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class ApiKeys:
    key: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "ApiKeys(key=***, secret=***)"


def fred_api_key() -> str | None:
    key = os.environ.get(FRED_KEY_ENV) or None
    register_secret(key)
    return key


def notify_urls() -> tuple[str, ...]:
    """The notification URLs (apprise's: tgram://, discord://, json://...), separated by
    spaces or commas; each, with and without its scheme, is masked in every log line."""
    text = os.environ.get(NOTIFY_URLS_ENV) or ""
    urls = tuple(url for url in text.replace(",", " ").split() if url)
    for url in urls:
        register_secret(url)
        register_secret(url.partition("://")[2])
    return urls


def load_api_keys(key_file: str | Path | None = None) -> ApiKeys:
    """Keys from a key file (TOML with `key` and `secret`, owner-only) or the environment."""
    if key_file is not None:
        keys = _keys_from_file(Path(key_file))
    else:
        key, secret = os.environ.get(API_KEY_ENV), os.environ.get(API_SECRET_ENV)
        if not key or not secret:
            raise SecretError(
                f"missing exchange keys: set {API_KEY_ENV} and {API_SECRET_ENV}, or pass --key-file"
            )
        keys = ApiKeys(key=key, secret=secret)
    register_secret(keys.key)
    register_secret(keys.secret)
    return keys


def _keys_from_file(path: Path) -> ApiKeys:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SecretError(f"{path}: key file not found") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"{path}: key file is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise SecretError(f"{path}: key file is not valid TOML with 'key' and 'secret'") from None
    key, secret = raw.get("key"), raw.get("secret")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        raise SecretError(f"{path}: key file needs string values 'key' and 'secret'")
    return ApiKeys(key=key, secret=secret)
