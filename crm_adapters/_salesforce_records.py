"""Pure conversions between the adapter's value types and Salesforce JSON (no I/O).

Field limits: https://developer.salesforce.com/docs/platform/object-reference/references/
standard-objects/object-task.html and …/object-contact.html.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote_plus

from simple_salesforce.format import format_soql, quote_soql_value

from crm_adapters.base import (
    CampaignRecord,
    ContactRecord,
    DealRecord,
    FieldSpec,
    FieldWrite,
    MessageRecord,
)

T = TypeVar("T")

SUBJECT_MAX = 255
DESCRIPTION_MAX = 32_000
FIRST_NAME_MAX = 40
LAST_NAME_MAX = 80
LABEL_MAX = 40
PLACEHOLDER_LAST_NAME = "Unknown (WhatsApp)"
LEAD_COMPANY = "[not provided]"  # Salesforce's own Web-to-Lead placeholder
ARROWS = {"inbound": "←", "outbound": "→"}
# Salesforce rejects request URIs over 16,384 bytes; keep each encoded SOQL well below.
SOQL_URL_BUDGET = 12_000


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """Split ``items`` into consecutive slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def soql_in_chunks(template: str, values: Sequence[str], **fmt: str) -> list[str]:
    """SOQL statements for ``template`` whose URL-encoded form fits one GET each.

    Args:
        template: A ``format_soql`` template with an ``{ids}`` list placeholder.
        values: The values to spread over the ``IN`` lists.
        **fmt: Literal template values (field names), written ``{name:literal}``.

    Returns:
        One statement per chunk; none when ``values`` is empty.
    """
    base = len(quote_plus(format_soql(template, ids=[], **fmt)))
    groups: list[list[str]] = []
    size = base
    for value in values:
        extra = len(quote_plus(quote_soql_value(value))) + 3  # "%2C" between items
        if not groups or size + extra > SOQL_URL_BUDGET:
            groups.append([])
            size = base
        groups[-1].append(value)
        size += extra
    return [format_soql(template, ids=group, **fmt) for group in groups]


def contact_fields(record: ContactRecord, *, sobject: str, id_field: str) -> dict[str, Any]:
    """A Contact/Lead for a collections upsert keyed by ``id_field``.

    The upsert also updates existing records, so the name is only ever the WhatsApp
    profile name, sent once (later batches carry the cached ``crm_id`` and skip the call).
    """
    first, _, last = (record.name or "").strip().rpartition(" ")
    fields: dict[str, Any] = {
        "attributes": {"type": sobject},
        id_field: record.key,
        "LastName": (last or PLACEHOLDER_LAST_NAME)[:LAST_NAME_MAX],
    }
    if first.strip():
        fields["FirstName"] = first.strip()[:FIRST_NAME_MAX]
    if record.wa_id:
        fields["MobilePhone"] = f"+{record.wa_id}"
    if sobject == "Lead":
        fields["Company"] = LEAD_COMPANY
    return fields


def task_fields(message: MessageRecord, *, id_field: str) -> dict[str, Any]:
    """A completed Task on the contact's timeline; ``id_field`` carries the wamid."""
    arrow = ARROWS.get(message.direction, "·")
    subject = f"WhatsApp {arrow} {message.sender_kind}"
    if message.type != "text":
        subject += f" ({message.type})"
    fields: dict[str, Any] = {
        "attributes": {"type": "Task"},
        id_field: message.key,
        "WhoId": message.contact_crm_id,
        "Subject": subject[:SUBJECT_MAX],
        "Description": (message.text or f"[{message.type}]")[:DESCRIPTION_MAX],
        "ActivityDate": utc(message.timestamp).date().isoformat(),
        "Status": "Completed",
        # [verify] TaskSubtype is create-only; an upsert that updates must not be refused.
        "TaskSubtype": "Task",
    }
    if message.deal_crm_id:
        fields["WhatId"] = message.deal_crm_id
    if message.owner_crm_id:
        fields["OwnerId"] = message.owner_crm_id
    return fields


def update_fields(sobject: str, row: FieldWrite) -> dict[str, Any]:
    """A record for ``PATCH /composite/sobjects``: ``Id`` + type + JSON-ready values."""
    values = {name: sf_value(value) for name, value in row.values.items()}
    return {"attributes": {"type": sobject}, "Id": row.crm_id, **values}


def sf_value(value: Any) -> Any:
    """A JSON value Salesforce accepts: ISO datetimes in UTC, dates, numbers."""
    if isinstance(value, datetime):
        return utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def deal_record(row: Mapping[str, Any], contact_ids: Iterable[str]) -> DealRecord:
    """A ``DealRecord`` from one Opportunity query row."""
    return DealRecord(
        crm_id=row["Id"],
        name=row.get("Name"),
        amount=_decimal(row.get("Amount")),
        currency=row.get("CurrencyIsoCode"),
        stage=row.get("StageName"),
        is_closed=bool(row.get("IsClosed")),
        is_won=bool(row.get("IsWon")),
        close_date=parse_datetime(row.get("CloseDate")),
        updated_at=parse_datetime(row.get("LastModifiedDate")),
        contact_crm_ids=tuple(contact_ids),
        campaign_crm_id=row.get("CampaignId"),
    )


def campaign_record(row: Mapping[str, Any]) -> CampaignRecord:
    """A ``CampaignRecord`` from one Campaign query row (spend = ``ActualCost``)."""
    return CampaignRecord(
        crm_id=row["Id"],
        name=row.get("Name"),
        status=row.get("Status"),
        spend=_decimal(row.get("ActualCost")),
        currency=row.get("CurrencyIsoCode"),
        updated_at=parse_datetime(row.get("LastModifiedDate")),
    )


def parse_datetime(value: str | None) -> datetime | None:
    """An aware datetime from ``2026-11-25T16:45:00.000+0000`` or a date (UTC midnight)."""
    if not value:
        return None
    return utc(datetime.fromisoformat(value))


def custom_field(spec: FieldSpec, *, sobject: str, external_ids: bool) -> dict[str, Any]:
    """Metadata API ``CustomField`` arguments for ``spec`` (``type`` is the FieldType name).

    Unique strings become Text External ID + Unique (64 chars; 128 for wamids). With
    ``external_ids`` False (``SALESFORCE_TASK_UPSERT=0``) message fields stay plain text.
    """
    base: dict[str, Any] = {
        "fullName": f"{sobject}.{api_name(spec.name)}",
        "label": spec.label[:LABEL_MAX],
    }
    if spec.type == "number":
        return {**base, "type": "Number", "precision": 18, "scale": 2}
    if spec.type == "datetime":
        return {**base, "type": "DateTime"}
    if spec.type == "bool":
        return {**base, "type": "Checkbox", "defaultValue": "false"}
    if not spec.unique:
        return {**base, "type": "Text", "length": 255}
    length = 128 if spec.object_type == "message" else 64
    if spec.object_type == "message" and not external_ids:
        return {**base, "type": "Text", "length": length}
    return {
        **base,
        "type": "Text",
        "length": length,
        "externalId": True,
        "unique": True,
        "caseSensitive": False,
    }


def api_name(name: str) -> str:
    """The custom field API name: ``name`` with the ``__c`` suffix."""
    return name if name.endswith("__c") else f"{name}__c"


def utc(value: datetime) -> datetime:
    """``value`` in UTC; naive datetimes are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _decimal(value: float | int | str | None) -> Decimal | None:
    # str() first: json parsed the amount as a float, and Decimal(float) keeps binary noise.
    return None if value is None else Decimal(str(value))
