"""WhatsApp edge of wacrm: signatures, webhook parsing (Meta and Twilio) and sending.

Nothing here imports Flask or ``connector``: the package works on raw bytes, forms and
plain values so it can be tested and reused on its own.
"""

from __future__ import annotations

from whatsapp.client import SendResult, WhatsAppClient
from whatsapp.errors import (
    InvalidSignature,
    MalformedPayload,
    MissingSignature,
    SignatureError,
    WhatsAppApiError,
    WhatsAppError,
)
from whatsapp.models import (
    Context,
    ConversationInfo,
    ErrorInfo,
    FieldEvent,
    Identity,
    InboundMessage,
    ItemError,
    Media,
    MessageType,
    ParseResult,
    PreferenceUpdate,
    PricingInfo,
    Provider,
    Referral,
    StatusKind,
    StatusUpdate,
)
from whatsapp.parse import IGNORED_FIELDS, SUPPORTED_EVENT_TYPES, parse_webhook
from whatsapp.signature import (
    meta_signature,
    twilio_signature,
    verify_meta_signature,
    verify_twilio_signature,
)
from whatsapp.twilio import parse_twilio

__all__ = [
    "IGNORED_FIELDS",
    "SUPPORTED_EVENT_TYPES",
    "Context",
    "ConversationInfo",
    "ErrorInfo",
    "FieldEvent",
    "Identity",
    "InboundMessage",
    "InvalidSignature",
    "ItemError",
    "MalformedPayload",
    "Media",
    "MessageType",
    "MissingSignature",
    "ParseResult",
    "PreferenceUpdate",
    "PricingInfo",
    "Provider",
    "Referral",
    "SendResult",
    "SignatureError",
    "StatusKind",
    "StatusUpdate",
    "WhatsAppApiError",
    "WhatsAppClient",
    "WhatsAppError",
    "meta_signature",
    "parse_twilio",
    "parse_webhook",
    "twilio_signature",
    "verify_meta_signature",
    "verify_twilio_signature",
]
