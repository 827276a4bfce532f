"""Typed CRM errors, grouped by what the outbox does next (DESIGN §5)."""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """Base of every error an adapter raises."""


class RateLimited(CrmError):
    """Slow down: retry after ``retry_after`` seconds (429, Salesforce REQUEST_LIMIT_EXCEEDED)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthExpired(CrmError):
    """The token expired or was revoked: refresh once, then retry."""


class Transient(CrmError):
    """5xx, timeouts, connection resets: back off exponentially with jitter and retry.

    ``retry_after`` is set when the CRM says how long (HubSpot 423 locked, 477 migrating).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Permanent(CrmError):
    """The CRM refused this request for good: dead-letter it with the CRM's own message."""

    def __init__(self, message: str, *, record: Any = None) -> None:
        super().__init__(message)
        self.record = record
