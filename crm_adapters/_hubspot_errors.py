"""Classify HubSpot failures into ``crm_adapters.errors`` types (the one mapping place).

Every generated ``hubspot.*`` module defines its own, unrelated ``ApiException``; the only
thing they share is the ``.status`` / ``.headers`` / ``.body`` trio, so classification
duck-types on those. ``HttpError`` gives ``client.api_request`` responses (plain
``requests.Response`` objects that never raise) the same shape.

Messages carry HubSpot's own words, the status, category and correlationId: never the
token, never a URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3

from crm_adapters.errors import AuthExpired, CrmError, Permanent, RateLimited, Transient

# HubSpot's usage guidelines: a 10 s rolling burst window; "secondly" = search's 5 req/s.
TEN_SECONDLY = 10.0
SECONDLY = 1.0
LOCKED_WAIT = 2.0
_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, requests.RequestException, OSError)
_DUPLICATE_HINTS = re.compile(r"already (exists|has)|duplicate|unique", re.IGNORECASE)
_DUPLICATE_CATEGORIES = frozenset({"CONFLICT", "OBJECT_ALREADY_EXISTS"})


class HttpError(Exception):
    """A non-2xx answer to ``client.api_request``, shaped like the SDK's ``ApiException``."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes | str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.body = body


def is_vendor_error(exc: BaseException) -> bool:
    """True for what the SDK, urllib3 or requests raise about the call (not our own bugs)."""
    return isinstance(getattr(exc, "status", None), int) or isinstance(exc, _NETWORK_ERRORS)


def translate(exc: BaseException) -> CrmError:
    """Map one vendor exception to the error type that names the outbox's next action.

    Args:
        exc: an SDK ``ApiException`` (any module), an ``HttpError``, or a network error.

    Returns:
        ``RateLimited`` (429), ``AuthExpired`` (401), ``Transient`` (423, 477, 5xx,
        network) or ``Permanent`` (any other 4xx), carrying HubSpot's message.
    """
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        reason = getattr(exc, "reason", None)
        detail = f" ({type(reason).__name__})" if isinstance(reason, BaseException) else ""
        return Transient(f"HubSpot unreachable: {type(exc).__name__}{detail}")
    body = error_body(getattr(exc, "body", None))
    headers = getattr(exc, "headers", None) or {}
    handler = _BY_STATUS.get(status)
    if handler is not None:
        return handler(status, body, headers)
    if status >= 500:
        return Transient(describe(status, body))
    return Permanent(describe(status, body))


def error_body(raw: Any) -> dict[str, Any]:
    """HubSpot's JSON error body as a dict (``{}`` when absent or not JSON)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {"message": raw[:200]}
    return parsed if isinstance(parsed, dict) else {}


def describe(status: int, body: Mapping[str, Any]) -> str:
    """``HubSpot 400 VALIDATION_ERROR: <HubSpot's message> (correlationId …)``."""
    category = body.get("category") or body.get("errorType") or ""
    text = f"HubSpot {status} {category}".rstrip() + f": {body.get('message') or 'no message'}"
    if body.get("correlationId"):
        text += f" (correlationId {body['correlationId']})"
    return text


def looks_duplicate(message: str, category: str | None = None) -> bool:
    """True when HubSpot refused a value because a unique property already holds it.

    The exact wording for unique custom properties is not documented, so this is
    deliberately loose: a false positive costs one read-back call, never a duplicate.
    """
    return category in _DUPLICATE_CATEGORIES or bool(_DUPLICATE_HINTS.search(message))


def retry_after(body: Mapping[str, Any], headers: Any, now: datetime | None = None) -> float:
    """Seconds to wait after a 429: ``Retry-After``, else HubSpot's ``policyName``.

    ``DAILY`` resets at midnight in the *account's* time zone, which the API does not
    tell us; we wait until the next midnight UTC (documented approximation).
    """
    now = now or datetime.now(UTC)
    header = _header(headers, "Retry-After")
    if header:
        return _parse_retry_after(header, now)
    policy = str(body.get("policyName") or "").upper()
    if policy == "DAILY":
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - now).total_seconds()
    if policy == "TEN_SECONDLY_ROLLING":
        return TEN_SECONDLY
    if "secondly" in str(body.get("message", "")).lower() or body.get("category") == "RATE_LIMITS":
        return SECONDLY
    return TEN_SECONDLY


def _parse_retry_after(value: str, now: datetime) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return TEN_SECONDLY


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None and isinstance(headers, Mapping):
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return str(value) if value is not None else None


def _rate_limited(status: int, body: dict[str, Any], headers: Any) -> CrmError:
    return RateLimited(describe(status, body), retry_after=retry_after(body, headers))


def _auth_expired(status: int, body: dict[str, Any], headers: Any) -> CrmError:
    return AuthExpired(describe(status, body))


def _locked(status: int, body: dict[str, Any], headers: Any) -> CrmError:
    header = _header(headers, "Retry-After")
    wait = max(LOCKED_WAIT, retry_after(body, headers)) if header else LOCKED_WAIT
    return Transient(f"{describe(status, body)} [retry after >= {wait:g} s]", retry_after=wait)


_BY_STATUS: dict[int, Callable[[int, dict[str, Any], Any], CrmError]] = {
    401: _auth_expired,
    423: _locked,  # record locked: wait >= 2 s
    429: _rate_limited,
    477: _locked,  # migration in progress: honour Retry-After
}
