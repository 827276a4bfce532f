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

__all__ = [
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
]
