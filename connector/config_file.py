"""The optional YAML file (``WACRM_CONFIG_FILE``): structured settings env vars can't hold.

Business hours, the messaging rate card, field mappings and survey wording live here;
scalars (windows, targets, costs) are environment variables (``connector.config``).
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BusinessHours(_Strict):
    """A weekly schedule in a time zone, minus holidays (local dates)."""

    timezone: str | None = None  # default: WACRM_TIMEZONE
    weekly: dict[str, list[tuple[time, time]]]
    holidays: list[date] = Field(default_factory=list)

    @field_validator("weekly", mode="before")
    @classmethod
    def _spans(cls, value: Any) -> dict[str, list[tuple[time, time]]]:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping of mon..sun to ['09:00-17:00', ...]")
        spans: dict[str, list[tuple[time, time]]] = {}
        for day, raw in value.items():
            key = str(day).lower()[:3]
            if key not in DAYS:
                raise ValueError(f"unknown day {day!r} (mon..sun)")
            items = [raw] if isinstance(raw, str) else list(raw or [])
            spans[key] = [_span(str(item)) for item in items]
        return spans


def _span(text: str) -> tuple[time, time]:
    match = _SPAN.match(text)
    if not match:
        raise ValueError(f"bad span {text!r}: expected HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start = time(h1, m1)
    end = time.max if (h2, m2) == (24, 0) else time(h2, m2)
    if end <= start:
        raise ValueError(f"bad span {text!r}: end must be after start")
    return start, end


class RateCard(_Strict):
    """Price per message by pricing category, per country calling code, in ``currency``."""

    currency: str | None = None
    source: str | None = None
    default: dict[str, Decimal] = Field(default_factory=dict)
    countries: dict[str, dict[str, Decimal]] = Field(default_factory=dict)

    @field_validator("countries", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).lstrip("+"): v for k, v in value.items()}
        return value


class MappingSpec(_Strict):
    """One field mapping as written in the YAML file (see ``connector.mappings``)."""

    kpi: str
    scope: str
    object: str
    field: str
    stat: str = "mean"
    transform: str = "none"
    period: str = "all"
    crm: str | None = None  # default: WACRM_CRM


class SurveyTexts(_Strict):
    csat: str = "How satisfied are you with the help you received? (1 = not at all, 5 = very)"
    nps: str = "How likely are you to recommend us to a friend? Reply 0 (not at all) to 10."


class FileConfig(_Strict):
    business_hours: BusinessHours | None = None
    rate_card: RateCard | None = None
    field_mappings: list[MappingSpec] = Field(default_factory=list)
    surveys: SurveyTexts = Field(default_factory=SurveyTexts)


def load_file_config(path: str | None) -> FileConfig:
    """Read and validate the YAML file; an unset path means every default."""
    if not path:
        return FileConfig()
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([f"WACRM_CONFIG_FILE: cannot read {path}: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"WACRM_CONFIG_FILE: {path} is not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"WACRM_CONFIG_FILE: {path} must hold a mapping at the top"])
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors()
            ]
        ) from None
