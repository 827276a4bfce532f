"""The outbox: CRM operations written in the same transaction as the data they come from.

Each row is idempotent by (crm, operation, record_key); its key derives from WhatsApp ids
(wa_id, wamid), which the adapters also send to the CRM, so a retry after an unknown outcome
creates nothing twice. State: pending → in_flight → done | dead (replayable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connector.db import Database, insert_ignore
from connector.models import Contact, Message, OutboxOp, OutboxStatus, utcnow

UPSERT_CONTACT, LOG_MESSAGE, WRITE_FIELDS = "upsert_contact", "log_message", "write_fields"
OPERATIONS = (UPSERT_CONTACT, LOG_MESSAGE, WRITE_FIELDS)  # flush order: contacts first


def contact_key(contact: Contact) -> str:
    return contact.wa_id or f"bsuid:{contact.user_id}"


def _add(
    session: Session,
    crm: str,
    operation: str,
    key: str,
    entity_id: int | None,
    payload: dict[str, Any] | None = None,
) -> None:
    now = utcnow()
    insert_ignore(
        session,
        OutboxOp,
        {
            "crm": crm,
            "operation": operation,
            "record_key": key,
            "entity_id": entity_id,
            "payload": payload,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
        ["crm", "operation", "record_key"],
    )


def enqueue_message(session: Session, crm: str, message: Message) -> None:
    """Log ``message`` on the CRM (and create its contact there first if needed)."""
    contact = session.get(Contact, message.contact_id)
    if contact is None:
        return
    # Once per contact: the key's unique constraint makes later calls no-ops (done or not).
    _add(session, crm, UPSERT_CONTACT, contact_key(contact), contact.id)
    _add(session, crm, LOG_MESSAGE, message.wamid, message.id)


def enqueue_fields(
    session: Session,
    crm: str,
    object_type: str,
    crm_id: str,
    values: dict[str, Any],
    *,
    version: str,
) -> None:
    """Write KPI values onto a CRM record; ``version`` makes each distinct write its own row."""
    _add(
        session,
        crm,
        WRITE_FIELDS,
        f"{object_type}:{crm_id}:{version}",
        None,
        {"object_type": object_type, "crm_id": crm_id, "values": values},
    )


@dataclass(frozen=True, slots=True)
class OutboxStatusReport:
    counts: dict[str, dict[str, int]]
    oldest_pending_seconds: float | None
    dead: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "oldest_pending_seconds": self.oldest_pending_seconds,
            "dead": self.dead,
        }


def status(
    db: Database, crm: str | None = None, *, now: datetime | None = None, dead_limit: int = 50
) -> OutboxStatusReport:
    """Counts by operation and state, the oldest pending age, the latest dead letters."""
    now = now or utcnow()
    where = [OutboxOp.crm == crm] if crm else []
    with db.session() as session:
        counts: dict[str, dict[str, int]] = {}
        for op, state, n in session.execute(
            select(OutboxOp.operation, OutboxOp.status, func.count())
            .where(*where)
            .group_by(OutboxOp.operation, OutboxOp.status)
        ):
            counts.setdefault(op, {})[state] = n
        oldest = session.scalar(
            select(func.min(OutboxOp.created_at)).where(
                *where, OutboxOp.status.in_([OutboxStatus.PENDING, OutboxStatus.IN_FLIGHT])
            )
        )
        dead = [
            {
                "id": r.id,
                "crm": r.crm,
                "operation": r.operation,
                "key": r.record_key,
                "attempts": r.attempts,
                "error": r.last_error,
            }
            for r in session.scalars(
                select(OutboxOp)
                .where(*where, OutboxOp.status == OutboxStatus.DEAD)
                .order_by(OutboxOp.id.desc())
                .limit(dead_limit)
            )
        ]
    age = (now - oldest).total_seconds() if oldest else None
    return OutboxStatusReport(counts, age, dead)


def replay(db: Database, *, ids: list[int] | None = None, all_dead: bool = False) -> int:
    """Send dead letters again (after fixing the CRM side); returns how many were revived."""
    if not ids and not all_dead:
        return 0
    stmt = update(OutboxOp).where(OutboxOp.status == OutboxStatus.DEAD)
    if ids:
        stmt = stmt.where(OutboxOp.id.in_(ids))
    with db.session() as session:
        result = session.execute(
            stmt.values(
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
                last_error=None,
            ).execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release_stale(session: Session, *, now: datetime, lease: timedelta) -> int:
    """Rows claimed by a worker that died mid-call go back to pending (keys make it safe)."""
    result = session.execute(
        update(OutboxOp)
        .where(OutboxOp.status == OutboxStatus.IN_FLIGHT, OutboxOp.claimed_at < now - lease)
        .values(status=OutboxStatus.PENDING, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
