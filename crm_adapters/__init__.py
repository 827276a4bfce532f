"""CRM adapters behind one Protocol. The implementations land with the CRM sync work
(issue 3); this package holds the contract they share and never imports ``connector``."""

from __future__ import annotations

from crm_adapters.base import BatchResult, ContactRecord, CrmAdapter, MessageRecord, Rejected
from crm_adapters.errors import AuthExpired, CrmError, Permanent, RateLimited, Transient

__all__ = [
    "AuthExpired",
    "BatchResult",
    "ContactRecord",
    "CrmAdapter",
    "CrmError",
    "MessageRecord",
    "Permanent",
    "RateLimited",
    "Rejected",
    "Transient",
]
