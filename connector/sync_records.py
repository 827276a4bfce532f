"""Turning claimed outbox rows into the adapter's value types (read-only on our tables)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import outbox
from connector.models import Campaign, Contact, Conversation, Message, OutboxOp, OutboxStatus
from crm_adapters.base import ContactRecord, FieldWrite, MessageRecord


@dataclass(slots=True)
class Batch:
    """What to send: calls (object type, records), and which rows each key settles."""

    calls: list[tuple[str | None, list[Any]]] = field(default_factory=list)
    rows_by_key: dict[str, list[int]] = field(default_factory=dict)
    waiting: list[int] = field(default_factory=list)  # not sendable yet (contact pending)
    dead: dict[int, str] = field(default_factory=dict)  # can never be sent, with why

    @property
    def sent_rows(self) -> list[int]:
        return [i for ids in self.rows_by_key.values() for i in ids]


def build_records(session: Session, crm: str, operation: str, rows: list[OutboxOp]) -> Batch:
    return _BUILDERS[operation](session, crm, rows)


def _contacts(session: Session, crm: str, rows: list[OutboxOp]) -> Batch:
    batch, records = Batch(), []
    for row in rows:
        contact = session.get(Contact, row.entity_id) if row.entity_id else None
        if contact is None:
            batch.dead[row.id] = "the contact no longer exists (merged into another)"
            continue
        records.append(
            ContactRecord(
                key=row.record_key,
                wa_id=contact.wa_id,
                user_id=contact.user_id,
                name=contact.name,
                crm_id=outbox.crm_id_of(session, crm, "contact", contact.id),
            )
        )
        batch.rows_by_key.setdefault(row.record_key, []).append(row.id)
    if records:
        batch.calls.append((None, records))
    return batch


def _messages(session: Session, crm: str, rows: list[OutboxOp]) -> Batch:
    batch, records = Batch(), []
    for row in rows:
        message = session.get(Message, row.entity_id) if row.entity_id else None
        if message is None:
            batch.dead[row.id] = "the message no longer exists"
            continue
        contact_crm_id = outbox.crm_id_of(session, crm, "contact", message.contact_id)
        if contact_crm_id is None:
            _contact_not_ready(session, crm, message, row, batch)
            continue
        records.append(_message_record(session, message, contact_crm_id))
        batch.rows_by_key.setdefault(row.record_key, []).append(row.id)
    if records:
        batch.calls.append((None, records))
    return batch


def _contact_not_ready(
    session: Session, crm: str, message: Message, row: OutboxOp, batch: Batch
) -> None:
    contact = session.get(Contact, message.contact_id)
    op = session.scalars(
        select(OutboxOp).where(
            OutboxOp.crm == crm,
            OutboxOp.operation == outbox.UPSERT_CONTACT,
            OutboxOp.entity_id == message.contact_id,
        )
    ).first()
    if op is not None and op.status == OutboxStatus.DEAD:
        batch.dead[row.id] = f"its contact was refused by the CRM: {op.last_error}"
        return
    if op is None and contact is not None:  # e.g. the contact was merged: sync the survivor
        outbox.enqueue_message(session, crm, message)
    batch.waiting.append(row.id)


def _message_record(session: Session, message: Message, contact_crm_id: str) -> MessageRecord:
    conv = session.get(Conversation, message.conversation_id) if message.conversation_id else None
    campaign = message.campaign_id or (conv.campaign_id if conv else None)
    campaign_key = None
    if campaign is not None:
        found = session.get(Campaign, campaign)
        campaign_key = found.key if found else None
    return MessageRecord(
        key=message.wamid,
        contact_crm_id=contact_crm_id,
        direction=message.direction,
        type=message.type,
        text=message.text,
        timestamp=message.timestamp,
        sender_kind=message.sender_kind,
        conversation_id=message.conversation_id,
        deal_crm_id=conv.deal.key if conv is not None and conv.deal is not None else None,
        campaign_key=campaign_key,
    )


def _fields(session: Session, crm: str, rows: list[OutboxOp]) -> Batch:
    """Several pending writes to one record fold into one, the newest values winning."""
    batch = Batch()
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        payload = row.payload or {}
        target = (str(payload.get("object_type")), str(payload.get("crm_id")))
        merged.setdefault(target, {}).update(payload.get("values") or {})
        batch.rows_by_key.setdefault(target[1], []).append(row.id)
    by_type: dict[str, list[FieldWrite]] = {}
    for (object_type, crm_id), values in merged.items():
        by_type.setdefault(object_type, []).append(FieldWrite(crm_id=crm_id, values=values))
    batch.calls = [(object_type, writes) for object_type, writes in by_type.items()]
    return batch


_BUILDERS: dict[str, Callable[[Session, str, list[OutboxOp]], Batch]] = {
    outbox.UPSERT_CONTACT: _contacts,
    outbox.LOG_MESSAGE: _messages,
    outbox.WRITE_FIELDS: _fields,
}
