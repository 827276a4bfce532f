"""The custom CRM fields the connector writes, and checking a CRM has them right."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from connector.mappings import is_duration
from connector.models import FieldMapping
from crm_adapters.base import CrmAdapter, FieldSpec
from crm_adapters.errors import Permanent

# Ids that make every write idempotent; the KPI fields of the field mappings join these.
BASE_FIELDS = (
    FieldSpec(
        object_type="contact",
        name="whatsapp_wa_id",
        label="WhatsApp ID",
        type="string",
        unique=True,
    ),
    FieldSpec(
        object_type="message",
        name="whatsapp_message_id",
        label="WhatsApp message ID",
        type="string",
        unique=True,
    ),
)
SALESFORCE_NAMES = {
    "whatsapp_wa_id": "WhatsApp_Id__c",
    "whatsapp_message_id": "WhatsApp_Message_Id__c",
}


def mapped_fields(rows: Iterable[FieldMapping], crm: str) -> list[FieldSpec]:
    """A number field for each mapping of ``crm`` (one per object and field), disabled ones
    too (``mappings validate`` checks them, and enabling one should not wait for a field);
    names as the mapping spells them (Salesforce mappings give ``__c`` API names)."""
    specs: dict[tuple[str, str], FieldSpec] = {}
    for row in rows:
        if row.crm != crm:
            continue
        label = " ".join(
            part
            for part in ("WhatsApp", row.kpi, row.stat if is_duration(row.kpi) else "", row.period)
            if part and part != "all"
        )
        specs.setdefault(
            (row.object_type, row.field),
            FieldSpec(object_type=row.object_type, name=row.field, label=label, type="number"),
        )
    return list(specs.values())


def specs_for(adapter: CrmAdapter, mapped: Sequence[FieldSpec] = ()) -> list[FieldSpec]:
    """The id fields, named as the CRM spells them (Salesforce wants ``__c`` API names),
    then ``mapped`` (see ``mapped_fields``)."""
    if adapter.name != "salesforce":
        return [*BASE_FIELDS, *mapped]
    return [
        *(
            FieldSpec(
                object_type=s.object_type,
                name=SALESFORCE_NAMES[s.name],
                label=s.label,
                type=s.type,
                unique=s.unique,
            )
            for s in BASE_FIELDS
        ),
        *mapped,
    ]


def provision_fields(adapter: CrmAdapter, mapped: Sequence[FieldSpec] = ()) -> list[str]:
    return adapter.provision_fields(specs_for(adapter, mapped))


def check_fields(adapter: CrmAdapter, mapped: Sequence[FieldSpec] = ()) -> list[str]:
    """One line per field that is missing, of the wrong type, or not unique when it must be."""
    problems: list[str] = []
    for spec in specs_for(adapter, mapped):
        where = f"{spec.object_type}.{spec.name}"
        try:
            found = adapter.describe_fields(spec.object_type).get(spec.name)
        except Permanent as exc:  # e.g. HubSpot campaigns have no properties API
            problems.append(f"cannot check {where}: {exc}")
            continue
        if found is None:
            problems.append(f"missing: {where} ({spec.type}{', unique' if spec.unique else ''})")
        elif spec.unique and not found.unique:
            problems.append(f"not unique: {where}")
        elif not _compatible(spec.type, found.type):
            problems.append(f"mistyped: {where} is {found.type}, expected {spec.type}")
    return problems


def _compatible(wanted: str, actual: str) -> bool:
    aliases = {
        "string": {"string", "text", "textarea", "phone_number", "enumeration", "id"},
        "number": {"number", "double", "currency", "int", "percent"},
        "datetime": {"datetime", "date"},
        "bool": {"bool", "boolean"},
    }
    return actual.lower() in aliases.get(wanted, {wanted})
