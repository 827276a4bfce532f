"""The inbox: raw webhook bodies committed before anything is acknowledged or enqueued."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

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
    """Insert and commit one inbox row in one round trip; return its id."""
    kept = {k: headers[k] for k in KEPT_HEADERS if k in headers}
    values = {
        "provider": provider,
        "received_at": (received_at or utcnow()).astimezone(UTC).replace(tzinfo=None),
        "body": body,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "content_type": headers.get("Content-Type"),
        "headers": json.dumps(kept),
        "signature_valid": signature_valid,
        "status": str(status),
        "attempts": 0,
        "item_errors": 0,
        "error": error,
    }
    return _insert_sql(db).run(db, values)


class _InsertSql:
    """The inbox INSERT compiled once per dialect, bypassing pool, ORM and statement cache.

    The ack waits on this statement alone (the minimal durable receiver's cost is the bar),
    so it runs on a per-thread connection; a dead connection is dropped and the INSERT
    retried once on a fresh one.
    """

    def __init__(self, engine: Engine) -> None:
        compiled = _INSERT.compile(dialect=engine.dialect, column_keys=list(_COLUMNS))
        self.sql = str(compiled)
        self.order = compiled.positiontup if compiled.positional else None

    def run(self, db: Database, values: dict[str, Any]) -> int:
        params = tuple(values[k] for k in self.order) if self.order else values
        dialect = db.autocommit.dialect
        for attempt in (1, 2):
            conn = db.hot.get()
            try:
                cursor = conn.cursor()
                cursor.execute(self.sql, params)
                row = cursor.fetchone()
                cursor.close()
                return int(row[0])
            except dialect.loaded_dbapi.Error as exc:
                gone = dialect.is_disconnect(exc, conn, None)
                db.hot.drop()
                if attempt == 2 or not gone:
                    raise
        raise AssertionError("unreachable")


_COLUMNS = (
    "provider",
    "received_at",
    "body",
    "body_sha256",
    "content_type",
    "headers",
    "signature_valid",
    "status",
    "attempts",
    "item_errors",
    "error",
)
_SQL: dict[str, _InsertSql] = {}


def _insert_sql(db: Database) -> _InsertSql:
    name = db.autocommit.dialect.name
    if name not in _SQL:
        _SQL[name] = _InsertSql(db.autocommit)
    return _SQL[name]


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
