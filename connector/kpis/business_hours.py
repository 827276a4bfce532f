"""Business-hours clocks: durations that count only time inside the weekly schedule.

The schedule (local times in a time zone, minus holidays) becomes a list of open intervals
in UTC epoch seconds, each with the business seconds elapsed before it. A timestamp maps to
its business clock ``B(t)`` with one indexed lookup; a duration in business hours is then
``B(end) - B(start)``. Working from local wall-clock times makes DST changes exact: a
09:00-17:00 day is 8 business hours on both sides of the change.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, column, func, select, values
from sqlalchemy.sql.elements import ColumnElement

from connector.config_file import DAYS, BusinessHours
from connector.kpis.sql import least


def open_intervals(
    hours: BusinessHours, tz: ZoneInfo, first: date, last: date
) -> list[tuple[float, float]]:
    """Open intervals in epoch seconds for the local dates ``first``..``last`` inclusive."""
    holidays = set(hours.holidays)
    out: list[tuple[float, float]] = []
    day = first
    while day <= last:
        if day not in holidays:
            for start, end in hours.weekly.get(DAYS[day.weekday()], []):
                lo = datetime.combine(day, start, tzinfo=tz)
                hi = (
                    datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
                    if end == time.max
                    else datetime.combine(day, end, tzinfo=tz)
                )
                out.append((lo.timestamp(), hi.timestamp()))
        day += timedelta(days=1)
    out.sort()
    return out


class Calendar:
    """``clock(t)``: business seconds elapsed between the calendar's start and epoch ``t``."""

    def __init__(self, hours: BusinessHours, default_tz: str, first: datetime, last: datetime):
        tz = ZoneInfo(hours.timezone or default_tz)
        start = first.astimezone(tz).date() - timedelta(days=1)
        end = last.astimezone(tz).date() + timedelta(days=1)
        rows: list[tuple[float, float, float]] = []
        elapsed = 0.0
        for lo, hi in open_intervals(hours, tz, start, end):
            rows.append((lo, hi, elapsed))
            elapsed += hi - lo
        if not rows:  # a schedule with no open time at all: every duration is 0
            rows.append((0.0, 0.0, 0.0))
        self.intervals = rows
        self._table = (
            values(
                column("s", Float),
                column("e", Float),
                column("cum", Float),
                name="business_hours",
                literal_binds=True,
            )
            .data(rows)
            .cte("business_hours")
        )

    def clock(self, t: Any) -> ColumnElement[float]:
        iv = self._table
        last_open = (
            select(iv.c.cum + least(t, iv.c.e) - iv.c.s)
            .where(iv.c.s <= t)
            .order_by(iv.c.s.desc())
            .limit(1)
            .scalar_subquery()
        )
        return func.coalesce(last_open, 0.0)

    def duration(self, start: datetime, end: datetime) -> float:
        """The same clock in Python, for checks and single values."""
        return self._py_clock(end.timestamp()) - self._py_clock(start.timestamp())

    def _py_clock(self, t: float) -> float:
        best = 0.0
        for lo, hi, cum in self.intervals:
            if lo <= t:
                best = cum + min(t, hi) - lo
        return best
