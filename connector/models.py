"""SQLAlchemy 2 typed ORM models (DESIGN §3). Times are stored as naive UTC, read as aware UTC."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for volume.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database, identical on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    REJECTED = "rejected"
    FAILED = "failed"


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ResolvedBy(enum.StrEnum):
    AGENT = "agent"
    API = "api"
    CRM = "crm"
    TIMEOUT = "timeout"


class SenderKind(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    CAMPAIGN = "campaign"
    SYSTEM = "system"
    UNKNOWN = "unknown"
    SURVEY = "survey"


class WebhookEvent(Base):
    """The inbox: every accepted webhook body, committed before it is acknowledged."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str | None] = mapped_column(String(128))
    headers: Mapped[dict[str, Any] | None]
    signature_valid: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    item_errors: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]


class Contact(Base):
    """A customer, matchable by phone-based wa_id or by Meta's business-scoped user id."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wa_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    parent_user_id: Mapped[str | None] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(256))
    name_seen_at: Mapped[datetime | None]
    marketing_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    preference_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agent(Base):
    """A human agent or bot; ``external_id`` is what the API and the CRM call it."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)


class Campaign(Base):
    """A campaign: ``key`` is what the API calls it; ``crm_id`` links a CRM campaign."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    crm: Mapped[str | None] = mapped_column(String(32))
    crm_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str | None] = mapped_column(String(64))
    spend: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime | None]
    # Click-to-WhatsApp ad ids / referral source ids that mean "this campaign".
    source_ids: Mapped[list[str] | None] = mapped_column(JSON)
    template_name: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime | None]


class Deal(Base):
    """A deal/opportunity; ``key`` is its CRM id (pulled) or what the API tagged."""

    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    crm: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str | None] = mapped_column(String(8))
    stage: Mapped[str | None] = mapped_column(String(128))
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    close_date: Mapped[datetime | None]
    won_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


class Conversation(Base):
    """A support/sales thread with one contact on one business number (DESIGN §4)."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index(
            "ix_conversations_contact_number_opened",
            "contact_id",
            "business_number_id",
            "opened_at",
        ),
        Index("ix_conversations_status_last", "status", "last_message_at"),
        Index("ix_conversations_agent", "agent_id"),
        Index("ix_conversations_campaign", "campaign_id"),
        Index("ix_conversations_deal", "deal_id"),
        Index("ix_conversations_resolved", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    business_number_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.OPEN)
    initiated_by: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    last_message_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    # Why the conversation carries its campaign tag (explicit · ctwa_referral · template ·
    # campaign_send · link_click) and its deal tag (explicit · crm · single_open_deal).
    attribution_source: Mapped[str | None] = mapped_column(String(32))
    deal_source: Mapped[str | None] = mapped_column(String(32))
    referral: Mapped[dict[str, Any] | None]
    # Bot → human handoff (frt_human starts at the later of this and the first inbound).
    handoff_at: Mapped[datetime | None]
    # FCR: a conversation moved between agents is not resolved on first contact.
    transfers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pricing_conversation_id: Mapped[str | None] = mapped_column(String(128))
    pricing_category: Mapped[str | None] = mapped_column(String(32))

    contact: Mapped[Contact] = relationship(lazy="joined")
    campaign: Mapped[Campaign | None] = relationship(lazy="joined")
    deal: Mapped[Deal | None] = relationship(lazy="joined")


class Message(Base):
    """One WhatsApp message either way; ``timestamp`` is when it was sent, by its own clock."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_ts", "conversation_id", "timestamp"),
        Index("ix_messages_contact_ts", "contact_id", "timestamp"),
        Index("ix_messages_campaign", "campaign_id"),
        Index("ix_messages_agent", "agent_id"),
        # A contact's campaign sends (KPI recipients and reply rate): a few per contact,
        # where the contact index would fetch every message of theirs.
        Index(
            "ix_messages_campaign_sends",
            "contact_id",
            "timestamp",
            postgresql_where=text("campaign_id IS NOT NULL AND direction = 'outbound'"),
            sqlite_where=text("campaign_id IS NOT NULL AND direction = 'outbound'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wamid: Mapped[str] = mapped_column(String(256), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    business_number_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    media: Mapped[dict[str, Any] | None]
    sender_kind: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    is_template: Mapped[bool] = mapped_column(Boolean, default=False)
    timestamp: Mapped[datetime]
    status: Mapped[str | None] = mapped_column(String(16))
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(Text)
    pricing_category: Mapped[str | None] = mapped_column(String(32))
    pricing_model: Mapped[str | None] = mapped_column(String(16))
    billable: Mapped[bool | None] = mapped_column(Boolean)
    # Price of a billable message from the rate card, in the account currency.
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    referral: Mapped[dict[str, Any] | None]
    reply_to_wamid: Mapped[str | None] = mapped_column(String(256))
    forwarded: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageStatusEvent(Base):
    """Every (wamid, status) WhatsApp reported, even before the message itself is known."""

    __tablename__ = "message_status_events"
    __table_args__ = (UniqueConstraint("wamid", "status", name="uq_message_status_events_wamid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wamid: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    raw_status: Mapped[str] = mapped_column(String(32))
    timestamp: Mapped[datetime]
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(Text)
    pricing_category: Mapped[str | None] = mapped_column(String(32))
    pricing_model: Mapped[str | None] = mapped_column(String(16))
    billable: Mapped[bool | None] = mapped_column(Boolean)
    conversation_ref: Mapped[str | None] = mapped_column(String(128))
    conversation_origin: Mapped[str | None] = mapped_column(String(32))
    webhook_event_id: Mapped[int | None] = mapped_column(BigInteger)


class SchedulerLease(Base):
    """Who runs the periodic jobs: exactly one holder at a time across processes."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    DEAD = "dead"


class OutboxOp(Base):
    """One CRM write, committed with the data it comes from; idempotent by ``record_key``."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("crm", "operation", "record_key", name="uq_outbox_crm_op_key"),
        Index("ix_outbox_due", "status", "crm", "operation", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    crm: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(32))
    record_key: Mapped[str] = mapped_column(String(256))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    crm_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class CrmLink(Base):
    """Which CRM record a local contact, message, deal or campaign is."""

    __tablename__ = "crm_links"
    __table_args__ = (
        UniqueConstraint("crm", "kind", "local_id", name="uq_crm_links_local"),
        Index("ix_crm_links_crm_id", "crm", "kind", "crm_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    crm: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    local_id: Mapped[int] = mapped_column(BigInteger)
    crm_id: Mapped[str] = mapped_column(String(128))
    synced_at: Mapped[datetime]


class RateBucket(Base):
    """A token bucket shared by every worker process that calls one CRM account."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class SyncCursor(Base):
    """Where the last pull from a CRM got to (``fetch_deals(since)``)."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[datetime]


class DealContact(Base):
    __tablename__ = "deal_contacts"
    __table_args__ = (Index("ix_deal_contacts_contact", "contact_id"),)

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)


class AgentPresence(Base):
    """When an agent was available; ``ended_at`` is None while they still are."""

    __tablename__ = "agent_presence"
    __table_args__ = (Index("ix_agent_presence_agent_started", "agent_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class TrackedLink(Base):
    """A short link ``/r/<token>`` that records a click and redirects to ``url``."""

    __tablename__ = "tracked_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkClick(Base):
    __tablename__ = "link_clicks"
    __table_args__ = (Index("ix_link_clicks_contact_clicked", "contact_id", "clicked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("tracked_links.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    clicked_at: Mapped[datetime]
    user_agent: Mapped[str | None] = mapped_column(String(512))


class Survey(Base):
    """A CSAT or NPS question sent after a conversation resolved."""

    __tablename__ = "surveys"
    __table_args__ = (
        UniqueConstraint("conversation_id", "kind", name="uq_surveys_conv_kind"),
        Index("ix_surveys_wamid", "wamid"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(8))
    scale: Mapped[int] = mapped_column(Integer)
    wamid: Mapped[str | None] = mapped_column(String(256))
    sent_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(Text)


class SurveyResponse(Base):
    """One answer per (conversation, kind); a later answer replaces an earlier one."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("conversation_id", "kind", name="uq_survey_responses_conv_kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    scale: Mapped[int] = mapped_column(Integer)
    answered_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    wamid: Mapped[str | None] = mapped_column(String(256))


class FieldMapping(Base):
    """Which KPI of which scope lands in which CRM field, and how it is transformed."""

    __tablename__ = "field_mappings"
    __table_args__ = (
        UniqueConstraint("crm", "scope", "object_type", "field", name="uq_field_mappings_target"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kpi: Mapped[str] = mapped_column(String(64))
    stat: Mapped[str] = mapped_column(String(16), default="mean")
    scope: Mapped[str] = mapped_column(String(16))
    crm: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(128))
    transform: Mapped[str] = mapped_column(String(32), default="none")
    period: Mapped[str] = mapped_column(String(16), default="all")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KpiValue(Base):
    """The last computed value of one KPI for one scope and period."""

    __tablename__ = "kpi_values"
    __table_args__ = (
        UniqueConstraint("scope", "scope_id", "kpi", "period", name="uq_kpi_values_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(128))
    kpi: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any] | None]
    computed_at: Mapped[datetime]


class CrmFieldWrite(Base):
    """The last value a CRM accepted for one field of one record: unchanged values are skipped."""

    __tablename__ = "crm_field_writes"
    __table_args__ = (
        UniqueConstraint("crm", "object_type", "crm_id", "field", name="uq_crm_field_writes_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    crm: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(64))
    crm_id: Mapped[str] = mapped_column(String(128))
    field: Mapped[str] = mapped_column(String(128))
    value: Mapped[str | None] = mapped_column(Text)
    written_at: Mapped[datetime]


class KpiDirty(Base):
    """A scope whose KPIs may have changed since the last scheduled recompute."""

    __tablename__ = "kpi_dirty"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    touched_at: Mapped[datetime]
