"""ROI arithmetic (DESIGN §4), pure functions over Decimals.

roi = (attributed revenue + time saved value - integration cost) / integration cost x 100,
integration cost = setup + monthly x months + messaging cost. The seeds' reference check:
cost 10 000 and value 50 000 give (50 000 - 10 000) / 10 000 x 100 = 400 %.

Money is rounded to cents (half up) per figure, and totals add the rounded figures, so a
statement always adds up as printed; ROI is rounded to 0.01 percentage points.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connector.kpis.options import KpiOptions

CENT = Decimal("0.01")
MONTHS_PLACES = Decimal("0.000001")
_MICRO = timedelta(microseconds=1)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(value: datetime, months: int) -> datetime:
    """Same day and wall-clock time ``months`` later, clamped to the month's last day."""
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def months_between(start: datetime, end: datetime) -> Decimal:
    """Calendar months from ``start`` to ``end``: whole months, then the fraction of the next.

    1 Jan → 1 Apr is exactly 3; 1 Jan → 16 Jan is 15/31. Whole months step by calendar
    date and wall-clock time in the datetimes' own zone, so pass both in the account
    time zone (``roi_figures`` does) and a DST change inside the period costs nothing.
    A period ending on or before its start has 0 months.
    """
    if end <= start:
        return Decimal(0)
    whole = (end.year - start.year) * 12 + (end.month - start.month)
    anchor = add_months(start, whole)
    while anchor > end:
        whole -= 1
        anchor = add_months(start, whole)
    following = add_months(start, whole + 1)
    part = Decimal((end - anchor) // _MICRO) / Decimal((following - anchor) // _MICRO)
    return (Decimal(whole) + part).quantize(MONTHS_PLACES, rounding=ROUND_HALF_UP)


def time_saved_value(
    automated_resolutions: int, minutes_saved: Decimal, hourly_rate: Decimal
) -> Decimal:
    """Automated resolutions x minutes saved per resolution / 60 x hourly rate, in cents."""
    return money(Decimal(automated_resolutions) * minutes_saved / 60 * hourly_rate)


def roi_percent(net: Decimal, integration_cost: Decimal) -> Decimal | None:
    """Net / integration cost x 100; ``None`` when nothing was spent (no ratio to give)."""
    if integration_cost == 0:
        return None
    return (net / integration_cost * 100).quantize(CENT, rounding=ROUND_HALF_UP)


def roi_figures(
    attributed_revenue: Decimal,
    messaging_cost: Decimal,
    automated_resolutions: int,
    opts: KpiOptions,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Every figure of the ROI statement for ``[start, end)``; money as Decimals in cents.

    Keys: attributed_revenue, time_saved_value, value (their sum), setup, monthly, months,
    recurring (monthly x months), messaging_cost, integration_cost (setup + recurring +
    messaging_cost), net (value - integration_cost), roi (percent, ``None`` when the
    integration cost is 0). The KPI engine reads time_saved_value, integration_cost and
    roi from here, so these names are a contract.
    """
    months = months_between(start.astimezone(opts.tz), end.astimezone(opts.tz))
    revenue = money(attributed_revenue)
    saved = time_saved_value(automated_resolutions, opts.minutes_saved, opts.hourly_rate)
    setup = money(opts.setup_cost)
    recurring = money(opts.monthly_cost * months)
    messaging = money(messaging_cost)
    value = revenue + saved
    cost = setup + recurring + messaging
    net = value - cost
    return {
        "attributed_revenue": revenue,
        "time_saved_value": saved,
        "value": value,
        "setup": setup,
        "monthly": money(opts.monthly_cost),
        "months": months,
        "recurring": recurring,
        "messaging_cost": messaging,
        "integration_cost": cost,
        "net": net,
        "roi": roi_percent(net, cost),
    }
