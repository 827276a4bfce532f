"""The adapter contract every CRM implements (DESIGN §5), with its plain value types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRecord:
    """A contact to upsert, keyed by the WhatsApp id (``key`` doubles as idempotency key)."""

    key: str
    wa_id: str | None
    name: str | None = None
    crm_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """A message to log on the CRM timeline; ``key`` is its wamid."""

    key: str
    contact_crm_id: str
    direction: str
    text: str | None
    timestamp: datetime
    deal_crm_id: str | None = None
    owner_crm_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    key: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """Per-record outcome of one batch: CRM ids for the accepted, the CRM's words for the rest."""

    ok: dict[str, str] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)


class CrmAdapter(Protocol):
    """What the outbox calls; implementations raise only ``crm_adapters.errors`` types."""

    name: ClassVar[str]
    MAX_BATCH: ClassVar[int]

    def upsert_contacts(self, batch: list[ContactRecord]) -> BatchResult: ...

    def log_messages(self, batch: list[MessageRecord]) -> BatchResult: ...

    def write_fields(self, object_type: str, rows: list[dict[str, Any]]) -> BatchResult: ...

    def fetch_deals(self, since: datetime | None) -> list[dict[str, Any]]: ...

    def fetch_campaigns(self, since: datetime | None) -> list[dict[str, Any]]: ...

    def describe_fields(self, object_type: str) -> dict[str, str]: ...

    def provision_fields(self, specs: list[dict[str, Any]]) -> list[str]: ...
