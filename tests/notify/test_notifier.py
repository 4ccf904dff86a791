"""The notifier between a run and its services: it never makes the run wait, a burst past the
rate limit arrives as one digest (nothing lost), a service that is down costs one warning
without its URL, and the URL is masked wherever a log line would show it."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from cryptobot.clock import LiveClock
from cryptobot.errors import ConfigError
from cryptobot.notify import Notice, Notifier
from cryptobot.notify.apprise_sink import apprise_sinks
from cryptobot.secrets import NOTIFY_URLS_ENV, notify_urls, redact
from tests.notify.webhook import TOKEN, WebhookSink, closed_port_url


def _notices(count: int) -> list[Notice]:
    return [Notice("entry", f"entry {n}", f"body {n}") for n in range(count)]


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_messages_reach_a_json_webhook_on_loopback():
    with WebhookSink() as hook:
        notifier = Notifier(apprise_sinks((hook.url,)), LiveClock()).start()
        notifier.notify(Notice("entry", "cryptobot paper run 1: entry BTC/USDT:USDT",
                               "long 0.002 @ 55,178.98"))
        notifier.close()
        assert hook.titles() == ["cryptobot paper run 1: entry BTC/USDT:USDT"]
        assert hook.messages[0]["message"] == "long 0.002 @ 55,178.98"
        assert hook.paths == [f"/{TOKEN}"] and notifier.sent == 1


def test_a_burst_past_the_rate_limit_arrives_as_one_digest_and_nothing_is_lost():
    with WebhookSink() as hook:
        notifier = Notifier(apprise_sinks((hook.url,)), LiveClock(), max_per_window=3,
                            window_s=1.0).start()
        started = time.monotonic()
        for notice in _notices(10):
            notifier.notify(notice)
        _wait_for(lambda: len(hook.messages) >= 4)
        took_s = time.monotonic() - started
        notifier.close()
    assert hook.titles()[:3] == ["entry 0", "entry 1", "entry 2"]  # one by one, up to 3
    assert len(hook.messages) == 4 and took_s >= 0.9  # the 4th waited for the window
    digest = hook.messages[3]
    assert digest["title"].startswith("7 notices (rate limit: 3 a 1 s)")
    assert digest["message"].splitlines() == [f"entry {n}: body {n}" for n in range(3, 10)]
    assert notifier.digests == 1 and notifier.dropped == 0


class _StuckSink:
    """A service that never answers until released."""

    name = "stuck://"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def send(self, title: str, body: str) -> bool:
        self.calls += 1
        self.release.wait(5)
        return True


def test_a_stuck_service_never_makes_the_run_wait():
    sink = _StuckSink()
    notifier = Notifier([sink], LiveClock(), queue_size=50).start()
    started = time.monotonic()
    for notice in _notices(200):
        notifier.notify(notice)  # the queue fills: the rest are dropped and counted
    assert time.monotonic() - started < 0.2
    assert notifier.dropped >= 200 - 50 - 1
    started = time.monotonic()
    notifier.close(timeout_s=0.3)
    assert time.monotonic() - started < 1.0  # the end of the run waits a bounded time
    sink.release.set()


def test_a_service_that_is_down_costs_one_warning_without_its_url(caplog):
    url = closed_port_url()
    notifier = Notifier(apprise_sinks((url,)), LiveClock()).start()
    with caplog.at_level(logging.INFO, logger="cryptobot.notify"):
        for notice in _notices(3):
            notifier.notify(notice)
        notifier.close()
    # (this pytest also hooks non-propagating loggers: apprise's own, silenced in a run)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and r.name.startswith("cryptobot")]
    assert len(warnings) == 1 and notifier.failures == 3 and notifier.sent == 0
    text = warnings[0].getMessage()
    assert "json:// (URL 1)" in text and TOKEN not in text and "127.0.0.1" not in text


def test_urls_come_from_the_environment_and_are_masked_in_logs(monkeypatch):
    url = f"json://127.0.0.1:9/{TOKEN}"
    monkeypatch.setenv(NOTIFY_URLS_ENV, f"{url}, json://127.0.0.1:10/other-secret-path")
    assert notify_urls() == (url, "json://127.0.0.1:10/other-secret-path")
    assert TOKEN not in redact(f"posting to {url} failed")
    assert TOKEN not in redact(f"posting to 127.0.0.1:9/{TOKEN} failed")  # without its scheme
    monkeypatch.delenv(NOTIFY_URLS_ENV)
    assert notify_urls() == ()


def test_an_unknown_url_is_a_user_error_that_does_not_repeat_it():
    with pytest.raises(ConfigError) as raised:
        apprise_sinks(("nosuchservice://secret-in-here",))
    assert "URL 1" in str(raised.value) and "secret-in-here" not in str(raised.value)


def test_a_run_stopping_on_an_error_and_its_warnings_are_told(monkeypatch):
    from cryptobot.notify import run_notifications

    with WebhookSink() as hook:
        monkeypatch.setenv(NOTIFY_URLS_ENV, hook.url)
        with pytest.raises(RuntimeError), run_notifications(LiveClock(), "live run"):
            log = logging.getLogger("cryptobot.live.run")
            log.warning("kill switch file found: orders cancelled, positions closed; stopped",
                        extra={"event": "kill_switch"})
            log.warning("an ordinary warning", extra={"event": "oi_poll_budget"})
            raise RuntimeError(f"lost the venue while posting to {hook.url}")
        said = [f"{m['title']} | {m['message']}" for m in hook.messages]
    assert said == [
        "cryptobot live run: kill switch | kill switch file found: orders cancelled, "
        "positions closed; stopped",
        "cryptobot live run: stopped by an error | RuntimeError: lost the venue while "
        "posting to ***",
    ]
    assert not logging.getLogger("cryptobot").handlers  # the notice handler is gone again


def test_no_url_no_notifier_and_no_apprise_import(monkeypatch):
    import sys

    from cryptobot.notify import run_notifications

    monkeypatch.delenv(NOTIFY_URLS_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "apprise", raising=False)
    with run_notifications(LiveClock(), "paper run") as notifier:
        assert notifier is None
    assert "apprise" not in sys.modules


def test_a_full_queue_drops_routine_notices_never_an_error_and_says_how_many(caplog):
    with WebhookSink(delay_s=0.3) as hook, caplog.at_level(logging.WARNING, "cryptobot.notify"):
        notifier = Notifier(apprise_sinks((hook.url,)), LiveClock(), max_per_window=1,
                            queue_size=10).start()
        for notice in _notices(100):
            notifier.notify(notice)  # the first goes out slowly: the queue fills behind it
        notifier.notify(Notice("kill_switch", "kill switch", "positions closed"))
        notifier.notify(Notice("error", "stopped by an error", "RuntimeError: venue lost"))
        notifier.close()
        said = "\n".join(f"{m['title']}\n{m['message']}" for m in hook.messages)
    assert "kill switch: positions closed" in said
    assert "stopped by an error: RuntimeError: venue lost" in said
    assert notifier.dropped >= 100 - 10 - 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0].startswith("notifications: the queue is full (10")
    assert warnings[-1] == (f"notifications: {notifier.dropped} routine notices dropped by a "
                            "full queue in this run")


def test_a_digest_fits_a_telegram_message_with_what_must_be_heard_first():
    with WebhookSink() as hook:
        notifier = Notifier(apprise_sinks((hook.url,)), LiveClock(), max_per_window=1).start()
        for n in range(100):
            notifier.notify(Notice("entry", f"entry {n}", "x" * 200))
        notifier.notify(Notice("protection", "protection", "stop not placed"))
        notifier.close()
    digest = hook.messages[-1]["message"]
    assert len(digest) <= 4000 < 99 * 200
    lines = digest.splitlines()
    assert lines[0] == "protection: stop not placed"
    assert lines[-1].startswith("... and ") and lines[-1].split()[2].isdigit()
    # entry 0 went alone; the digest shows or counts the other 99 and the protection notice
    assert len(lines) - 1 + int(lines[-1].split()[2]) == 100
