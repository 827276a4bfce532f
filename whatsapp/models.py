"""Typed, frozen values for what WhatsApp sends us, provider-neutral.

Meta Cloud API and Twilio payloads both parse into these. Unknown enum values map to
``UNKNOWN`` and every item keeps its raw JSON so nothing the provider sent is lost.

Reference: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class _LenientEnum(enum.StrEnum):
    """A ``StrEnum`` whose unknown values become ``UNKNOWN`` instead of raising."""

    @classmethod
    def _missing_(cls, value: object) -> _LenientEnum:
        return cls("unknown")


class Provider(enum.StrEnum):
    META = "meta"
    TWILIO = "twilio"


class MessageType(_LenientEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    TEMPLATE = "template"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"


class StatusKind(_LenientEnum):
    """Delivery states, ordered by how far a message got (``failed`` is terminal)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    DELETED = "deleted"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo:
    """One entry of an ``errors`` array (message, status or change level)."""

    code: int | None
    title: str | None = None
    message: str | None = None
    details: str | None = None
    href: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who a customer is: phone-based ``wa_id`` and/or the business-scoped ``user_id``.

    Since 2026 Meta may send only the BSUID (``user_id``) for users with a username.
    """

    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    name: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    id: str | None = None
    url: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    caption: str | None = None
    voice: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """``messages[].context``: what the message replies to or was forwarded from."""

    reply_to_wamid: str | None = None
    reply_to_from: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Referral:
    """Click-to-WhatsApp ad (or post) that started the chat."""

    source_id: str | None = None
    source_type: str | None = None
    source_url: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    ctwa_clid: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A message a customer sent to the business."""

    provider: Provider
    business_number_id: str
    display_phone_number: str | None
    wamid: str
    timestamp: datetime
    type: MessageType
    raw_type: str
    sender: Identity
    text: str | None = None
    media: Media | None = None
    context: Context | None = None
    referral: Referral | None = None
    reply_id: str | None = None
    reaction_to_wamid: str | None = None
    new_wa_id: str | None = None
    errors: tuple[ErrorInfo, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PricingInfo:
    """``statuses[].pricing`` (conversation-based ``CBP`` or per-message ``PMP``)."""

    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationInfo:
    """``statuses[].conversation``: Meta's pricing conversation, not ours."""

    id: str
    origin_type: str | None = None
    expiration: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """A delivery status for a message the business sent."""

    provider: Provider
    business_number_id: str
    display_phone_number: str | None
    wamid: str
    status: StatusKind
    raw_status: str
    timestamp: datetime
    recipient: Identity
    conversation: ConversationInfo | None = None
    pricing: PricingInfo | None = None
    errors: tuple[ErrorInfo, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreferenceUpdate:
    """``user_preferences``: a customer stopped or resumed marketing messages."""

    business_number_id: str
    contact: Identity
    category: str
    value: str
    timestamp: datetime
    detail: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldEvent:
    """A recognised change we store but do not normalise (templates, account, errors)."""

    field: str
    business_account_id: str | None
    value: dict[str, Any]
    errors: tuple[ErrorInfo, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemError:
    """One item that failed to parse; the rest of its POST is kept."""

    path: str
    message: str
    raw: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseResult:
    """Everything one webhook body carried, in payload order."""

    provider: Provider
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    preferences: tuple[PreferenceUpdate, ...] = ()
    other: tuple[FieldEvent, ...] = ()
    errors: tuple[ItemError, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.messages or self.statuses or self.preferences)
