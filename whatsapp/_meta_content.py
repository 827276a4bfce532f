"""Readers for the sub-objects of Meta ``messages[]`` and ``statuses[]`` items.

``MESSAGE_PARSERS`` maps a message ``type`` to a reader that takes
``message[message["type"]]`` (whatever JSON it is) and returns the human-readable
:class:`Content`; missing parts are simply ``None``.

Reference: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from whatsapp._values import ItemProblem, as_obj, opt_bool, opt_str, unix_time
from whatsapp.models import Context, ConversationInfo, Media, PricingInfo, Referral


@dataclass(frozen=True, slots=True, kw_only=True)
class Content:
    """The type-specific part of an inbound message."""

    text: str | None = None
    media: Media | None = None
    reply_id: str | None = None
    reaction_to_wamid: str | None = None
    new_wa_id: str | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """Return the fields as keyword arguments for :class:`InboundMessage`."""
        return {
            "text": self.text,
            "media": self.media,
            "reply_id": self.reply_id,
            "reaction_to_wamid": self.reaction_to_wamid,
            "new_wa_id": self.new_wa_id,
        }


def _text(value: Any) -> Content:
    return Content(text=opt_str(as_obj(value), "body"))


def _media(value: Any) -> Content:
    """image / audio / video / document / sticker share one shape."""
    data = as_obj(value)
    caption = opt_str(data, "caption")
    media = Media(
        id=opt_str(data, "id"),
        url=opt_str(data, "url"),
        mime_type=opt_str(data, "mime_type"),
        sha256=opt_str(data, "sha256"),
        filename=opt_str(data, "filename"),
        caption=caption,
        voice=opt_bool(data.get("voice")) or False,
    )
    return Content(text=caption, media=media)


def _number(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _location(value: Any) -> Content:
    data = as_obj(value)
    label = ", ".join(p for p in (opt_str(data, "name"), opt_str(data, "address")) if p)
    if not label:
        latitude, longitude = _number(data.get("latitude")), _number(data.get("longitude"))
        label = f"{latitude},{longitude}" if latitude and longitude else ""
    return Content(text=label or None)


def _contact_name(card: dict[str, Any]) -> str | None:
    name = as_obj(card.get("name"))
    formatted = opt_str(name, "formatted_name")
    if formatted:
        return formatted
    parts = (opt_str(name, "first_name"), opt_str(name, "last_name"))
    return " ".join(p for p in parts if p) or None


def _contacts(value: Any) -> Content:
    cards = value if isinstance(value, list) else []
    names = [_contact_name(card) for card in cards if isinstance(card, dict)]
    return Content(text=", ".join(n for n in names if n) or None)


def _interactive(value: Any) -> Content:
    """button_reply / list_reply carry ``{id, title}``; a Flow (nfm_reply) a ``body``."""
    data = as_obj(value)
    kind = opt_str(data, "type") or ""
    reply = as_obj(data.get(kind))
    if kind == "nfm_reply":
        return Content(text=opt_str(reply, "body"))
    return Content(text=opt_str(reply, "title"), reply_id=opt_str(reply, "id"))


def _button(value: Any) -> Content:
    data = as_obj(value)
    return Content(text=opt_str(data, "text"), reply_id=opt_str(data, "payload"))


def _reaction(value: Any) -> Content:
    # An empty emoji means the customer removed their reaction.
    data = as_obj(value)
    return Content(text=opt_str(data, "emoji"), reaction_to_wamid=opt_str(data, "message_id"))


def _order(value: Any) -> Content:
    return Content(text=opt_str(as_obj(value), "text"))


def _system(value: Any) -> Content:
    data = as_obj(value)
    new_wa_id = opt_str(data, "wa_id") or opt_str(data, "new_wa_id") or opt_str(data, "customer")
    return Content(text=opt_str(data, "body"), new_wa_id=new_wa_id)


def _nothing(value: Any) -> Content:
    return Content()


def message_context(value: Any) -> Context | None:
    """Read ``messages[].context`` (reply target, forwarding, referred product)."""
    if not isinstance(value, dict) or not value:
        return None
    product = value.get("referred_product")
    return Context(
        reply_to_wamid=opt_str(value, "id"),
        reply_to_from=opt_str(value, "from"),
        forwarded=opt_bool(value.get("forwarded")) or False,
        frequently_forwarded=opt_bool(value.get("frequently_forwarded")) or False,
        referred_product=product if isinstance(product, dict) else None,
    )


def message_referral(value: Any) -> Referral | None:
    """Read ``messages[].referral`` (Click-to-WhatsApp ad); the raw object is kept."""
    if not isinstance(value, dict) or not value:
        return None
    return Referral(
        source_id=opt_str(value, "source_id"),
        source_type=opt_str(value, "source_type"),
        source_url=opt_str(value, "source_url"),
        headline=opt_str(value, "headline"),
        body=opt_str(value, "body"),
        media_type=opt_str(value, "media_type"),
        ctwa_clid=opt_str(value, "ctwa_clid"),
        raw=value,
    )


def status_conversation(value: Any) -> ConversationInfo | None:
    """Read ``statuses[].conversation``; absent since v24.0 for many statuses."""
    conversation = as_obj(value)
    conversation_id = opt_str(conversation, "id")
    if conversation_id is None:
        return None
    expires = conversation.get("expiration_timestamp")
    try:
        expiration = unix_time(expires, "expiration_timestamp") if expires else None
    except ItemProblem:
        expiration = None  # informational only; not worth dropping the status for
    return ConversationInfo(
        id=conversation_id,
        origin_type=opt_str(as_obj(conversation.get("origin")), "type"),
        expiration=expiration,
    )


# Per-message pricing ``type`` → whether Meta charges the message.
_PMP_BILLABLE = {"regular": True, "free_customer_service": False, "free_entry_point": False}


def status_pricing(value: Any) -> PricingInfo | None:
    """Read ``statuses[].pricing`` (``CBP`` or ``PMP`` model).

    ``billable`` is deprecated under per-message pricing (Graph v16 on) and may be left
    out; ``type`` then says it (``regular`` is charged, the ``free_*`` windows are not).
    """
    if not isinstance(value, dict) or not value:
        return None
    billable, kind = opt_bool(value.get("billable")), opt_str(value, "type")
    if billable is None and kind is not None:
        billable = _PMP_BILLABLE.get(kind)
    return PricingInfo(
        billable=billable,
        pricing_model=opt_str(value, "pricing_model"),
        category=opt_str(value, "category"),
        type=kind,
    )


MESSAGE_PARSERS: dict[str, Callable[[Any], Content]] = {
    "text": _text,
    "image": _media,
    "audio": _media,
    "video": _media,
    "document": _media,
    "sticker": _media,
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
    "unsupported": _nothing,
}
