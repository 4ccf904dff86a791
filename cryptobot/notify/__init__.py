"""Notifications: what a trader away from the screen must hear (entries, exits, a stop that
could not be placed, the protection fallback, reconciliation corrections, the kill switch, the
run stopping on an error, a daily summary), sent through apprise (Telegram, Discord, Slack,
e-mail, ntfy, a JSON webhook...) to the URLs in `CRYPTOBOT_NOTIFY_URLS`.

- `secrets.notify_urls()`: the URLs, from the environment only; each is a secret (masked in
  every log line and exception text, never stored).
- `Notifier` (notifier.py): a queue and one worker thread; the engine never waits for it, a
  notifier that is down costs one warning, and a burst past the rate limit is sent as one digest.
- `RunNotices` (run_notices.py): a Recorder that passes everything on and tells the notifier
  what a trader must hear; `NoticeLogHandler` forwards the warnings that matter.
- `run_notifications(...)`: the context a paper or live run (one code path) runs inside.

apprise is imported only when a URL is set (the optional extra `notify`).
"""

from cryptobot.notify.notifier import Notice, Notifier
from cryptobot.notify.run_notices import NoticeLogHandler, RunNotices, run_notifications

__all__ = ["Notice", "Notifier", "NoticeLogHandler", "RunNotices", "run_notifications"]
