"""Parse Twilio WhatsApp webhooks (form-encoded) into :mod:`whatsapp.models` values.

Inbound messages and status callbacks share one endpoint. Twilio sends no event time,
so the caller passes when the request was received.

References:
    https://www.twilio.com/docs/messaging/guides/webhook-request
    https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import structlog

from whatsapp._values import ItemProblem, opt_int
from whatsapp.errors import MalformedPayload
from whatsapp.models import (
    Context,
    ErrorInfo,
    Identity,
    InboundMessage,
    ItemError,
    Media,
    MessageType,
    ParseResult,
    Provider,
    Referral,
    StatusKind,
    StatusUpdate,
)

logger = structlog.get_logger(__name__)

_STATUS_KINDS: dict[str, StatusKind] = {
    "queued": StatusKind.QUEUED,
    "accepted": StatusKind.QUEUED,
    "scheduled": StatusKind.QUEUED,
    "sending": StatusKind.QUEUED,
    "sent": StatusKind.SENT,
    "delivered": StatusKind.DELIVERED,
    "read": StatusKind.READ,
    "undelivered": StatusKind.FAILED,
    "failed": StatusKind.FAILED,
    "canceled": StatusKind.FAILED,
}
_INBOUND_STATUSES = frozenset({"received", "receiving"})
_MEDIA_KINDS = (("image/", "image"), ("audio/", "audio"), ("video/", "video"))


def parse_twilio(form: Mapping[str, str], received_at: datetime) -> ParseResult:
    """Parse one Twilio webhook: an inbound WhatsApp message or a status callback.

    Args:
        form: The decoded form parameters (``request.form``); values are strings.
        received_at: When the request arrived; used as the event time (a naive value is
            taken as UTC).

    Returns:
        A result with one message or one status, or one :class:`ItemError` when the
        form is recognised but incomplete (e.g. no ``To``).

    Raises:
        MalformedPayload: No ``MessageSid``, or the form is neither a message nor a
            status callback.
    """
    data = {str(key): str(value) for key, value in form.items()}
    sid = data.get("MessageSid") or data.get("SmsSid") or data.get("SmsMessageSid")
    if not sid:
        raise MalformedPayload("missing", path="MessageSid")
    when = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    status = data.get("MessageStatus") or data.get("SmsStatus") or ""
    is_status = bool(status) and status.strip().lower() not in _INBOUND_STATUSES
    if not status and "Body" not in data and "NumMedia" not in data:
        raise MalformedPayload("neither an inbound message nor a status callback")
    try:
        if is_status:
            update = _status(data, sid, status, when)
            return ParseResult(provider=Provider.TWILIO, statuses=(update,))
        return ParseResult(provider=Provider.TWILIO, messages=(_message(data, sid, when),))
    except ItemProblem as exc:
        logger.warning("whatsapp.item_error", path="form", reason=str(exc), sid=sid)
        error = ItemError(path="form", message=str(exc), raw=data)
        return ParseResult(provider=Provider.TWILIO, errors=(error,))


def _digits(address: str | None) -> str | None:
    """``"whatsapp:+14155238886"`` -> ``"14155238886"``."""
    if not address:
        return None
    value = address.strip()
    if value.lower().startswith("whatsapp:"):
        value = value[len("whatsapp:") :]
    return value.strip().lstrip("+") or None


def _numbers(data: dict[str, str], business_key: str, customer_key: str) -> tuple[str, str]:
    business = _digits(data.get(business_key))
    customer = _digits(data.get("WaId")) or _digits(data.get(customer_key))
    if business is None:
        raise ItemProblem(f"{business_key}: missing")
    if customer is None:
        raise ItemProblem(f"{customer_key}: missing")
    return business, customer


def _status(data: dict[str, str], sid: str, raw_status: str, when: datetime) -> StatusUpdate:
    business, customer = _numbers(data, business_key="From", customer_key="To")
    status = _STATUS_KINDS.get(raw_status.strip().lower(), StatusKind.UNKNOWN)
    if status is StatusKind.UNKNOWN:
        logger.warning("whatsapp.unknown_status", raw_status=raw_status, sid=sid)
    return StatusUpdate(
        provider=Provider.TWILIO,
        business_number_id=business,
        display_phone_number=f"+{business}",
        wamid=sid,
        status=status,
        raw_status=raw_status,
        timestamp=when,
        recipient=Identity(wa_id=customer),
        errors=_errors(data),
        raw=data,
    )


def _message(data: dict[str, str], sid: str, when: datetime) -> InboundMessage:
    business, customer = _numbers(data, business_key="To", customer_key="From")
    raw_type, message_type = _message_type(data)
    text, reply_id = _text_and_reply(data, message_type)
    return InboundMessage(
        provider=Provider.TWILIO,
        business_number_id=business,
        display_phone_number=f"+{business}",
        wamid=sid,
        timestamp=when,
        type=message_type,
        raw_type=raw_type,
        sender=Identity(wa_id=customer, name=data.get("ProfileName") or None),
        text=text,
        media=_media(data),
        context=_context(data),
        referral=_referral(data),
        reply_id=reply_id,
        errors=_errors(data),
        raw=data,
    )


def _message_type(data: dict[str, str]) -> tuple[str, MessageType]:
    given = data.get("MessageType", "").strip().lower()
    if given:
        message_type = MessageType(given)
        if message_type is MessageType.UNKNOWN:
            logger.warning("whatsapp.unknown_message_type", raw_type=given)
        return given, message_type
    if data.get("MediaUrl0") or (opt_int(data.get("NumMedia")) or 0) > 0:
        content_type = data.get("MediaContentType0", "").lower()
        kind = next((k for p, k in _MEDIA_KINDS if content_type.startswith(p)), "document")
        return kind, MessageType(kind)
    if data.get("Latitude") and data.get("Longitude"):
        return "location", MessageType.LOCATION
    return "text", MessageType.TEXT


def _text_and_reply(
    data: dict[str, str], message_type: MessageType
) -> tuple[str | None, str | None]:
    """Human-readable text and the id of the chosen button / list row, if any."""
    if data.get("ButtonText") or data.get("ButtonPayload"):
        return data.get("ButtonText") or None, data.get("ButtonPayload") or None
    if data.get("ListId") or data.get("ListTitle"):
        return data.get("ListTitle") or None, data.get("ListId") or None
    body = data.get("Body") or None
    if body is None and message_type is MessageType.LOCATION:
        label = ", ".join(v for v in (data.get("Label"), data.get("Address")) if v)
        latitude, longitude = data.get("Latitude"), data.get("Longitude")
        body = label or (f"{latitude},{longitude}" if latitude and longitude else None)
    return body, None


def _media(data: dict[str, str]) -> Media | None:
    url = data.get("MediaUrl0")
    if not url:
        return None
    return Media(
        url=url, mime_type=data.get("MediaContentType0") or None, caption=data.get("Body") or None
    )


def _context(data: dict[str, str]) -> Context | None:
    replied_to = data.get("OriginalRepliedMessageSid") or None
    forwarded = data.get("Forwarded", "").lower() == "true"
    frequently = data.get("FrequentlyForwarded", "").lower() == "true"
    if not (replied_to or forwarded or frequently):
        return None
    return Context(
        reply_to_wamid=replied_to,
        reply_to_from=_digits(data.get("OriginalRepliedMessageSender")),
        forwarded=forwarded or frequently,
        frequently_forwarded=frequently,
    )


def _referral(data: dict[str, str]) -> Referral | None:
    raw = {key: value for key, value in data.items() if key.startswith("Referral")}
    # ReferralNumMedia=0 is sent on every message, ad or not.
    if not any(value for key, value in raw.items() if key != "ReferralNumMedia"):
        return None
    return Referral(
        source_id=raw.get("ReferralSourceId") or None,
        source_type=raw.get("ReferralSourceType") or None,
        source_url=raw.get("ReferralSourceUrl") or None,
        headline=raw.get("ReferralHeadline") or None,
        body=raw.get("ReferralBody") or None,
        media_type=raw.get("ReferralMediaType") or raw.get("ReferralMediaContentType") or None,
        ctwa_clid=raw.get("ReferralCtwaClid") or None,
        raw=raw,
    )


def _errors(data: dict[str, str]) -> tuple[ErrorInfo, ...]:
    code = data.get("ErrorCode")
    if not code:
        return ()
    return (ErrorInfo(code=opt_int(code), message=data.get("ErrorMessage") or None),)
