"""Query and body parameter parsing with clear 400s."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Self

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


class FieldErrors(dict[str, str]):
    """Field → problem; raised together so a caller fixes every field at once."""

    @classmethod
    def of(cls, body: dict[str, Any], allowed: Collection[str]) -> Self:
        """Start with the body's fields outside ``allowed``."""
        return cls({k: "unknown field" for k in sorted(set(body) - set(allowed))})

    def check(self) -> None:
        if self:
            message = "; ".join(f"{k}: {v}" for k, v in self.items())
            raise ValidationFailed(message, details={"fields": dict(self)})


def text_value(body: dict[str, Any], key: str, errors: FieldErrors, *, limit: int) -> str | None:
    """A non-empty string (or int) field, stripped; None when absent or wrong (noted)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        errors[key] = "expected a non-empty string"
        return None
    if len(str(value)) > limit:
        errors[key] = f"at most {limit} characters"
        return None
    return str(value).strip()
