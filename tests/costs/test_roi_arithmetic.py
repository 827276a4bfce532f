"""ROI arithmetic with hand-worked numbers, including the seeds' 10 000 / 50 000 → 400 %."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from connector.kpis.options import KpiOptions
from connector.kpis.roi import months_between, roi_figures, roi_percent, time_saved_value

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2026, 1, 1), utc(2026, 4, 1), "3"),  # three whole calendar months
        (utc(2026, 1, 1), utc(2027, 1, 1), "12"),
        (utc(2026, 1, 1), utc(2026, 1, 16), "0.483871"),  # 15 / 31 days of January
        (utc(2026, 2, 1), utc(2026, 2, 15), "0.5"),  # 14 / 28 days of February 2026
        (utc(2026, 1, 15), utc(2026, 3, 15), "2"),  # whole months need not start on the 1st
        (utc(2026, 1, 31), utc(2026, 2, 28), "1"),  # 31 Jan + 1 month clamps to 28 Feb
        # 1 Mar 09:00 + 1 month = 1 Apr 09:00, then 12 h of April's 30 days = 0.5 / 30.
        (utc(2026, 3, 1, 9), utc(2026, 4, 1, 21), "1.016667"),
        (utc(2026, 4, 1), utc(2026, 4, 1), "0"),
        (utc(2026, 4, 1), utc(2026, 3, 1), "0"),
    ],
)
def test_months_between_is_calendar_aware(start: datetime, end: datetime, expected: str) -> None:
    assert months_between(start, end) == Decimal(expected)


def test_months_between_ignores_a_dst_change_in_local_time() -> None:
    # Berlin moves to summer time on 29 March 2026, so March there lasts 743 real
    # hours, yet 1 March → 1 April local midnight is one month, not 743/744 of one.
    start = datetime(2026, 3, 1, tzinfo=BERLIN)
    end = datetime(2026, 4, 1, tzinfo=BERLIN)
    assert months_between(start, end) == Decimal(1)


def test_time_saved_value() -> None:
    # 120 automated resolutions x 6 min = 720 min = 12 h; 12 h x 25.00/h = 300.00
    assert time_saved_value(120, Decimal(6), Decimal(25)) == Decimal("300.00")
    # 7 x 10 min = 70 min = 1.1666.. h; x 25.00 = 29.1666.. -> 29.17 (cents, half up)
    assert time_saved_value(7, Decimal(10), Decimal(25)) == Decimal("29.17")
    assert time_saved_value(0, Decimal(10), Decimal(25)) == Decimal("0.00")


def test_roi_percent() -> None:
    assert roi_percent(Decimal(40000), Decimal(10000)) == Decimal("400.00")
    assert roi_percent(Decimal(-2500), Decimal(10000)) == Decimal("-25.00")
    # 1 / 3 x 100 = 33.333.. -> 33.33
    assert roi_percent(Decimal(1), Decimal(3)) == Decimal("33.33")
    assert roi_percent(Decimal(500), Decimal(0)) is None  # nothing spent: no ratio


def test_seeds_reference_check_cost_10000_value_50000_is_400_percent() -> None:
    # Setup 3 000 + recurring 1 000/month x 6 months (1 Jan → 1 Jul) + messaging 1 000
    # = integration cost 10 000. Value = attributed revenue 47 000 + time saved
    # (100 automated resolutions x 60 min / 60 x 30.00/h = 3 000) = 50 000.
    # ROI = (50 000 - 10 000) / 10 000 x 100 = 400 %.
    opts = KpiOptions(
        setup_cost=Decimal(3000),
        monthly_cost=Decimal(1000),
        hourly_rate=Decimal(30),
        minutes_saved=Decimal(60),
    )
    fig = roi_figures(
        attributed_revenue=Decimal(47000),
        messaging_cost=Decimal(1000),
        automated_resolutions=100,
        opts=opts,
        start=utc(2026, 1, 1),
        end=utc(2026, 7, 1),
    )
    assert fig["months"] == Decimal(6)
    assert fig["recurring"] == Decimal("6000.00")
    assert fig["time_saved_value"] == Decimal("3000.00")
    assert fig["value"] == Decimal("50000.00")
    assert fig["integration_cost"] == Decimal("10000.00")
    assert fig["net"] == Decimal("40000.00")
    assert fig["roi"] == Decimal("400.00")


def test_roi_figures_months_in_the_account_zone() -> None:
    # Local midnights in Berlin (UTC+1 in winter, +2 in summer) given as UTC instants:
    # 2025-12-31 23:00Z = 1 Jan 00:00 Berlin, 2026-03-31 22:00Z = 1 Apr 00:00 Berlin.
    # In Berlin that is exactly 3 months, so recurring = 3 x 200.00 = 600.00;
    # integration cost = 600.00 + messaging 12.34 = 612.34; value 0 -> net -612.34,
    # ROI = -612.34 / 612.34 x 100 = -100 %.
    opts = KpiOptions(monthly_cost=Decimal(200), timezone="Europe/Berlin")
    fig = roi_figures(
        attributed_revenue=Decimal(0),
        messaging_cost=Decimal("12.34"),
        automated_resolutions=0,
        opts=opts,
        start=utc(2025, 12, 31, 23),
        end=utc(2026, 3, 31, 22),
    )
    assert fig["months"] == Decimal(3)
    assert fig["integration_cost"] == Decimal("612.34")
    assert fig["net"] == Decimal("-612.34")
    assert fig["roi"] == Decimal("-100.00")


def test_roi_is_none_without_any_cost() -> None:
    fig = roi_figures(
        attributed_revenue=Decimal(900),
        messaging_cost=Decimal(0),
        automated_resolutions=3,
        opts=KpiOptions(),
        start=utc(2026, 1, 1),
        end=utc(2026, 2, 1),
    )
    assert fig["integration_cost"] == Decimal(0) and fig["roi"] is None
    assert fig["net"] == Decimal("900.00")
