"""Normalising: one inbox row → contacts, conversations, messages and status events.

Every step is idempotent: a webhook delivered once or five times, in any order with
others, leaves the same rows. Messages are unique by wamid, statuses by (wamid, status).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connector import attribution, costs, metrics, outbox, surveys
from connector.config import Settings
from connector.config_file import FileConfig
from connector.contacts import change_number, resolve_contact
from connector.conversations import place, resegment
from connector.db import Database, insert_ignore
from connector.models import (
    Contact,
    Conversation,
    EventStatus,
    Message,
    MessageStatusEvent,
    SenderKind,
    WebhookEvent,
    utcnow,
)
from connector.statuses import apply_statuses
from whatsapp import parse_twilio, parse_webhook
from whatsapp.errors import MalformedPayload
from whatsapp.models import (
    InboundMessage,
    ItemError,
    MessageType,
    ParseResult,
    PreferenceUpdate,
    StatusUpdate,
)

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Rules:
    """What normalising needs beyond segmentation: the attribution window and the prices."""

    attribution_window: timedelta = timedelta(days=30)
    rate_card: costs.Prices = field(default_factory=costs.Prices)

    @classmethod
    def from_settings(cls, settings: Settings, file_config: FileConfig) -> Rules:
        return cls(
            attribution_window=settings.attribution_window,
            rate_card=costs.Prices.from_config(file_config.rate_card, settings.currency),
        )


@dataclass(frozen=True, slots=True)
class Ctx:
    window: timedelta
    now: datetime
    event_id: int | None = None
    crm: str | None = None  # enqueue CRM operations for this CRM (None: don't)
    rules: Rules = field(default_factory=Rules)


def parse_event(provider: str, body: bytes, received_at: datetime) -> ParseResult:
    """Parse a stored raw body with the provider's parser."""
    if provider == "twilio":
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return parse_twilio(form, received_at)
    return parse_webhook(body)


def process_event(
    db: Database,
    event_id: int,
    *,
    window: timedelta,
    max_attempts: int,
    crm: str | None = None,
    rules: Rules | None = None,
) -> str:
    """Normalise one pending inbox row; on failure count the attempt and leave it pending."""
    log = logger.bind(event_id=event_id)
    try:
        with db.session() as session:
            ctx = Ctx(
                window=window, now=utcnow(), event_id=event_id, crm=crm, rules=rules or Rules()
            )
            return _process(session, event_id, ctx)
    except SQLAlchemyError as exc:
        log.warning("event_processing_failed", error_type=type(exc).__name__)
        with db.session() as session:
            event = session.get(WebhookEvent, event_id)
            if event is None:
                return "missing"
            event.attempts += 1
            event.error = f"{type(exc).__name__}: {str(exc)[:500]}"
            if event.attempts >= max_attempts:
                event.status = EventStatus.FAILED
                metrics.EVENTS.labels(event.provider, "failed").inc()
            return event.status


def process_batch(
    db: Database,
    event_ids: list[int],
    *,
    window: timedelta,
    max_attempts: int,
    crm: str | None = None,
    rules: Rules | None = None,
) -> dict[int, str]:
    """Normalise several inbox rows in one transaction (a savepoint each): one commit, not N.

    If the transaction itself fails (deadlock, lost connection), each row is retried on its
    own, so one bad row cannot hold back the others.
    """
    if len(event_ids) == 1:
        only = event_ids[0]
        return {
            only: process_event(
                db, only, window=window, max_attempts=max_attempts, crm=crm, rules=rules
            )
        }
    results: dict[int, str] = {}
    try:
        with db.session() as session:
            for event_id in event_ids:
                ctx = Ctx(
                    window=window, now=utcnow(), event_id=event_id, crm=crm, rules=rules or Rules()
                )
                with session.begin_nested():
                    results[event_id] = _process(session, event_id, ctx)
        return results
    except SQLAlchemyError as exc:
        logger.warning(
            "batch_failed_retrying_singly", count=len(event_ids), error_type=type(exc).__name__
        )
        return {
            i: process_event(db, i, window=window, max_attempts=max_attempts, crm=crm, rules=rules)
            for i in event_ids
        }


def _process(session: Session, event_id: int, ctx: Ctx) -> str:
    event = session.get(WebhookEvent, event_id, with_for_update=True)
    if event is None or event.status != EventStatus.PENDING:
        return event.status if event else "missing"
    try:
        result = parse_event(event.provider, event.body, event.received_at)
    except MalformedPayload as exc:
        return _finish(event, EventStatus.REJECTED, str(exc), 0)
    errors = list(result.errors) + normalise(session, result, ctx)
    status = EventStatus.IGNORED if result.is_empty and not errors else EventStatus.PROCESSED
    detail = "; ".join(f"{e.path}: {e.message}" for e in errors)[:2000] or None
    for err in errors:
        logger.warning("item_rejected", event_id=event_id, path=err.path, reason=err.message)
    return _finish(event, status, detail, len(errors))


def _finish(event: WebhookEvent, status: EventStatus, error: str | None, item_errors: int) -> str:
    event.status = status
    event.error = error
    event.item_errors = item_errors
    event.attempts += 1
    event.processed_at = utcnow()
    metrics.EVENTS.labels(event.provider, status.value).inc()
    if item_errors:
        metrics.ITEM_ERRORS.labels(event.provider).inc(item_errors)
    return status


def normalise(session: Session, result: ParseResult, ctx: Ctx) -> list[ItemError]:
    """Store every item; an item that fails on its own data is reported, not fatal."""
    errors: list[ItemError] = []
    steps: list[tuple[str, Any, Callable[[Session, Any, Ctx], None]]] = [
        *((f"message {m.wamid}", m, record_inbound) for m in result.messages),
        *((f"status {s.wamid}/{s.raw_status}", s, record_status) for s in result.statuses),
        *((f"preference {p.category}", p, record_preference) for p in result.preferences),
    ]
    for label, item, step in steps:
        try:
            with session.begin_nested():
                step(session, item, ctx)
        except SQLAlchemyError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            errors.append(ItemError(path=label, message=str(exc), raw=getattr(item, "raw", None)))
    return errors


def record_inbound(session: Session, msg: InboundMessage, ctx: Ctx) -> None:
    """Store an inbound message once and place it in its conversation."""
    contact = resolve_contact(session, msg.sender, msg.timestamp)
    if session.scalar(select(Message.id).where(Message.wamid == msg.wamid)) is not None:
        return
    is_system = msg.type == MessageType.SYSTEM
    if is_system and msg.new_wa_id:
        contact = change_number(session, contact, msg.new_wa_id)
    row = Message(
        wamid=msg.wamid,
        provider=msg.provider.value,
        business_number_id=msg.business_number_id,
        contact_id=contact.id,
        direction="inbound",
        type=msg.raw_type,
        text=msg.text,
        media=_media(msg),
        sender_kind=SenderKind.SYSTEM if is_system else SenderKind.CUSTOMER,
        timestamp=msg.timestamp,
        referral=msg.referral.raw if msg.referral else None,
        reply_to_wamid=msg.context.reply_to_wamid if msg.context else None,
        forwarded=bool(msg.context and msg.context.forwarded),
        raw=msg.raw,
    )
    session.add(row)
    session.flush()
    # A recognised survey answer is stored on the surveyed conversation, placed in none.
    if is_system or not surveys.on_inbound(session, row, msg):
        place(session, row, window=ctx.window, now=ctx.now)
    _enqueue(session, ctx, row)
    metrics.MESSAGES.labels("inbound").inc()
    if row.conversation_id is not None and not is_system:
        attribution.on_inbound(session, row, window=ctx.rules.attribution_window)


def _enqueue(session: Session, ctx: Ctx, row: Message) -> None:
    """The CRM write is committed with the message itself: stored ⇒ will be synced."""
    if ctx.crm is not None:
        outbox.enqueue_message(session, ctx.crm, row)


def _media(msg: InboundMessage) -> dict[str, Any] | None:
    media = msg.media
    if media is None:
        return None
    fields = ("id", "url", "mime_type", "sha256", "filename", "caption", "voice")
    return {k: getattr(media, k) for k in fields if getattr(media, k) not in (None, False)}


def record_status(session: Session, st: StatusUpdate, ctx: Ctx) -> None:
    """Keep every (wamid, status) once; fold them into the message's furthest state."""
    first_error = st.errors[0] if st.errors else None
    inserted = insert_ignore(
        session,
        MessageStatusEvent,
        {
            "wamid": st.wamid,
            "status": st.status.value,
            "raw_status": st.raw_status,
            "timestamp": st.timestamp,
            "error_code": first_error.code if first_error else None,
            "error_title": (first_error.title or first_error.message) if first_error else None,
            "pricing_category": st.pricing.category if st.pricing else None,
            "pricing_model": st.pricing.pricing_model if st.pricing else None,
            "billable": st.pricing.billable if st.pricing else None,
            "conversation_ref": st.conversation.id if st.conversation else None,
            "conversation_origin": st.conversation.origin_type if st.conversation else None,
            "webhook_event_id": ctx.event_id,
        },
        ["wamid", "status"],
    )
    if not inserted:
        return
    contact = resolve_contact(session, st.recipient, None)
    row = session.scalars(select(Message).where(Message.wamid == st.wamid)).first()
    if row is None:
        row = _unknown_outbound(session, st, contact)
        apply_statuses(session, row, own_clock=True)
        place(session, row, window=ctx.window, now=ctx.now)
        _enqueue(session, ctx, row)
    else:
        before = row.timestamp
        apply_statuses(session, row, own_clock=row.sender_kind == SenderKind.UNKNOWN)
        if row.timestamp != before:
            resegment(session, row, window=ctx.window, now=ctx.now)
    costs.price_message(session, row, contact, ctx.rules.rate_card)
    surveys.on_status(session, row)
    if st.conversation is not None and row.conversation_id is not None:
        conv = session.get(Conversation, row.conversation_id)
        if conv is not None and conv.pricing_conversation_id is None:
            conv.pricing_conversation_id = st.conversation.id
            conv.pricing_category = (
                st.pricing.category if st.pricing else st.conversation.origin_type
            )


def _unknown_outbound(session: Session, st: StatusUpdate, contact: Contact) -> Message:
    """A status for a message not sent through us: record it, sender unknown."""
    row = Message(
        wamid=st.wamid,
        provider=st.provider.value,
        business_number_id=st.business_number_id,
        contact_id=contact.id,
        direction="outbound",
        type="unknown",
        sender_kind=SenderKind.UNKNOWN,
        timestamp=st.timestamp,
    )
    session.add(row)
    session.flush()
    metrics.MESSAGES.labels("outbound").inc()
    return row


def record_preference(session: Session, pref: PreferenceUpdate, ctx: Ctx) -> None:
    """Marketing stop/resume: the newest preference wins."""
    contact = resolve_contact(session, pref.contact, None)
    if pref.category != "marketing_messages":
        return
    if contact.preference_seen_at is None or pref.timestamp >= contact.preference_seen_at:
        contact.marketing_opt_out = pref.value.lower() == "stop"
        contact.preference_seen_at = pref.timestamp
