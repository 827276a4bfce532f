"""The inbox: raw webhook bodies committed before anything is acknowledged or enqueued."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError

from connector.db import Database
from connector.models import EventStatus, WebhookEvent, utcnow

KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-Hub-Signature-256",
    "X-Twilio-Signature",
    "X-Request-Id",
    "I-Twilio-Idempotency-Token",
)
_TABLE = WebhookEvent.__table__
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


def store(
    db: Database,
    *,
    provider: str,
    body: bytes,
    headers: Mapping[str, str],
    signature_valid: bool,
    status: EventStatus = EventStatus.PENDING,
    error: str | None = None,
    received_at: datetime | None = None,
) -> int:
    """Insert and commit one inbox row (Core, one round trip); return its id."""
    values = {
        "provider": provider,
        "received_at": received_at or utcnow(),
        "body": body,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "content_type": headers.get("Content-Type"),
        "headers": {k: headers[k] for k in KEPT_HEADERS if k in headers},
        "signature_valid": signature_valid,
        "status": status,
        "attempts": 0,
        "item_errors": 0,
        "error": error,
    }
    for attempt in (1, 2):
        try:
            with db.autocommit.connect() as conn:
                result = conn.execute(_INSERT, values)
                return int(result.scalar_one())
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def exists(db: Database, provider: str, body: bytes) -> bool:
    digest = hashlib.sha256(body).hexdigest()
    with db.engine.connect() as conn:
        found = conn.execute(
            select(_TABLE.c.id)
            .where(_TABLE.c.body_sha256 == digest, _TABLE.c.provider == provider)
            .limit(1)
        ).first()
    return found is not None


def claim_stale(db: Database, *, older_than: datetime, limit: int = 1000) -> list[int]:
    """Pending rows nobody has touched since ``older_than``; stamp them as re-enqueued."""
    now = utcnow()
    with db.engine.begin() as conn:
        last_touch = _TABLE.c.enqueued_at
        ids = [
            row[0]
            for row in conn.execute(
                select(_TABLE.c.id)
                .where(
                    _TABLE.c.status == EventStatus.PENDING,
                    _TABLE.c.received_at < older_than,
                    (last_touch.is_(None)) | (last_touch < older_than),
                )
                .order_by(_TABLE.c.id)
                .limit(limit)
            )
        ]
        if ids:
            conn.execute(update(_TABLE).where(_TABLE.c.id.in_(ids)).values(enqueued_at=now))
    return ids
