"""CRM adapters behind one Protocol (DESIGN §5). Never imports ``connector``."""

from __future__ import annotations

from crm_adapters.base import (
    BatchResult,
    CallLimiter,
    CampaignRecord,
    ContactRecord,
    CrmAdapter,
    DealRecord,
    FieldInfo,
    FieldSpec,
    FieldWrite,
    MessageRecord,
    NoLimit,
    Rate,
    Rejected,
)
from crm_adapters.errors import AuthExpired, CrmError, Permanent, RateLimited, Transient

# Imported on demand: the SaaS SDKs cost a few hundred ms at start-up.
ADAPTERS: dict[str, str] = {
    "local": "crm_adapters.local:LocalAdapter",
    "hubspot": "crm_adapters.hubspot:HubSpotAdapter",
    "salesforce": "crm_adapters.salesforce:SalesforceAdapter",
}


def get_adapter(name: str) -> type[CrmAdapter]:
    """The adapter class registered under ``name`` (``local`` · ``hubspot`` · ``salesforce``)."""
    import importlib

    try:
        module, _, attr = ADAPTERS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown CRM {name!r}; choose one of {sorted(ADAPTERS)}") from None
    cls: type[CrmAdapter] = getattr(importlib.import_module(module), attr)
    return cls


__all__ = [
    "ADAPTERS",
    "AuthExpired",
    "BatchResult",
    "CallLimiter",
    "CampaignRecord",
    "ContactRecord",
    "CrmAdapter",
    "CrmError",
    "DealRecord",
    "FieldInfo",
    "FieldSpec",
    "FieldWrite",
    "MessageRecord",
    "NoLimit",
    "Permanent",
    "Rate",
    "RateLimited",
    "Rejected",
    "Transient",
    "get_adapter",
]
