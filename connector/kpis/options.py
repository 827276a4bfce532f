"""What the KPI engine needs to know besides the data: windows, targets, costs, calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from connector.config import Settings
from connector.config_file import BusinessHours, FileConfig

SCOPES = ("account", "agent", "campaign", "deal", "contact", "phone_number")
MODELS = ("last_touch", "first_touch", "linear")


@dataclass(frozen=True, slots=True)
class KpiOptions:
    fcr_window: timedelta = timedelta(days=7)
    reply_window: timedelta = timedelta(hours=72)
    attribution_window: timedelta = timedelta(days=30)
    attribution_model: str = "last_touch"
    frt_target: timedelta = timedelta(minutes=15)
    resolution_target: timedelta = timedelta(seconds=510)
    setup_cost: Decimal = Decimal(0)
    monthly_cost: Decimal = Decimal(0)
    hourly_rate: Decimal = Decimal(0)
    minutes_saved: Decimal = Decimal(0)
    currency: str = "USD"
    timezone: str = "UTC"
    go_live: date | None = None
    business_hours: BusinessHours | None = None

    @classmethod
    def from_settings(cls, settings: Settings, file_config: FileConfig) -> KpiOptions:
        return cls(
            fcr_window=settings.fcr_window,
            reply_window=settings.reply_window,
            attribution_window=settings.attribution_window,
            attribution_model=settings.attribution_model,
            frt_target=settings.frt_target,
            resolution_target=settings.resolution_target,
            setup_cost=settings.setup_cost,
            monthly_cost=settings.monthly_cost,
            hourly_rate=settings.hourly_rate,
            minutes_saved=settings.minutes_saved,
            currency=settings.currency,
            timezone=settings.timezone,
            go_live=settings.go_live,
            business_hours=file_config.business_hours,
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Period:
    """Half-open ``[start, end)`` in UTC; ``None`` leaves a side open."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value is not None and value.tzinfo is None:
                raise ValueError("Period bounds must be timezone-aware")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("period end must be after its start")

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        if self.start is None or self.end is None:
            raise ValueError("only a bounded period has a previous period")
        return Period(self.start - (self.end - self.start), self.start)

    def bounded(self, first: datetime, now: datetime) -> Period:
        """Open sides closed with the first data time and now (for months, retention)."""
        return Period(self.start or first, self.end or now)

    @property
    def label(self) -> str:
        return f"{_iso(self.start) or '-inf'}/{_iso(self.end) or 'now'}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
