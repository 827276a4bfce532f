"""Settings: read once from the environment, validated all at once, frozen afterwards."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from connector.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """``"90"``, ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("expected seconds or a number with s/m/h/d, e.g. 24h")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _secret(alias: str, *, required: bool = False) -> Any:
    return Field(... if required else None, alias=alias, repr=False)


class Settings(BaseModel):
    """Every setting the connector reads (DESIGN §7); env var names are the aliases."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    database_url: str = Field("sqlite:///wacrm.db", alias="WACRM_DATABASE_URL")
    redis_url: str | None = Field(None, alias="WACRM_REDIS_URL")
    queue_path: str | None = Field(None, alias="WACRM_QUEUE_PATH")
    queue_workers: int = Field(2, alias="WACRM_QUEUE_WORKERS", ge=1, le=64)
    crm: str = Field("local", alias="WACRM_CRM", pattern="^(local|hubspot|salesforce)$")
    admin_token: SecretStr = _secret("WACRM_ADMIN_TOKEN", required=True)
    app_secret: SecretStr = _secret("WHATSAPP_APP_SECRET", required=True)
    verify_token: SecretStr = _secret("WHATSAPP_VERIFY_TOKEN", required=True)
    access_token: SecretStr | None = _secret("WHATSAPP_ACCESS_TOKEN")
    phone_number_id: str | None = Field(None, alias="WHATSAPP_PHONE_NUMBER_ID")
    whatsapp_base_url: str = Field("https://graph.facebook.com", alias="WACRM_WHATSAPP_BASE_URL")
    whatsapp_api_version: str = Field("v23.0", alias="WACRM_WHATSAPP_API_VERSION")
    twilio_auth_token: SecretStr | None = _secret("TWILIO_AUTH_TOKEN")
    public_url: str | None = Field(None, alias="WACRM_PUBLIC_URL")
    max_body_bytes: int = Field(3 * 1024 * 1024, alias="WACRM_MAX_BODY_BYTES", gt=0)
    auto_resolve_after: timedelta = Field(timedelta(hours=24), alias="WACRM_AUTO_RESOLVE_AFTER")
    sweep_interval: timedelta = Field(timedelta(seconds=30), alias="WACRM_SWEEP_INTERVAL")
    sweep_grace: timedelta = Field(timedelta(seconds=60), alias="WACRM_SWEEP_GRACE")
    max_attempts: int = Field(8, alias="WACRM_MAX_ATTEMPTS", ge=1)
    sync_max_delay: timedelta = Field(timedelta(seconds=2), alias="WACRM_SYNC_MAX_DELAY")
    sync_poll_interval: timedelta = Field(
        timedelta(milliseconds=250), alias="WACRM_SYNC_POLL_INTERVAL"
    )
    pull_interval: timedelta = Field(timedelta(minutes=15), alias="WACRM_PULL_INTERVAL")
    # KPIs (DESIGN §4): windows, targets, attribution, costs, schedule.
    config_file: str | None = Field(None, alias="WACRM_CONFIG_FILE")
    timezone: str = Field("UTC", alias="WACRM_TIMEZONE")
    currency: str = Field("USD", alias="WACRM_CURRENCY", pattern="^[A-Z]{3}$")
    go_live: date | None = Field(None, alias="WACRM_GO_LIVE")
    fcr_window: timedelta = Field(timedelta(days=7), alias="WACRM_FCR_WINDOW")
    reply_window: timedelta = Field(timedelta(hours=72), alias="WACRM_REPLY_WINDOW")
    attribution_window: timedelta = Field(timedelta(days=30), alias="WACRM_ATTRIBUTION_WINDOW")
    attribution_model: str = Field(
        "last_touch", alias="WACRM_ATTRIBUTION_MODEL", pattern="^(last_touch|first_touch|linear)$"
    )
    frt_target: timedelta = Field(timedelta(minutes=15), alias="WACRM_FRT_TARGET")
    resolution_target: timedelta = Field(timedelta(seconds=510), alias="WACRM_RESOLUTION_TARGET")
    setup_cost: Decimal = Field(Decimal(0), alias="WACRM_SETUP_COST", ge=0)
    monthly_cost: Decimal = Field(Decimal(0), alias="WACRM_MONTHLY_COST", ge=0)
    hourly_rate: Decimal = Field(Decimal(0), alias="WACRM_HOURLY_RATE", ge=0)
    minutes_saved: Decimal = Field(Decimal(0), alias="WACRM_MINUTES_SAVED", ge=0)
    kpi_schedule: str = Field("15m", alias="WACRM_KPI_SCHEDULE")
    kpi_full_schedule: str = Field("0 3 * * *", alias="WACRM_KPI_FULL_SCHEDULE")
    surveys: str = Field("off", alias="WACRM_SURVEYS", pattern="^(off|csat|nps|csat,nps|nps,csat)$")
    survey_window: timedelta = Field(timedelta(hours=24), alias="WACRM_SURVEY_WINDOW")
    log_level: str = Field("INFO", alias="WACRM_LOG_LEVEL")
    log_json: bool = Field(True, alias="WACRM_LOG_JSON")
    log_pii: bool = Field(False, alias="WACRM_LOG_PII")
    host: str = Field("127.0.0.1", alias="WACRM_HOST")
    port: int = Field(8000, alias="WACRM_PORT", ge=1, le=65535)

    @field_validator(
        "auto_resolve_after",
        "sweep_interval",
        "sweep_grace",
        "sync_max_delay",
        "sync_poll_interval",
        "pull_interval",
        "fcr_window",
        "reply_window",
        "attribution_window",
        "frt_target",
        "resolution_target",
        "survey_window",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (IANA name, e.g. Europe/Berlin)"
            ) from None
        return value

    @field_validator("kpi_schedule", "kpi_full_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        schedule_trigger(value)
        return value

    @field_validator("admin_token", "app_secret", "verify_token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, Any]) -> Settings:
        """Build from an environment mapping; raise ``ConfigError`` naming every bad key."""
        values = {k: v for k, v in env.items() if k in _ALIASES and v not in (None, "")}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError([_describe(err) for err in exc.errors()]) from None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def survey_kinds(self) -> tuple[str, ...]:
        return () if self.surveys == "off" else tuple(sorted(self.surveys.split(",")))


def schedule_trigger(value: str) -> IntervalTrigger | CronTrigger:
    """``"15m"`` (every 15 minutes) or a five-field cron line (``"*/10 * * * *"``), in UTC."""
    if len(value.split()) == 5:
        try:
            return CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"bad cron line {value!r}: {exc}") from None
    seconds = parse_duration(value).total_seconds()
    if seconds <= 0:
        raise ValueError("interval must be positive")
    return IntervalTrigger(seconds=seconds, timezone="UTC")


_ALIASES = {f.alias for f in Settings.model_fields.values() if f.alias}


def _describe(err: Any) -> str:
    name = err["loc"][0] if err["loc"] else "?"
    if err["type"] == "missing":
        return f"{name}: required but not set"
    return f"{name}: {err['msg']}"
