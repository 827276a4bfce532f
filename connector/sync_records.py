"""Turning claimed outbox rows into the adapter's value types (read-only on our tables)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import outbox
from connector.models import (
    Campaign,
    Contact,
    Conversation,
    CrmLink,
    Message,
    OutboxOp,
    OutboxStatus,
)
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


def _load(session: Session, model: Any, ids: list[int | None]) -> dict[int, Any]:
    """Rows by id in one query (the identity map then serves later lookups)."""
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return {}
    return {r.id: r for r in session.scalars(select(model).where(model.id.in_(wanted)))}


def _links(session: Session, crm: str, kind: str, local_ids: list[int]) -> dict[int, str]:
    if not local_ids:
        return {}
    return dict(
        session.execute(
            select(CrmLink.local_id, CrmLink.crm_id).where(
                CrmLink.crm == crm, CrmLink.kind == kind, CrmLink.local_id.in_(set(local_ids))
            )
        ).all()
    )


def _contacts(session: Session, crm: str, rows: list[OutboxOp]) -> Batch:
    batch, records = Batch(), []
    contacts = _load(session, Contact, [r.entity_id for r in rows])
    links = _links(session, crm, "contact", list(contacts))
    for row in rows:
        contact = contacts.get(row.entity_id or -1)
        if contact is None:
            batch.dead[row.id] = "the contact no longer exists (merged into another)"
            continue
        records.append(
            ContactRecord(
                key=row.record_key,
                wa_id=contact.wa_id,
                user_id=contact.user_id,
                name=contact.name,
                crm_id=links.get(contact.id),
            )
        )
        batch.rows_by_key.setdefault(row.record_key, []).append(row.id)
    if records:
        batch.calls.append((None, records))
    return batch


def _messages(session: Session, crm: str, rows: list[OutboxOp]) -> Batch:
    batch, records = Batch(), []
    messages = _load(session, Message, [r.entity_id for r in rows])
    links = _links(session, crm, "contact", [m.contact_id for m in messages.values()])
    conversations = _load(session, Conversation, [m.conversation_id for m in messages.values()])
    campaigns = _load(
        session,
        Campaign,
        [m.campaign_id for m in messages.values()]
        + [c.campaign_id for c in conversations.values()],
    )
    for row in rows:
        message = messages.get(row.entity_id or -1)
        if message is None:
            batch.dead[row.id] = "the message no longer exists"
            continue
        contact_crm_id = links.get(message.contact_id)
        if contact_crm_id is None:
            _contact_not_ready(session, crm, message, row, batch)
            continue
        conv = conversations.get(message.conversation_id or -1)
        campaign = campaigns.get(message.campaign_id or (conv.campaign_id if conv else -1) or -1)
        records.append(_message_record(message, contact_crm_id, conv, campaign))
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


def _message_record(
    message: Message, contact_crm_id: str, conv: Conversation | None, campaign: Campaign | None
) -> MessageRecord:
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
        campaign_key=campaign.key if campaign is not None else None,
    )


def _fields(session: Session, crm: str, rows: list[OutboxOp]) -> Batch:
    """Several pending writes to one record fold into one, the newest values winning."""
    batch = Batch()
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        payload = row.payload or {}
        target = (str(payload.get("object_type")), str(payload.get("crm_id")))
        merged.setdefault(target, {}).update(payload.get("values") or {})
        # keyed object:id, as the syncer qualifies the adapter's answers (ids may repeat
        # across object types)
        batch.rows_by_key.setdefault(f"{target[0]}:{target[1]}", []).append(row.id)
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
