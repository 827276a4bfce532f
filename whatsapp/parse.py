"""Parse Meta WhatsApp Cloud API webhook bodies into :mod:`whatsapp.models` values.

Meta may batch several entries, changes and messages in one POST, so every one of them
is walked; an item that fails becomes an :class:`~whatsapp.models.ItemError` beside the
good ones instead of failing the batch.

Reference: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from whatsapp._meta_content import (
    MESSAGE_PARSERS,
    Content,
    message_context,
    message_referral,
    status_conversation,
    status_pricing,
)
from whatsapp._values import (
    ItemProblem,
    as_obj,
    error_infos,
    opt_str,
    req_str,
    unix_time,
)
from whatsapp.errors import MalformedPayload
from whatsapp.models import (
    FieldEvent,
    Identity,
    InboundMessage,
    ItemError,
    MessageType,
    ParseResult,
    PreferenceUpdate,
    Provider,
    StatusKind,
    StatusUpdate,
)

logger = structlog.get_logger(__name__)

_T = TypeVar("_T")

WEBHOOK_OBJECT = "whatsapp_business_account"

#: Content readers keyed by ``messages[].type``; any other type becomes ``UNKNOWN``.
_MESSAGE_PARSERS = MESSAGE_PARSERS

#: Change fields we recognise and store as :class:`FieldEvent` without normalising them.
IGNORED_FIELDS: frozenset[str] = frozenset(
    {
        "account_alerts",
        "account_review_update",
        "account_settings_update",
        "account_update",
        "automatic_events",
        "business_capability_update",
        "business_status_update",
        "calls",
        "flows",
        "group_lifecycle_update",
        "group_participants_update",
        "group_settings_update",
        "group_status_update",
        "history",
        "message_echoes",
        "message_template_components_update",
        "message_template_quality_update",
        "message_template_status_update",
        "partner_solutions",
        "payment_configuration_update",
        "phone_number_name_update",
        "phone_number_quality_update",
        "security",
        "smb_app_state_sync",
        "smb_message_echoes",
        "template_category_update",
        "tracking_events",
    }
)


@dataclass(slots=True)
class _Collector:
    """Mutable accumulator for one body; frozen into a :class:`ParseResult` at the end."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    preferences: list[PreferenceUpdate] = field(default_factory=list)
    other: list[FieldEvent] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)

    def error(self, path: str, message: str, raw: Any) -> None:
        logger.warning("whatsapp.item_error", path=path, reason=message)
        self.errors.append(ItemError(path=path, message=message, raw=raw))

    def result(self) -> ParseResult:
        return ParseResult(
            provider=Provider.META,
            messages=tuple(self.messages),
            statuses=tuple(self.statuses),
            preferences=tuple(self.preferences),
            other=tuple(self.other),
            errors=tuple(self.errors),
        )


@dataclass(frozen=True, slots=True)
class _Change:
    """Where a change sits and who it belongs to (``value.metadata`` / ``value.contacts``)."""

    path: str
    entry_id: str | None
    business_number_id: str = ""
    display_phone_number: str | None = None
    contacts: tuple[dict[str, Any], ...] = ()


def parse_webhook(body: bytes) -> ParseResult:
    """Parse one Meta Cloud API webhook POST body.

    Args:
        body: The raw request body, exactly as received (``request.get_data()``).

    Returns:
        Every message, status, preference update and other field event in payload
        order, plus one :class:`ItemError` per item that could not be parsed.

    Raises:
        MalformedPayload: The body is not UTF-8 JSON, not an object, its ``object`` is
            not ``"whatsapp_business_account"`` or its ``entry`` is not a list.
    """
    document = _load(body)
    out = _Collector()
    for index, entry in enumerate(document["entry"]):
        _parse_entry(entry, f"entry[{index}]", out)
    result = out.result()
    logger.info(
        "whatsapp.parsed",
        messages=len(result.messages),
        statuses=len(result.statuses),
        preferences=len(result.preferences),
        other=len(result.other),
        errors=len(result.errors),
    )
    return result


def _load(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(bytes(body).decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedPayload("body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise MalformedPayload("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedPayload("body is not a JSON object")
    if document.get("object") != WEBHOOK_OBJECT:
        raise MalformedPayload(f"expected {WEBHOOK_OBJECT!r}", path="object")
    if not isinstance(document.get("entry"), list):
        raise MalformedPayload("expected a list", path="entry")
    return document


def _parse_entry(entry: Any, path: str, out: _Collector) -> None:
    if not isinstance(entry, dict):
        out.error(path, "expected an object", entry)
        return
    changes = entry.get("changes")
    if not isinstance(changes, list):
        out.error(f"{path}.changes", "expected a list", entry)
        return
    entry_id = opt_str(entry, "id")
    for index, change in enumerate(changes):
        _parse_change(change, f"{path}.changes[{index}]", entry_id, out)


def _parse_change(change: Any, path: str, entry_id: str | None, out: _Collector) -> None:
    if not isinstance(change, dict):
        out.error(path, "expected an object", change)
        return
    name, value = change.get("field"), change.get("value")
    if not isinstance(name, str) or not name:
        out.error(path, "field: missing", change)
        return
    if not isinstance(value, dict):
        out.error(path, "value: expected an object", change)
        return
    parser = _FIELD_PARSERS.get(name)
    if parser is None:
        if name not in IGNORED_FIELDS:
            logger.warning("whatsapp.unknown_field", field=name, path=path)
        out.other.append(_field_event(name, entry_id, value))
        return
    parser(value, _Change(path=f"{path}.value", entry_id=entry_id), out)


def _field_event(name: str, entry_id: str | None, value: dict[str, Any]) -> FieldEvent:
    errors = error_infos(value.get("errors"))
    return FieldEvent(field=name, business_account_id=entry_id, value=value, errors=errors)


def _with_metadata(value: dict[str, Any], change: _Change, out: _Collector) -> _Change | None:
    """Fill in the business number and sender contacts, or record why we cannot."""
    metadata = as_obj(value.get("metadata"))
    number_id = opt_str(metadata, "phone_number_id")
    if number_id is None:
        out.error(f"{change.path}.metadata", "phone_number_id: missing", value)
        return None
    contacts = value.get("contacts")
    return _Change(
        path=change.path,
        entry_id=change.entry_id,
        business_number_id=number_id,
        display_phone_number=opt_str(metadata, "display_phone_number"),
        contacts=tuple(c for c in contacts if isinstance(c, dict))
        if isinstance(contacts, list)
        else (),
    )


def _each(
    value: dict[str, Any],
    key: str,
    change: _Change,
    out: _Collector,
    parse: Callable[[dict[str, Any], _Change], _T],
    sink: list[_T],
) -> None:
    """Parse every item of ``value[key]``; a failing item becomes an ItemError."""
    items = value.get(key)
    if items is None:
        return
    if not isinstance(items, list):
        out.error(f"{change.path}.{key}", "expected a list", items)
        return
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ItemProblem("expected an object")
            sink.append(parse(item, change))
        except ItemProblem as exc:
            out.error(f"{change.path}.{key}[{index}]", str(exc), item)


def _parse_messages_field(value: dict[str, Any], change: _Change, out: _Collector) -> None:
    has_items = "messages" in value or "statuses" in value
    if not has_items or value.get("errors"):
        # e.g. value = {"errors": [...]} alone (rate limit): nothing to normalise, keep it.
        out.other.append(_field_event("messages", change.entry_id, value))
    if not has_items:
        return
    located = _with_metadata(value, change, out)
    if located is not None:
        _each(value, "messages", located, out, _parse_message, out.messages)
        _each(value, "statuses", located, out, _parse_status, out.statuses)


def _parse_preferences_field(value: dict[str, Any], change: _Change, out: _Collector) -> None:
    located = _with_metadata(value, change, out)
    if located is not None:
        _each(value, "user_preferences", located, out, _parse_preference, out.preferences)


_FIELD_PARSERS: dict[str, Callable[[dict[str, Any], _Change, _Collector], None]] = {
    "messages": _parse_messages_field,
    "user_preferences": _parse_preferences_field,
}

#: Change fields that are normalised into messages, statuses or preference updates.
SUPPORTED_EVENT_TYPES: list[str] = sorted(_FIELD_PARSERS)


def _identity(
    change: _Change, wa_id: str | None, user_id: str | None, parent_user_id: str | None
) -> Identity:
    """Build an identity, completing it from the value-level ``contacts[]`` entry."""
    contact: dict[str, Any] = {}
    for candidate in change.contacts:
        if (wa_id and candidate.get("wa_id") == wa_id) or (
            user_id and candidate.get("user_id") == user_id
        ):
            contact = candidate
            break
    profile = as_obj(contact.get("profile"))
    return Identity(
        wa_id=wa_id or opt_str(contact, "wa_id"),
        user_id=user_id or opt_str(contact, "user_id"),
        parent_user_id=parent_user_id or opt_str(contact, "parent_user_id"),
        name=opt_str(profile, "name"),
        username=opt_str(profile, "username"),
    )


def _parse_message(raw: dict[str, Any], change: _Change) -> InboundMessage:
    wamid = req_str(raw, "id")
    raw_type = req_str(raw, "type")
    wa_id, user_id = opt_str(raw, "from"), opt_str(raw, "from_user_id")
    if wa_id is None and user_id is None:
        raise ItemProblem("from: missing")
    timestamp = unix_time(raw.get("timestamp"))
    content_parser = _MESSAGE_PARSERS.get(raw_type)
    if content_parser is None:
        logger.warning("whatsapp.unknown_message_type", raw_type=raw_type, wamid=wamid)
        message_type, content = MessageType.UNKNOWN, Content()
    else:
        message_type, content = MessageType(raw_type), content_parser(raw.get(raw_type))
    return InboundMessage(
        provider=Provider.META,
        business_number_id=change.business_number_id,
        display_phone_number=change.display_phone_number,
        wamid=wamid,
        timestamp=timestamp,
        type=message_type,
        raw_type=raw_type,
        sender=_identity(change, wa_id, user_id, opt_str(raw, "from_parent_user_id")),
        context=message_context(raw.get("context")),
        referral=message_referral(raw.get("referral")),
        errors=error_infos(raw.get("errors")),
        raw=raw,
        **content.as_kwargs(),
    )


def _parse_status(raw: dict[str, Any], change: _Change) -> StatusUpdate:
    wamid = req_str(raw, "id")
    raw_status = req_str(raw, "status")
    status = StatusKind(raw_status.lower())
    if status is StatusKind.UNKNOWN:
        logger.warning("whatsapp.unknown_status", raw_status=raw_status, wamid=wamid)
    wa_id, user_id = opt_str(raw, "recipient_id"), opt_str(raw, "recipient_user_id")
    if wa_id is None and user_id is None:
        raise ItemProblem("recipient_id: missing")
    return StatusUpdate(
        provider=Provider.META,
        business_number_id=change.business_number_id,
        display_phone_number=change.display_phone_number,
        wamid=wamid,
        status=status,
        raw_status=raw_status,
        timestamp=unix_time(raw.get("timestamp")),
        recipient=_identity(change, wa_id, user_id, opt_str(raw, "recipient_parent_user_id")),
        conversation=status_conversation(raw.get("conversation")),
        pricing=status_pricing(raw.get("pricing")),
        errors=error_infos(raw.get("errors")),
        raw=raw,
    )


def _parse_preference(raw: dict[str, Any], change: _Change) -> PreferenceUpdate:
    wa_id, user_id = opt_str(raw, "wa_id"), opt_str(raw, "user_id")
    if wa_id is None and user_id is None:
        raise ItemProblem("wa_id: missing")
    return PreferenceUpdate(
        business_number_id=change.business_number_id,
        contact=_identity(change, wa_id, user_id, opt_str(raw, "parent_user_id")),
        category=req_str(raw, "category"),
        value=req_str(raw, "value"),
        timestamp=unix_time(raw.get("timestamp")),
        detail=opt_str(raw, "detail"),
        raw=raw,
    )
