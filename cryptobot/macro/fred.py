"""FRED sources: the API through fredapi (with a key, ALFRED vintage dates) or keyless CSV.

Each `fetch(series_id) -> Observations`; every failure is a MacroDataError naming the series and
what went wrong, never the key (fredapi puts it in the URL, so URLs are never echoed).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime

import numpy as np
from fredapi import Fred

from cryptobot.errors import MacroDataError
from cryptobot.macro.csv_files import parse_fred_csv
from cryptobot.macro.observations import Observations


class _FredClient(Fred):
    """fredapi with a request timeout and a fast date parser.

    fredapi's own fetch calls urlopen without a timeout (a stalled server hangs the run), and
    its date parser calls pandas once per row (~0.4 ms each). Both are overridden here, on this
    client only: no global of urllib or fredapi is touched.
    """

    def __init__(self, api_key: str, root_url: str, timeout_s: float) -> None:
        super().__init__(api_key=api_key)
        self.root_url = root_url.rstrip("/")
        self.timeout_s = timeout_s

    def _Fred__fetch_data(self, url: str) -> ET.Element:  # noqa: N802 (fredapi's private name)
        url += "&api_key=" + self.api_key
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                return ET.fromstring(response.read())
        except urllib.error.HTTPError as exc:  # FRED's error answers are XML with a message
            raise ValueError(ET.fromstring(exc.read()).get("message")) from None

    def _parse(self, date_str, format="%Y-%m-%d"):  # noqa: A002 (fredapi's signature)
        if format != "%Y-%m-%d":
            return super()._parse(date_str, format)
        return datetime.strptime(date_str, format)


class FredApiSource:
    method = "FRED API (key)"

    def __init__(self, api_key: str, root_url: str, observation_start: str,
                 timeout_s: float = 30.0) -> None:
        self._fred = _FredClient(api_key, root_url, timeout_s)
        self._start = observation_start
        self._root_url = root_url

    def fetch(self, series_id: str) -> Observations:
        try:
            values = self._fred.get_series(series_id, observation_start=self._start)
            vintages = self._fred.get_series_vintage_dates(series_id)
        except ValueError as exc:  # fredapi turns FRED's error answer into its message
            raise MacroDataError(f"FRED API: series {series_id}: {exc}") from None
        except ET.ParseError:
            raise MacroDataError(
                f"FRED API at {self._root_url}: answer for {series_id} is not FRED XML"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise _unreachable(f"FRED API at {self._root_url}", series_id, exc) from None
        values = values.dropna()
        if values.empty:
            raise MacroDataError(f"FRED API: series {series_id}: no observations")
        dates = values.index.to_numpy().astype("datetime64[D]")
        return Observations(series_id, dates, values.to_numpy(dtype=np.float64),
                            f"FRED API {series_id}", first_vintage_after(dates, vintages))


def first_vintage_after(dates: np.ndarray, vintages: list) -> np.ndarray:
    """For each observation date, the first ALFRED vintage date after it (NaT if none)."""
    vintage_days = np.sort(np.array(vintages, dtype="datetime64[D]"))
    index = np.searchsorted(vintage_days, dates, side="right")
    found = index < len(vintage_days)
    result = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[D]")
    result[found] = vintage_days[index[found]]
    return result


class FredCsvSource:
    """FRED's public CSV download (fredgraph.csv?id=SERIES): no key, no vintages."""

    method = "FRED keyless CSV"

    def __init__(self, csv_url: str, timeout_s: float, observation_start: str) -> None:
        self._csv_url = csv_url
        self._start = observation_start
        self._timeout_s = timeout_s

    def fetch(self, series_id: str) -> Observations:
        url = f"{self._csv_url}?{urllib.parse.urlencode({'id': series_id, 'cosd': self._start})}"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as response:
                text = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            raise MacroDataError(
                f"FRED keyless CSV: series {series_id}: HTTP {exc.code} {exc.reason} "
                "(unknown series?)"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise _unreachable(f"FRED keyless CSV at {self._csv_url}", series_id, exc) from None
        return parse_fred_csv(text, series_id, f"FRED keyless CSV {series_id}")


def _unreachable(where: str, series_id: str, exc: OSError) -> MacroDataError:
    # URLError carries the cause in .reason (refused, timed out); a bare OSError is its own.
    reason = getattr(exc, "reason", exc)
    return MacroDataError(f"{where} unreachable while fetching {series_id}: {reason}")
