"""A page opened in Debian's headless chromium, driven over the DevTools protocol (websockets, on
127.0.0.1): it evaluates JavaScript in the page after its scripts ran, and screenshots it whole.
Only a file:// page is opened; chromium runs with its network features off."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
import urllib.request
from contextlib import ExitStack
from itertools import count
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


class ChromiumPage:
    def __init__(self, browser: str, profile: Path, width: int = 1400) -> None:
        self.process = subprocess.Popen([browser, *FLAGS, f"--user-data-dir={profile}",
                                         f"--window-size={width},1000", "about:blank"],
                                        stderr=subprocess.PIPE, text=True)
        port = self._port(deadline=time.monotonic() + 60)
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # keep it drained
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        self.connection = ExitStack()
        self.socket = self.connection.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30))
        self.ids = count(1)
        self.width = width

    def _port(self, deadline: float) -> int:
        assert self.process.stderr is not None
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            if match := LISTENING.search(line):
                return int(match.group(2))
        raise AssertionError("chromium did not open its DevTools port")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        sent = next(self.ids)
        self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=120))
            if message.get("id") == sent:
                assert "error" not in message, message["error"]
                return message.get("result", {})

    def open(self, page: Path, ready_js: str, timeout_s: float = 60.0) -> None:
        """Load the file and wait until `ready_js` is true in it."""
        self.call("Page.enable")
        self.call("Page.navigate", url=page.as_uri())
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(f"document.readyState === 'complete' && ({ready_js})"):
            assert time.monotonic() < deadline, f"the page never got ready: {ready_js}"
            time.sleep(0.2)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, out: Path) -> tuple[int, int]:
        """The whole page as a PNG; its (width, height) in pixels."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=height,
                  deviceScaleFactor=1, mobile=False)
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png = base64.b64decode(shot["data"])
        out.write_bytes(png)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")

    def close(self) -> None:
        self.connection.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
