"""Macro test fixtures: the bundled real snapshot, and a fake FRED on 127.0.0.1.

The fake FRED serves the real recorded observations of data/macro in FRED's own formats: the
API's XML (what fredapi parses) and the keyless fredgraph CSV (the file bytes as bundled). FRED's
vintage dates are not in the bundle, so the fake derives them (the business day after each
observation, the H.4.1 schedule): those dates are SYNTHETIC, the values are real.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import quoteattr

import numpy as np
import pytest

from cryptobot.clock import LiveClock
from cryptobot.config import MacroSettings
from cryptobot.macro.history import MacroHistory
from cryptobot.macro.loader import SnapshotSource, load_history

MACRO_DIR = Path(__file__).resolve().parents[2] / "data" / "macro"
GOOD_KEY = "abcdef0123456789abcdef0123456789"


def _error_xml(message: str, code: int = 400) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8" ?>\n<error code="{code}" '
            f"message={quoteattr(message)}/>").encode()


class FakeFred:
    """Answers like FRED: XML API under /fred, keyless CSV under /graph/fredgraph.csv."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.malformed_csv: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeFred:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests[url.path] += 1
                status, body, kind = fake.answer(url.path, query)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes, str]:
        if path == "/graph/fredgraph.csv":
            series = query.get("id", "")
            if series in self.malformed_csv:
                return 200, b"<html><body>Service maintenance</body></html>", "text/html"
            files = _series_files(series)
            if not files:
                return 404, b"Not Found", "text/plain"
            obs = SnapshotSource(MACRO_DIR).fetch(series)
            start = np.datetime64(query.get("cosd", "1776-07-04"))
            rows = "".join(f"{d},{float(v)!r}\n" for d, v in zip(obs.dates, obs.values, strict=True)
                           if d >= start)
            return 200, f"observation_date,{series}\n{rows}".encode(), "text/csv"
        if not path.startswith("/fred/series/"):
            return 404, _error_xml("Not Found", 404), "text/xml"
        key = query.get("api_key")
        if not key:
            return 400, _error_xml("Bad Request.  Variable api_key is not set."), "text/xml"
        if key != GOOD_KEY:
            return 400, _error_xml(
                "Bad Request.  The value for variable api_key is not registered."), "text/xml"
        series = query.get("series_id", "")
        files = _series_files(series)
        if not files:
            return 400, _error_xml("Bad Request.  The series does not exist."), "text/xml"
        obs = SnapshotSource(MACRO_DIR).fetch(series)
        if path == "/fred/series/observations":
            start = np.datetime64(query.get("observation_start", "1776-07-04"))
            rows = "".join(f'<observation realtime_start="2026-08-10" realtime_end="2026-08-10" '
                           f'date="{d}" value="{float(v)!r}"/>'
                           for d, v in zip(obs.dates, obs.values, strict=True) if d >= start)
            return 200, (f'<?xml version="1.0" encoding="utf-8" ?><observations '
                         f'count="{len(obs)}">{rows}</observations>').encode(), "text/xml"
        if path == "/fred/series/vintagedates":
            vintages = np.busday_offset(obs.dates, 1, roll="forward")
            rows = "".join(f"<vintage_date>{d}</vintage_date>" for d in vintages)
            return 200, (f'<?xml version="1.0" encoding="utf-8" ?><vintage_dates>{rows}'
                         "</vintage_dates>").encode(), "text/xml"
        return 404, _error_xml("Not Found", 404), "text/xml"


def _series_files(series: str) -> list[Path]:
    if not series.replace("_", "").isalnum():
        return []
    return sorted(MACRO_DIR.glob(f"{series}.csv")) + sorted(MACRO_DIR.glob(f"{series}_*.csv"))


@pytest.fixture
def fake_fred():
    server = FakeFred().start()
    yield server
    server.stop()


@pytest.fixture
def fred_settings(fake_fred, tmp_path) -> MacroSettings:
    return MacroSettings(use_fred=True, fred_api_url=f"{fake_fred.root}/fred",
                         fred_csv_url=f"{fake_fred.root}/graph/fredgraph.csv",
                         cache_dir=str(tmp_path / "macro_cache"), http_timeout_s=5.0)


@pytest.fixture(scope="session")
def bundled_history() -> MacroHistory:
    """The bundled real snapshot, precomputed once for the whole session."""
    return load_history(MacroSettings(), LiveClock())
