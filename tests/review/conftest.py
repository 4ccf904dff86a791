"""Review fixtures: a store holding the hand-made sample run on real candles, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.store.backends import BACKENDS, backend_url, record_sample


@pytest.fixture(params=BACKENDS)
def stored(request, tmp_path, sample_run):
    """(url, what was sent) for a fresh store with the sample run as run 1, on SQLite and on
    PostgreSQL (skipped, saying why, only when no server is reachable)."""
    for url in backend_url(request, tmp_path):
        yield url, record_sample(url, sample_run)


class _ElementCounter(HTMLParser):
    """Counts elements by class and id (the dumped DOM also holds plotly.js as script text)."""

    def __init__(self) -> None:
        super().__init__()
        self.plot_ids: list[str] = []
        self.main_svgs = 0
        self.candlestick_layers = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if "js-plotly-plot" in classes:
            self.plot_ids.append(values.get("id") or "")
        if tag == "svg" and "main-svg" in classes:
            self.main_svgs += 1
        if "trace" in classes and "boxes" in classes:
            self.candlestick_layers += 1


@pytest.fixture
def render_in_chromium(tmp_path):
    """Open an HTML file in headless chromium (no network) and count what its scripts drew."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not on PATH: `apt-get install -y chromium` (the CI script does)")

    def render(page: Path) -> _ElementCounter:
        result = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        counter = _ElementCounter()
        counter.feed(result.stdout)
        return counter

    return render


@pytest.fixture
def chromium_page(tmp_path):
    """A headless chromium page driven over the DevTools protocol (`chromium_page.py`)."""
    from tests.review.chromium_page import ChromiumPage

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not on PATH: `apt-get install -y chromium` (the CI script does)")
    page = ChromiumPage(browser, tmp_path / "chromium-devtools-profile")
    yield page
    page.close()
