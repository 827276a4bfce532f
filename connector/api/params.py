"""Query and body parameter parsing with clear 400s."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import request

from connector.errors import ValidationFailed


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(name: str, raw: str | None) -> datetime | None:
    """ISO-8601 date or datetime; naive values are UTC."""
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{name}: expected an ISO-8601 date or datetime",
            details={"parameter": name, "value": raw},
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def int_arg(name: str, default: int, *, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(
            f"{name}: expected an integer", details={"parameter": name}
        ) from None
    if not lo <= value <= hi:
        raise ValidationFailed(
            f"{name}: must be between {lo} and {hi}", details={"parameter": name}
        )
    return value


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed("body: expected a JSON object")
    return body
