"""The custom CRM fields the connector writes, and checking a CRM has them right."""

from __future__ import annotations

from crm_adapters.base import CrmAdapter, FieldSpec

# Ids that make every write idempotent; KPI fields from field mappings join these later.
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


def specs_for(adapter: CrmAdapter) -> list[FieldSpec]:
    """Field names as the CRM spells them (Salesforce wants ``__c`` API names)."""
    if adapter.name != "salesforce":
        return list(BASE_FIELDS)
    return [
        FieldSpec(
            object_type=s.object_type,
            name=SALESFORCE_NAMES[s.name],
            label=s.label,
            type=s.type,
            unique=s.unique,
        )
        for s in BASE_FIELDS
    ]


def provision_fields(adapter: CrmAdapter) -> list[str]:
    return adapter.provision_fields(specs_for(adapter))


def check_fields(adapter: CrmAdapter) -> list[str]:
    """One line per field that is missing, of the wrong type, or not unique when it must be."""
    problems: list[str] = []
    for spec in specs_for(adapter):
        found = adapter.describe_fields(spec.object_type).get(spec.name)
        where = f"{spec.object_type}.{spec.name}"
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
