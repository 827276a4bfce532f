"""Outbound messages: send through the Cloud API, or record one sent elsewhere."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import attribution, metrics, outbox
from connector.config import Settings
from connector.contacts import resolve_contact
from connector.conversations import place, resegment
from connector.db import Database, insert_ignore
from connector.errors import ApiError, NotConfigured, ValidationFailed
from connector.models import Agent, Campaign, Conversation, Message, SenderKind, utcnow
from connector.statuses import apply_statuses
from whatsapp import WhatsAppClient
from whatsapp.errors import WhatsAppApiError
from whatsapp.models import Identity

_WA_ID = re.compile(r"^\+?\d{6,20}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    """A validated outbound request (``POST /api/v1/messages``)."""

    to: str
    text: str | None = None
    template: dict[str, Any] | None = None
    agent_id: str | None = None
    campaign_id: str | None = None
    sender_kind: SenderKind = SenderKind.BOT

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Outbound:
        to = str(body.get("to") or "")
        if not _WA_ID.match(to):
            raise ValidationFailed("to: expected the customer's wa_id (digits, E.164)")
        text, template = body.get("text"), body.get("template")
        if (text is None) == (template is None):
            raise ValidationFailed("exactly one of text or template is required")
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise ValidationFailed("text: expected a non-empty string")
        if template is not None and not (
            isinstance(template, dict) and template.get("name") and template.get("language")
        ):
            raise ValidationFailed("template: expected {name, language, components?}")
        agent, campaign = _opt_str(body, "agent_id"), _opt_str(body, "campaign_id")
        kind = SenderKind.AGENT if agent else SenderKind.CAMPAIGN if campaign else SenderKind.BOT
        if body.get("sender_kind") in {SenderKind.AGENT, SenderKind.BOT, SenderKind.CAMPAIGN}:
            kind = SenderKind(body["sender_kind"])
        return cls(
            to=to.lstrip("+"),
            text=text,
            template=template,
            agent_id=agent,
            campaign_id=campaign,
            sender_kind=kind,
        )


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int) or not str(value).strip():
        raise ValidationFailed(f"{key}: expected a string")
    return str(value)


def make_client(settings: Settings) -> WhatsAppClient:
    if settings.access_token is None or not settings.phone_number_id:
        raise NotConfigured("sending needs WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID")
    return WhatsAppClient(
        settings.whatsapp_base_url,
        settings.access_token.get_secret_value(),
        settings.phone_number_id,
        api_version=settings.whatsapp_api_version,
    )


def send(db: Database, settings: Settings, req: Outbound) -> int:
    """Send through the Cloud API, then record the message; return its row id."""
    client = make_client(settings)
    try:
        if req.template is not None:
            tpl = req.template
            result = client.send_template(
                req.to, tpl["name"], _language(tpl["language"]), tpl.get("components")
            )
        else:
            result = client.send_text(req.to, req.text or "")
    except WhatsAppApiError as exc:
        metrics.SENDS.labels("error").inc()
        raise _api_error(exc) from None
    metrics.SENDS.labels("sent").inc()
    return record(
        db,
        settings,
        req,
        wamid=result.wamid,
        wa_id=result.wa_id,
        business_number_id=settings.phone_number_id or "",
        at=utcnow(),
    )


def _language(value: Any) -> str:
    return str(value.get("code")) if isinstance(value, dict) else str(value)


def _api_error(exc: WhatsAppApiError) -> ApiError:
    status = {400: 422, 404: 422, 429: 429}.get(exc.http_status or 0, 502)
    return ApiError(
        exc.message,
        code="whatsapp_api_error",
        status=status,
        details={
            "meta_code": exc.code,
            "meta_subcode": exc.subcode,
            "http_status": exc.http_status,
            "fbtrace_id": exc.fbtrace_id,
        },
    )


def record(
    db: Database,
    settings: Settings,
    req: Outbound,
    *,
    wamid: str,
    wa_id: str,
    business_number_id: str,
    at: datetime,
) -> int:
    """Store an outbound message (ours, or sent by another tool) and place it."""
    with db.session() as session:
        contact = resolve_contact(session, Identity(wa_id=wa_id), None)
        row = session.scalars(select(Message).where(Message.wamid == wamid)).first()
        fresh = row is None
        if row is None:
            row = Message(
                wamid=wamid,
                provider="meta",
                business_number_id=business_number_id,
                contact_id=contact.id,
                direction="outbound",
                timestamp=at,
            )
            session.add(row)
        _describe(session, row, req, at)
        session.flush()
        apply_statuses(session, row, own_clock=False)
        if fresh or row.conversation_id is None:
            place(session, row, window=settings.auto_resolve_after, now=utcnow())
        else:
            resegment(session, row, window=settings.auto_resolve_after, now=utcnow())
        _tag(session, row)
        outbox.enqueue_message(session, settings.crm, row)
        if fresh:
            metrics.MESSAGES.labels("outbound").inc()
        return row.id


def _describe(session: Session, row: Message, req: Outbound, at: datetime) -> None:
    row.type = "template" if req.template is not None else "text"
    row.is_template = req.template is not None
    row.text = req.text if req.text is not None else f"[template {req.template['name']}]"  # type: ignore[index]
    row.sender_kind = req.sender_kind
    row.timestamp = min(row.timestamp, at) if row.timestamp else at
    row.raw = {"text": req.text} if req.template is None else {"template": req.template}
    row.agent_id = _upsert(session, Agent, "external_id", req.agent_id)
    row.campaign_id = _upsert(session, Campaign, "key", req.campaign_id)


def _upsert(session: Session, model: Any, column: str, value: str | None) -> int | None:
    if value is None:
        return None
    insert_ignore(session, model, {column: value}, [column])
    return session.scalar(select(model.id).where(getattr(model, column) == value))


def _tag(session: Session, row: Message) -> None:
    """First agent assigns the conversation; a campaign that opened it tags it."""
    if row.conversation_id is None:
        return
    conv = session.get(Conversation, row.conversation_id)
    if conv is None:
        return
    if row.agent_id is not None and conv.agent_id is None:
        conv.agent_id = row.agent_id
    attribution.on_outbound(session, row)
