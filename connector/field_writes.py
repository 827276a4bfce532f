"""What each mapped CRM field holds (``crm_field_writes``) and what is on its way there.

A value is compared as canonical JSON text, the form stored in ``crm_field_writes.value``.
The write-back job asks, per (object type, record, field): the newest ``write_fields``
operation not done yet (pending, in flight, or refused), else the last value the CRM
accepted. The sync loop records accepted values when an operation settles as done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from connector import outbox
from connector.models import CrmFieldWrite, OutboxOp, OutboxStatus
from connector.upserts import upsert

FieldKey = tuple[str, str, str]  # object type, CRM record id, field
CHUNK = 300  # (object type, id) pairs per lookup: 600 variables


def as_text(value: Any) -> str | None:
    """Canonical text of a value (None stays None: an empty field)."""
    return None if value is None else json.dumps(value, sort_keys=True)


def accepted(
    session: Session, crm: str, records: Iterable[tuple[str, str]]
) -> dict[FieldKey, str | None]:
    """The last value the CRM accepted for every field of these (object type, id) records."""
    pairs = sorted(set(records))
    found: dict[FieldKey, str | None] = {}
    for start in range(0, len(pairs), CHUNK):
        rows = session.execute(
            select(
                CrmFieldWrite.object_type,
                CrmFieldWrite.crm_id,
                CrmFieldWrite.field,
                CrmFieldWrite.value,
            ).where(
                CrmFieldWrite.crm == crm,
                tuple_(CrmFieldWrite.object_type, CrmFieldWrite.crm_id).in_(
                    pairs[start : start + CHUNK]
                ),
            )
        )
        found.update(((ot, cid, f), v) for ot, cid, f, v in rows)
    return found


def outstanding(session: Session, crm: str) -> dict[FieldKey, tuple[str, str | None]]:
    """Per field: (status, value) of the newest write not done yet (pending or refused)."""
    rows = session.execute(
        select(OutboxOp.status, OutboxOp.payload)
        .where(
            OutboxOp.crm == crm,
            OutboxOp.operation == outbox.WRITE_FIELDS,
            OutboxOp.status.in_([OutboxStatus.PENDING, OutboxStatus.IN_FLIGHT, OutboxStatus.DEAD]),
        )
        .order_by(OutboxOp.id)
    )
    found: dict[FieldKey, tuple[str, str | None]] = {}
    for status, payload in rows:
        payload = payload or {}
        target = (str(payload.get("object_type")), str(payload.get("crm_id")))
        for name, value in (payload.get("values") or {}).items():
            found[(*target, name)] = (status, as_text(value))
    return found


def record_accepted(session: Session, crm: str, rows: Iterable[OutboxOp], now: datetime) -> None:
    """Remember the values of ``write_fields`` operations the CRM accepted (oldest first,
    so when writes to one record were folded into one call the newest value wins)."""
    latest: dict[FieldKey, str | None] = {}
    for row in sorted(rows, key=lambda r: r.id):
        payload = row.payload or {}
        target = (str(payload.get("object_type")), str(payload.get("crm_id")))
        for name, value in (payload.get("values") or {}).items():
            latest[(*target, name)] = as_text(value)
    if not latest:
        return
    params = [
        {
            "crm": crm,
            "object_type": ot,
            "crm_id": cid,
            "field": name,
            "value": value,
            "written_at": now,
        }
        for (ot, cid, name), value in latest.items()
    ]
    keys = ["crm", "object_type", "crm_id", "field"]
    stmt = upsert(session.get_bind().dialect.name, CrmFieldWrite, keys, ["value", "written_at"])
    session.execute(stmt, params)
