"""HubSpot wire shapes: request bodies out, typed records in (no I/O here).

Bodies are plain dicts in HubSpot's camelCase JSON (the SDK serialises dicts as-is);
responses arrive as the same JSON shapes. Shapes follow
``tests/fixtures/hubspot/hubspot-examples.json`` and
https://developers.hubspot.com/docs/api-reference/latest/crm/objects/communications/guide.
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from crm_adapters._hubspot_errors import looks_duplicate
from crm_adapters.base import (
    CampaignRecord,
    ContactRecord,
    DealRecord,
    FieldSpec,
    MessageRecord,
    Rejected,
)

T = TypeVar("T")

PHONE_PROPERTIES = ("phone", "mobilephone", "hs_whatsapp_phone_number")
DEAL_PROPERTIES = (
    "amount",
    "deal_currency_code",
    "dealstage",
    "hs_is_closed",
    "hs_is_closed_won",
    "closedate",
    "dealname",
    "hs_lastmodifieddate",
)
# Campaign property names per the marketing campaigns guide [verify spend in a sandbox].
CAMPAIGN_PROPERTIES = (
    "hs_name",
    "hs_campaign_status",
    "hs_currency_code",
    "hs_spend_items_sum_amount",
)
COMMUNICATION_TO_CONTACT = 81
COMMUNICATION_TO_DEAL = 85
_ARROWS = {"inbound": "←", "outbound": "→"}
# (type, fieldType) pairs HubSpot accepts, keyed by FieldSpec.type.
PROPERTY_TYPES = {
    "string": ("string", "text"),
    "number": ("number", "number"),
    "datetime": ("datetime", "date"),
    "bool": ("bool", "booleancheckbox"),
}
_BOOL_OPTIONS = [
    {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
    {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- values -------------------------------------------------------------------------


def iso_utc(moment: datetime) -> str:
    """``2026-11-25T16:40:00.000Z``; naive datetimes are taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hubspot_value(value: Any) -> str:
    """One property value as HubSpot wants it: a string, ``""`` clears the property."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else ""
    return str(value)


def parse_datetime(value: Any) -> datetime | None:
    """HubSpot datetimes: ISO-8601 (``Z`` or offset), a date, or epoch milliseconds."""
    if value in (None, ""):
        return None
    text = str(value)
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


# --- requests -------------------------------------------------------------------------


def message_body(message: MessageRecord) -> str:
    """``← customer: text`` / ``→ agent [image]: caption``, HTML-escaped."""
    arrow = _ARROWS.get(message.direction, "·")
    kind = "" if message.type == "text" else f" [{message.type}]"
    head = f"{arrow} {message.sender_kind}{kind}"
    if not message.text:
        return html.escape(head)
    return html.escape(f"{head}: {message.text}").replace("\n", "<br>")


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
    return {"to": {"id": to_id}, "types": [spec]}


def message_input(message: MessageRecord, id_property: str) -> dict[str, Any]:
    """One ``communications/batch/create`` input; ``associations`` is always present."""
    properties = {
        "hs_communication_channel_type": "WHATS_APP",
        "hs_communication_logged_from": "CRM",
        "hs_communication_body": message_body(message),
        "hs_timestamp": iso_utc(message.timestamp),
        id_property: message.key,
    }
    if message.owner_crm_id:
        properties["hubspot_owner_id"] = message.owner_crm_id
    links = [(message.contact_crm_id, COMMUNICATION_TO_CONTACT)]
    links.append((message.deal_crm_id or "", COMMUNICATION_TO_DEAL))
    associations = [_association(to, type_id) for to, type_id in links if to]
    return {
        "objectWriteTraceId": message.key,
        "properties": properties,
        "associations": associations,
    }


def name_properties(name: str | None) -> dict[str, str]:
    """``firstname`` / ``lastname`` from a WhatsApp profile name (first word, rest)."""
    first, _, last = (name or "").strip().partition(" ")
    return {k: v.strip() for k, v in (("firstname", first), ("lastname", last)) if v.strip()}


def contact_upsert_input(record: ContactRecord, id_property: str) -> dict[str, Any]:
    """Create-or-update by the unique property that holds ``record.key``."""
    properties = {id_property: record.key, **name_properties(record.name)}
    if record.wa_id:
        properties["phone"] = f"+{record.wa_id}"
    return {
        "idProperty": id_property,
        "id": record.key,
        "objectWriteTraceId": record.key,
        "properties": properties,
    }


def read_by_unique(keys: Collection[str], id_property: str, *extra: str) -> dict[str, Any]:
    """A ``batch/read`` body resolving unique-property values to HubSpot ids."""
    return {
        "idProperty": id_property,
        "inputs": [{"id": key} for key in keys],
        "properties": [id_property, *extra],
        "propertiesWithHistory": [],
    }


def phone_search(pairs: Sequence[tuple[str, str]], id_property: str) -> dict[str, Any]:
    """Contacts whose phone property equals ``+wa_id``; one filterGroup per pair.

    Filters inside a group are ANDed and groups are ORed, so "this number in any of
    three properties" needs one group per (number, property) pair. The spec requires
    all five top-level fields.
    """
    groups = [
        {"filters": [{"propertyName": prop, "operator": "EQ", "value": f"+{wa_id}"}]}
        for wa_id, prop in pairs
    ]
    properties = [id_property, *PHONE_PROPERTIES, "createdate"]
    return {
        "filterGroups": groups,
        "properties": properties,
        "sorts": [],
        "limit": 100,
        "after": "0",
    }


def phone_search_in(numbers: Sequence[str], id_property: str, after: str) -> dict[str, Any]:
    """Contacts whose phone, mobile or WhatsApp number is one of ``numbers`` (``+wa_id``).

    One filterGroup per property, each with one ``IN`` filter: many numbers per call
    instead of about two with one ``EQ`` group per (number, property) pair.
    """
    groups = [
        {"filters": [{"propertyName": prop, "operator": "IN", "values": list(numbers)}]}
        for prop in PHONE_PROPERTIES
    ]
    return {
        "filterGroups": groups,
        "properties": [id_property, *PHONE_PROPERTIES, "createdate"],
        "sorts": [],
        "limit": 200,
        "after": after,
    }


def deal_search(since: datetime | None, after: str) -> dict[str, Any]:
    """Deals modified at or after ``since``, oldest first (so a 10k window can resume)."""
    filters = []
    if since is not None:
        millis = str(int(since.timestamp() * 1000))
        filters = [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": millis}]
    return {
        "filterGroups": [{"filters": filters}] if filters else [],
        "properties": list(DEAL_PROPERTIES),
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 100,
        "after": after,
    }


def property_create(spec: FieldSpec, group: str) -> dict[str, Any]:
    """A ``PropertyCreate`` body for one connector field."""
    kind, field_type = PROPERTY_TYPES[spec.type]
    body: dict[str, Any] = {
        "name": spec.name,
        "label": spec.label,
        "type": kind,
        "fieldType": field_type,
        "groupName": group,
        "hasUniqueValue": spec.unique,
    }
    if kind == "bool":
        body["options"] = _BOOL_OPTIONS
    return body


# --- responses ------------------------------------------------------------------------


@dataclass
class Outcome:
    """Per-key result of one batch call: HubSpot ids, refusals, and unplaceable errors."""

    ok: dict[str, str] = field(default_factory=dict)
    failed: dict[str, Rejected] = field(default_factory=dict)
    unmapped: list[Rejected] = field(default_factory=list)

    def duplicates(self) -> list[str]:
        """Keys refused because their unique value already exists."""
        return [k for k, r in self.failed.items() if looks_duplicate(r.message, r.code)]

    def leftovers(self, keys: Collection[str]) -> list[Rejected]:
        """Keys HubSpot said nothing about, refused with whatever it did say."""
        words = "; ".join(r.message for r in self.unmapped) or "HubSpot returned no result"
        code = self.unmapped[0].code if self.unmapped else None
        missing = [k for k in keys if k not in self.ok and k not in self.failed]
        return [Rejected(key=k, message=words, code=code) for k in missing]


def result_key(result: Mapping[str, Any], keys: Collection[str], id_property: str) -> str | None:
    """Which input a batch result answers: trace id, unique property, phone, or id."""
    props = result.get("properties") or {}
    phone = str(props.get("hs_whatsapp_phone_number") or props.get("phone") or "")
    candidates = (
        result.get("objectWriteTraceId"),
        props.get(id_property),
        phone[1:] if phone.startswith("+") else None,
        str(result.get("id")),
    )
    return next((str(c) for c in candidates if c and str(c) in keys), None)


def parse_batch(body: Mapping[str, Any], keys: Collection[str], id_property: str) -> Outcome:
    """Map a batch (200/201/207) response back to input keys.

    207 errors are placed through their ``context`` (``objectWriteTraceId``, ``ids``,
    or any other list naming an input key).
    """
    outcome = Outcome()
    for result in body.get("results") or []:
        key = result_key(result, keys, id_property)
        if key is not None:
            outcome.ok[key] = str(result["id"])
    for error in body.get("errors") or []:
        message, code = str(error.get("message") or ""), error.get("category")
        named = {str(v) for values in (error.get("context") or {}).values() for v in values or ()}
        targets = [k for k in keys if k in named and k not in outcome.ok]
        for key in targets:
            outcome.failed[key] = Rejected(key=key, message=message, code=code)
        if not targets:
            outcome.unmapped.append(Rejected(key="", message=message, code=code))
    return outcome


def deal_record(obj: Mapping[str, Any], contact_ids: Sequence[str]) -> DealRecord:
    """A search result (``SimplePublicObject``) as a ``DealRecord``."""
    props = obj.get("properties") or {}
    return DealRecord(
        crm_id=str(obj["id"]),
        name=props.get("dealname"),
        amount=parse_decimal(props.get("amount")),
        currency=props.get("deal_currency_code"),
        stage=props.get("dealstage"),
        is_closed=str(props.get("hs_is_closed")).lower() == "true",
        is_won=str(props.get("hs_is_closed_won")).lower() == "true",
        close_date=parse_datetime(props.get("closedate")),
        updated_at=parse_datetime(props.get("hs_lastmodifieddate") or obj.get("updatedAt")),
        contact_crm_ids=tuple(contact_ids),
    )


def campaign_record(obj: Mapping[str, Any]) -> CampaignRecord:
    """A ``/marketing/v3/campaigns`` item as a ``CampaignRecord``."""
    props = obj.get("properties") or {}
    return CampaignRecord(
        crm_id=str(obj["id"]),
        name=props.get("hs_name"),
        status=props.get("hs_campaign_status"),
        spend=parse_decimal(props.get("hs_spend_items_sum_amount")),
        currency=props.get("hs_currency_code"),
        updated_at=parse_datetime(obj.get("updatedAt")),
    )
