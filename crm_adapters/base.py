"""The adapter contract every CRM implements (DESIGN §5), with its plain value types.

Adapters take and return only these values; they never import ``connector``. Every write
carries an idempotency key derived from WhatsApp ids (``key``) so a retry after an unknown
outcome creates nothing twice. Per-record refusals come back as data in ``BatchResult``;
whole-call failures are raised as ``crm_adapters.errors`` types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, Self


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRecord:
    """A contact to find or create. ``key`` is the wa_id (digits), or ``bsuid:<user_id>``."""

    key: str
    wa_id: str | None
    user_id: str | None = None
    name: str | None = None
    crm_id: str | None = None  # already known: the adapter may skip the lookup


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """A WhatsApp message to log on the contact's CRM timeline; ``key`` is its wamid."""

    key: str
    contact_crm_id: str
    direction: str  # "inbound" | "outbound"
    type: str
    text: str | None
    timestamp: datetime
    sender_kind: str
    conversation_id: int | None = None
    deal_crm_id: str | None = None
    campaign_key: str | None = None
    owner_crm_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldWrite:
    """Values for CRM fields on one record (KPI write-back); the key is ``crm_id``."""

    crm_id: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """One record the CRM refused, with the CRM's own words."""

    key: str
    message: str
    code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """Per-record outcome of one batch: CRM ids for the accepted, the CRM's words for the rest."""

    ok: Mapping[str, str] = field(default_factory=dict)
    rejected: tuple[Rejected, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DealRecord:
    """A deal/opportunity pulled from the CRM (attribution and conversion need these)."""

    crm_id: str
    name: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    stage: str | None = None
    is_closed: bool = False
    is_won: bool = False
    close_date: datetime | None = None
    updated_at: datetime | None = None
    contact_crm_ids: tuple[str, ...] = ()
    campaign_crm_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRecord:
    crm_id: str
    name: str | None = None
    status: str | None = None
    spend: Decimal | None = None
    currency: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """A custom field the connector writes. ``object_type``: contact · deal · campaign · message."""

    object_type: str
    name: str
    label: str
    type: str  # "string" · "number" · "datetime" · "bool"
    unique: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldInfo:
    name: str
    type: str
    unique: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """A published limit: ``calls`` per ``seconds`` for one bucket."""

    calls: int
    seconds: float


class CallLimiter(Protocol):
    """Shared by every worker process of one CRM account (connector provides it)."""

    def acquire(self, bucket: str, weight: int = 1) -> None:
        """Block until ``weight`` calls are allowed, or raise ``RateLimited``."""


class NoLimit:
    """A limiter that never waits (tests, and CRMs without published limits)."""

    def acquire(self, bucket: str, weight: int = 1) -> None:
        return None


class CrmAdapter(Protocol):
    """What the outbox calls; implementations raise only ``crm_adapters.errors`` types."""

    name: ClassVar[str]
    MAX_BATCH: ClassVar[int]

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, limiter: CallLimiter) -> Self: ...

    def rate_limits(self) -> dict[str, Rate]: ...

    def refresh_auth(self) -> None: ...

    def upsert_contacts(self, batch: list[ContactRecord]) -> BatchResult: ...

    def log_messages(self, batch: list[MessageRecord]) -> BatchResult: ...

    def write_fields(self, object_type: str, rows: list[FieldWrite]) -> BatchResult: ...

    def fetch_deals(self, since: datetime | None) -> list[DealRecord]: ...

    def fetch_campaigns(self, since: datetime | None) -> list[CampaignRecord]: ...

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]: ...

    def provision_fields(self, specs: list[FieldSpec]) -> list[str]: ...
