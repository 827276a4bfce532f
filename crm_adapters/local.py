"""The built-in CRM: records kept in the connector's own database, so everything runs with
no account. It honours the same contract as the SaaS adapters (batches, idempotent keys)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Self

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from crm_adapters.base import (
    BatchResult,
    CallLimiter,
    CampaignRecord,
    ContactRecord,
    DealRecord,
    FieldInfo,
    FieldSpec,
    FieldWrite,
    MessageRecord,
    Rate,
    Rejected,
)

metadata = MetaData()

contacts = Table(
    "local_crm_contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(160), nullable=False, unique=True),
    Column("wa_id", String(32)),
    Column("user_id", String(128)),
    Column("name", String(256)),
    Column("fields", JSON, nullable=False, default=dict),
    Column("created_at", DateTime, nullable=False),
)
messages = Table(
    "local_crm_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(256), nullable=False, unique=True),
    Column("contact_id", Integer, nullable=False),
    Column("direction", String(8), nullable=False),
    Column("type", String(32), nullable=False),
    Column("text", Text),
    Column("timestamp", DateTime, nullable=False),
    Column("sender_kind", String(16), nullable=False),
    Column("deal_id", String(128)),
    Column("campaign_key", String(128)),
    Column("created_at", DateTime, nullable=False),
)
deals = Table(
    "local_crm_deals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(256)),
    Column("amount", Numeric(18, 2)),
    Column("currency", String(8)),
    Column("stage", String(128)),
    Column("is_closed", Boolean, nullable=False, default=False),
    Column("is_won", Boolean, nullable=False, default=False),
    Column("close_date", DateTime),
    Column("contact_ids", JSON, nullable=False, default=list),
    Column("fields", JSON, nullable=False, default=dict),
    Column("updated_at", DateTime, nullable=False),
)
campaigns = Table(
    "local_crm_campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(256)),
    Column("status", String(64)),
    Column("spend", Numeric(18, 2)),
    Column("fields", JSON, nullable=False, default=dict),
    Column("updated_at", DateTime, nullable=False),
)
# Users (agents' records): keyed by the id an agent is linked with; a write creates the
# user (the connector is this CRM, so there is no other place to create them).
users = Table(
    "local_crm_users",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("fields", JSON, nullable=False, default=dict),
    Column("updated_at", DateTime, nullable=False),
)
custom_fields = Table(
    "local_crm_fields",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("object_type", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("type", String(16), nullable=False),
    Column("is_unique", Boolean, nullable=False, default=False),
    UniqueConstraint("object_type", "name", name="uq_local_crm_fields_name"),
)

_RECORD_TABLES = {"contact": contacts, "deal": deals, "campaign": campaigns}
BUILTIN_FIELDS = {
    "contact": {"wa_id": "string", "name": "string"},
    "deal": {"name": "string", "amount": "number", "stage": "string"},
    "campaign": {"name": "string", "spend": "number"},
    "message": {"key": "string", "text": "string"},
    "user": {},
}


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values as JSON keeps them (decimals and datetimes as text)."""
    return dict(json.loads(json.dumps(dict(values), default=str)))


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value else None


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value else None


class LocalAdapter:
    """CRM records in local tables; ids are the tables' integer keys as strings."""

    name: ClassVar[str] = "local"
    MAX_BATCH: ClassVar[int] = 500

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, limiter: CallLimiter) -> Self:
        url = env.get("WACRM_DATABASE_URL", "sqlite:///wacrm.db")
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return cls(create_engine(url))

    def rate_limits(self) -> dict[str, Rate]:
        return {}

    def refresh_auth(self) -> None:
        return None

    def _insert(self) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert

    def _insert_keyed(
        self, table: Table, rows: list[dict[str, Any]], keys: list[str]
    ) -> dict[str, str]:
        """Insert rows new by ``key`` (a retry inserts nothing) and return key → id."""
        with self.engine.begin() as conn:
            if rows:
                conn.execute(
                    self._insert()(table)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["key"])
                )
            found = conn.execute(select(table.c.key, table.c.id).where(table.c.key.in_(keys)))
            return {key: str(row_id) for key, row_id in found}

    def upsert_contacts(self, batch: list[ContactRecord]) -> BatchResult:
        """Create missing contacts by key; existing ones keep their id (idempotent)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [
            {
                "key": r.key,
                "wa_id": r.wa_id,
                "user_id": r.user_id,
                "name": r.name,
                "fields": {},
                "created_at": now,
            }
            for r in batch
        ]
        ids = self._insert_keyed(contacts, rows, [r.key for r in batch])
        return BatchResult(ok={r.key: ids[r.key] for r in batch if r.key in ids})

    def log_messages(self, batch: list[MessageRecord]) -> BatchResult:
        """One row per wamid: a retry finds the row it wrote before."""
        now = datetime.now(UTC).replace(tzinfo=None)
        good = [m for m in batch if m.contact_crm_id.isdigit()]
        rows = [
            {
                "key": m.key,
                "contact_id": int(m.contact_crm_id),
                "direction": m.direction,
                "type": m.type,
                "text": m.text,
                "timestamp": _naive(m.timestamp),
                "sender_kind": m.sender_kind,
                "deal_id": m.deal_crm_id,
                "campaign_key": m.campaign_key,
                "created_at": now,
            }
            for m in good
        ]
        found = self._insert_keyed(messages, rows, [m.key for m in good])
        rejected = tuple(
            Rejected(key=m.key, message="unknown contact id", code="INVALID_ID")
            for m in batch
            if m not in good
        )
        return BatchResult(ok=found, rejected=rejected)

    def write_fields(self, object_type: str, rows: list[FieldWrite]) -> BatchResult:
        if object_type == "user":
            return self._write_users(rows)
        table = _RECORD_TABLES.get(object_type)
        if table is None:
            return BatchResult(
                rejected=tuple(
                    Rejected(
                        key=r.crm_id, message=f"no object {object_type!r}", code="INVALID_TYPE"
                    )
                    for r in rows
                )
            )
        ok: dict[str, str] = {}
        rejected: list[Rejected] = []
        with self.engine.begin() as conn:
            for row in rows:
                current = (
                    conn.execute(
                        select(table.c.fields).where(table.c.id == int(row.crm_id))
                    ).scalar()
                    if row.crm_id.isdigit()
                    else None
                )
                if current is None:
                    rejected.append(
                        Rejected(key=row.crm_id, message="record not found", code="NOT_FOUND")
                    )
                    continue
                merged = {**current, **_plain(row.values)}
                conn.execute(
                    table.update().where(table.c.id == int(row.crm_id)).values(fields=merged)
                )
                ok[row.crm_id] = row.crm_id
        return BatchResult(ok=ok, rejected=tuple(rejected))

    def _write_users(self, rows: list[FieldWrite]) -> BatchResult:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            for row in rows:
                current = conn.execute(
                    select(users.c.fields).where(users.c.id == row.crm_id)
                ).scalar()
                merged = {**(current or {}), **_plain(row.values)}
                if current is None:
                    conn.execute(
                        users.insert().values(id=row.crm_id, fields=merged, updated_at=now)
                    )
                else:
                    conn.execute(
                        users.update()
                        .where(users.c.id == row.crm_id)
                        .values(fields=merged, updated_at=now)
                    )
        return BatchResult(ok={r.crm_id: r.crm_id for r in rows})

    def fetch_deals(self, since: datetime | None) -> list[DealRecord]:
        stmt = select(deals)
        if since is not None:
            stmt = stmt.where(deals.c.updated_at >= _naive(since))
        with self.engine.connect() as conn:
            return [
                DealRecord(
                    crm_id=str(r.id),
                    name=r.name,
                    amount=Decimal(r.amount) if r.amount is not None else None,
                    currency=r.currency,
                    stage=r.stage,
                    is_closed=r.is_closed,
                    is_won=r.is_won,
                    close_date=_aware(r.close_date),
                    updated_at=_aware(r.updated_at),
                    contact_crm_ids=tuple(str(c) for c in r.contact_ids),
                )
                for r in conn.execute(stmt.order_by(deals.c.id))
            ]

    def fetch_campaigns(self, since: datetime | None) -> list[CampaignRecord]:
        stmt = select(campaigns)
        if since is not None:
            stmt = stmt.where(campaigns.c.updated_at >= _naive(since))
        with self.engine.connect() as conn:
            return [
                CampaignRecord(
                    crm_id=str(r.id),
                    name=r.name,
                    status=r.status,
                    spend=Decimal(r.spend) if r.spend is not None else None,
                    updated_at=_aware(r.updated_at),
                )
                for r in conn.execute(stmt.order_by(campaigns.c.id))
            ]

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        fields = {
            n: FieldInfo(name=n, type=t) for n, t in BUILTIN_FIELDS.get(object_type, {}).items()
        }
        with self.engine.connect() as conn:
            for r in conn.execute(
                select(custom_fields).where(custom_fields.c.object_type == object_type)
            ):
                fields[r.name] = FieldInfo(name=r.name, type=r.type, unique=r.is_unique)
        return fields

    def provision_fields(self, specs: list[FieldSpec]) -> list[str]:
        created: list[str] = []
        with self.engine.begin() as conn:
            for spec in specs:
                result = conn.execute(
                    self._insert()(custom_fields)
                    .values(
                        object_type=spec.object_type,
                        name=spec.name,
                        type=spec.type,
                        is_unique=spec.unique,
                    )
                    .on_conflict_do_nothing()
                    .returning(custom_fields.c.id)
                )
                if result.first() is not None:
                    created.append(spec.name)
        return created
