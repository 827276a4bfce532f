"""Conversations: list with filters, detail with messages, explicit resolve."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.api import bp
from connector.api.params import int_arg, iso, parse_time
from connector.conversations import resolve
from connector.db import get_db
from connector.errors import NotFound, ValidationFailed
from connector.models import Contact, Conversation, ConversationStatus, Message, ResolvedBy, utcnow


def conversation_summary(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id,
        "status": conv.status,
        "initiated_by": conv.initiated_by,
        "opened_at": iso(conv.opened_at),
        "last_message_at": iso(conv.last_message_at),
        "resolved_at": iso(conv.resolved_at),
        "resolved_by": conv.resolved_by,
        "business_number_id": conv.business_number_id,
        "contact": {
            "id": conv.contact.id,
            "wa_id": conv.contact.wa_id,
            "user_id": conv.contact.user_id,
            "name": conv.contact.name,
        },
        "campaign_id": conv.campaign.key if conv.campaign else None,
        "deal_id": conv.deal.key if conv.deal else None,
        "attribution": {
            "source": conv.attribution_source,
            "deal_source": conv.deal_source,
            "referral": conv.referral,
        },
        "pricing": {
            "conversation_id": conv.pricing_conversation_id,
            "category": conv.pricing_category,
        },
    }


def message_view(msg: Message) -> dict[str, Any]:
    return {
        "id": msg.id,
        "wamid": msg.wamid,
        "direction": msg.direction,
        "type": msg.type,
        "text": msg.text,
        "timestamp": iso(msg.timestamp),
        "sender_kind": msg.sender_kind,
        "status": msg.status,
        "sent_at": iso(msg.sent_at),
        "delivered_at": iso(msg.delivered_at),
        "read_at": iso(msg.read_at),
        "failed_at": iso(msg.failed_at),
        "error_code": msg.error_code,
        "error_title": msg.error_title,
        "pricing_category": msg.pricing_category,
        "billable": msg.billable,
        "reply_to_wamid": msg.reply_to_wamid,
        "media": msg.media,
        "referral": msg.referral,
    }


def conversation_detail(session: Session, conv: Conversation) -> dict[str, Any]:
    msgs = session.scalars(
        select(Message)
        .where(Message.conversation_id == conv.id)
        .order_by(Message.timestamp, Message.id)
    )
    return {**conversation_summary(conv), "messages": [message_view(m) for m in msgs]}


@bp.get("/conversations")
def list_conversations() -> dict[str, Any]:
    """Filters: wa_id, status, from, to (on opened_at, half-open); page, per_page."""
    stmt = select(Conversation)
    if wa_id := request.args.get("wa_id"):
        stmt = stmt.join(Contact).where(Contact.wa_id == wa_id)
    if status := request.args.get("status"):
        if status not in set(ConversationStatus):
            raise ValidationFailed("status: expected open or resolved")
        stmt = stmt.where(Conversation.status == status)
    if start := parse_time("from", request.args.get("from")):
        stmt = stmt.where(Conversation.opened_at >= start)
    if end := parse_time("to", request.args.get("to")):
        stmt = stmt.where(Conversation.opened_at < end)
    page, per_page = int_arg("page", 1, lo=1, hi=10**6), int_arg("per_page", 50, lo=1, hi=500)
    with get_db(current_app).session() as session:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.order_by(Conversation.opened_at.desc(), Conversation.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        items = [conversation_summary(c) for c in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/conversations/<int:conv_id>")
def get_conversation(conv_id: int) -> dict[str, Any]:
    with get_db(current_app).session() as session:
        return conversation_detail(session, _load(session, conv_id))


@bp.post("/conversations/<int:conv_id>/resolve")
def resolve_conversation(conv_id: int) -> dict[str, Any]:
    """Resolve now; a new inbound message afterwards opens a new conversation."""
    with get_db(current_app).session() as session:
        conv = _load(session, conv_id)
        resolve(conv, how=ResolvedBy.API, at=utcnow())
        return conversation_summary(conv)


def _load(session: Session, conv_id: int) -> Conversation:
    conv = session.get(Conversation, conv_id)
    if conv is None:
        raise NotFound(f"conversation {conv_id} not found")
    return conv
