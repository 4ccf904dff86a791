"""US business-day calendars for publication delays and data ages.

Two calendars, because the bundled data shows two:
- FED: US federal holidays (pandas' USFederalHolidayCalendar). The Fed's H.4.1 (WALCL) and the
  funding series (SOFR, RRPONTSYD, ...) are not published on them: SOFR has no value on Columbus
  Day or Veterans Day.
- MARKETS: NYSE-like, for HYG (an NYSE-listed ETF) and the ICE BofA high-yield spread, which
  has values on Columbus Day and Veterans Day but none on Good Friday, Juneteenth or Christmas.
  Federal holidays minus those two, plus Good Friday; New Year's Day is not moved back to a
  Friday. One-off closures (national days of mourning, storms) are not listed: they can only
  make a close look one trading day older than it is.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    GoodFriday,
    Holiday,
    USFederalHolidayCalendar,
    USLaborDay,
    USMartinLutherKingJr,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)

FED = "fed"
MARKETS = "markets"
_FIRST_YEAR, _LAST_YEAR = 1990, 2100


class _MarketHolidayCalendar(AbstractHolidayCalendar):
    rules = [  # noqa: RUF012 (pandas' class attribute)
        Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
        USMartinLutherKingJr,
        USPresidentsDay,
        GoodFriday,
        USMemorialDay,
        Holiday("Juneteenth", month=6, day=19, start_date="2022-01-01",
                observance=nearest_workday),
        Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas", month=12, day=25, observance=nearest_workday),
    ]


@cache
def business_days(calendar: str) -> np.busdaycalendar:
    """Monday to Friday without the holidays of FED or MARKETS (1990-2100)."""
    source = {FED: USFederalHolidayCalendar, MARKETS: _MarketHolidayCalendar}[calendar]()
    holidays = source.holidays(f"{_FIRST_YEAR}-01-01", f"{_LAST_YEAR}-12-31")
    return np.busdaycalendar(holidays=holidays.to_numpy().astype("datetime64[D]"))
