"""Small, forgiving readers for untrusted JSON / form values (shared by the parsers).

Every reader either returns a typed value or raises :class:`ItemProblem` whose message
names the field and the problem (``"from: missing"``) but never the value itself, so
it is safe to log.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from whatsapp.models import ErrorInfo


class ItemProblem(Exception):
    """One item cannot be parsed; ``str(exc)`` is ``"<field>: <problem>"`` (no values)."""


def as_obj(value: Any) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def opt_str(data: dict[str, Any], key: str) -> str | None:
    """Read ``data[key]`` as a non-empty string (integers are accepted as digits)."""
    value = data.get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def req_str(data: dict[str, Any], key: str) -> str:
    """Read a required string field.

    Raises:
        ItemProblem: ``"<key>: missing"`` or ``"<key>: expected a string"``.
    """
    value = opt_str(data, key)
    if value is None:
        problem = "missing" if data.get(key) in (None, "") else "expected a string"
        raise ItemProblem(f"{key}: {problem}")
    return value


def opt_int(value: Any) -> int | None:
    """Read an integer sent as a JSON number or a string of digits; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def opt_bool(value: Any) -> bool | None:
    """Read a JSON boolean (or ``"true"``/``"false"``); anything else is ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def unix_time(value: Any, key: str = "timestamp") -> datetime:
    """Convert Unix seconds (Meta sends strings *or* integers) to an aware UTC datetime.

    Raises:
        ItemProblem: ``"<key>: missing"`` or ``"<key>: invalid"``.
    """
    if value is None or value == "":
        raise ItemProblem(f"{key}: missing")
    seconds: int | float | None = opt_int(value)
    if seconds is None and isinstance(value, float) and math.isfinite(value):
        seconds = value
    if seconds is None:
        raise ItemProblem(f"{key}: invalid")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ItemProblem(f"{key}: invalid") from None


def error_infos(value: Any) -> tuple[ErrorInfo, ...]:
    """Convert a Meta ``errors`` array to :class:`ErrorInfo` values (non-objects skipped)."""
    if not isinstance(value, list):
        return ()
    return tuple(_error_info(item) for item in value if isinstance(item, dict))


def _error_info(item: dict[str, Any]) -> ErrorInfo:
    return ErrorInfo(
        code=opt_int(item.get("code")),
        title=opt_str(item, "title"),
        message=opt_str(item, "message"),
        details=opt_str(as_obj(item.get("error_data")), "details"),
        href=opt_str(item, "href"),
    )
