"""A JSON webhook on 127.0.0.1: what apprise's json:// URLs post to. It keeps every message
(title, message, type) it is sent, in order; `delay_s` makes it answer late, `status` badly."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "hook-TOKEN-5e1f0c9a7d3b"  # the secret part of the URL: found nowhere it must not be


class WebhookSink:
    def __init__(self, delay_s: float = 0.0, status: int = 200) -> None:
        self.messages: list[dict] = []
        self.paths: list[str] = []
        self.delay_s = delay_s
        self.status = status
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if sink.delay_s:
                    time.sleep(sink.delay_s)
                sink.paths.append(self.path)
                sink.messages.append(json.loads(body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"json://{host}:{port}/{TOKEN}"

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def titles(self) -> list[str]:
        return [message.get("title", "") for message in self.messages]


def closed_port_url() -> str:
    """A json:// URL to a port on 127.0.0.1 where nothing listens (a notifier that is down)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"json://127.0.0.1:{port}/{TOKEN}"
