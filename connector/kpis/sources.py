"""The per-conversation and per-sender aggregates every scope's KPIs are read from.

Three relations carry everything the support and message KPIs need from ``messages``:

- ``facts``: per conversation, its first inbound, first outbound and first human message,
  how many human messages and agents, and which agent sent the first human message;
- ``replies``: every customer wait ended by a human reply (start, end, replying agent);
- ``traffic``: message counts, statuses and cost in the period per (conversation, agent,
  campaign, contact, business number).

For one scope and a few ids they are subqueries restricted to the touched conversations.
For a full recompute they are materialised once as temporary tables (and analysed on
PostgreSQL) and every scope aggregates from them, so ``messages`` is read three times in
total instead of several times per scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    func,
    select,
    text,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import FromClause

from connector.kpis.query import Query
from connector.kpis.sql import count_if
from connector.models import Message, UTCDateTime

# Survey questions/answers and Meta's system notices are not part of the conversation.
CONVERSATIONAL = ("customer", "agent", "bot", "campaign", "unknown")


def conversational() -> Any:
    return Message.sender_kind.in_(CONVERSATIONAL)


def _when(cond: Any, value: Any) -> Any:
    return case((cond, value))


def facts_select(q: Query) -> Select[Any]:
    m = Message
    inbound, outbound, human = (
        m.direction == "inbound",
        m.direction == "outbound",
        m.sender_kind == "agent",
    )
    per_conv = (
        select(
            m.conversation_id.label("cid"),
            func.min(_when(inbound, m.timestamp)).label("first_in"),
            func.min(_when(outbound, m.timestamp)).label("first_out"),
            func.min(_when(human, m.timestamp)).label("first_human"),
            count_if(human).label("humans"),
            func.count(func.distinct(_when(human, m.agent_id))).label("human_agents"),
        )
        .where(m.conversation_id.is_not(None), conversational(), q.conversations(m.conversation_id))
        .group_by(m.conversation_id)
        .subquery("per_conv")
    )
    ranked = (
        select(
            m.conversation_id.label("cid"),
            m.agent_id.label("agent_id"),
            func.row_number()
            .over(partition_by=m.conversation_id, order_by=(m.timestamp, m.id))
            .label("rn"),
        )
        .where(m.sender_kind == "agent", q.conversations(m.conversation_id))
        .subquery("ranked_humans")
    )
    return select(*per_conv.c, ranked.c.agent_id.label("first_human_agent")).outerjoin(
        ranked, and_(ranked.c.cid == per_conv.c.cid, ranked.c.rn == 1)
    )


def replies_select(q: Query) -> Select[Any]:
    """A wait starts at the first customer message after a business message (or the start)
    and ends at the next business message; only waits a human ended are kept."""
    m = Message
    numbered = (
        select(
            m.conversation_id.label("cid"),
            m.timestamp.label("ts"),
            m.direction.label("direction"),
            m.sender_kind.label("kind"),
            m.agent_id.label("agent_id"),
            func.sum(func.coalesce(_when(m.direction == "outbound", 1), 0))
            .over(partition_by=m.conversation_id, order_by=(m.timestamp, m.id), rows=(None, 0))
            .label("g"),
        )
        .where(m.conversation_id.is_not(None), conversational(), q.conversations(m.conversation_id))
        .subquery("numbered")
    )
    waits = (
        select(numbered.c.cid, numbered.c.g, func.min(numbered.c.ts).label("start"))
        .where(numbered.c.direction == "inbound")
        .group_by(numbered.c.cid, numbered.c.g)
        .subquery("waits")
    )
    ends = aliased(numbered, name="ends")
    return (
        select(
            waits.c.cid,
            ends.c.agent_id,
            waits.c.start,
            ends.c.ts.label("end"),
        )
        .select_from(waits)
        .join(ends, and_(ends.c.cid == waits.c.cid, ends.c.g == waits.c.g + 1))
        .where(ends.c.direction == "outbound", ends.c.kind == "agent")
    )


def traffic_select(q: Query) -> Select[Any]:
    m = Message
    outbound = m.direction == "outbound"
    sent = and_(outbound, m.status.is_not(None))
    return (
        select(
            m.conversation_id,
            m.agent_id,
            m.campaign_id,
            m.contact_id,
            m.business_number_id,
            count_if(m.direction == "inbound").label("inbound"),
            count_if(outbound).label("outbound"),
            count_if(sent).label("sent"),
            count_if(and_(sent, func.coalesce(m.delivered_at, m.read_at).is_not(None))).label(
                "reached"
            ),
            count_if(and_(outbound, m.read_at.is_not(None))).label("read"),
            count_if(and_(outbound, m.failed_at.is_not(None))).label("failed"),
            func.sum(_when(outbound, m.cost)).label("cost"),
        )
        .where(conversational(), q.in_period(m.timestamp), q.conversations(m.conversation_id))
        .group_by(m.conversation_id, m.agent_id, m.campaign_id, m.contact_id, m.business_number_id)
    )


@dataclass(frozen=True, slots=True)
class Sources:
    facts: FromClause
    replies: FromClause
    traffic: FromClause

    @classmethod
    def inline(cls, q: Query) -> Sources:
        return cls(
            facts=facts_select(q).subquery("facts"),
            replies=replies_select(q).subquery("replies"),
            traffic=traffic_select(q).subquery("traffic"),
        )


_TEMP = MetaData()
_ID = BigInteger().with_variant(Integer(), "sqlite")
_TABLES = {
    "facts": Table(
        "kpi_facts",
        _TEMP,
        Column("cid", _ID, primary_key=True),
        Column("first_in", UTCDateTime()),
        Column("first_out", UTCDateTime()),
        Column("first_human", UTCDateTime()),
        Column("humans", Integer),
        Column("human_agents", Integer),
        Column("first_human_agent", _ID),
        prefixes=["TEMPORARY"],
    ),
    "replies": Table(
        "kpi_replies",
        _TEMP,
        Column("cid", _ID, index=True),
        Column("agent_id", _ID),
        Column("start", UTCDateTime()),
        Column("end", UTCDateTime()),
        prefixes=["TEMPORARY"],
    ),
    "traffic": Table(
        "kpi_traffic",
        _TEMP,
        Column("conversation_id", _ID, index=True),
        Column("agent_id", _ID),
        Column("campaign_id", _ID),
        Column("contact_id", _ID),
        Column("business_number_id", String(64)),
        Column("inbound", Integer),
        Column("outbound", Integer),
        Column("sent", Integer),
        Column("reached", Integer),
        Column("read", Integer),
        Column("failed", Integer),
        Column("cost", Float),
        prefixes=["TEMPORARY"],
    ),
}
_SELECTS = {"facts": facts_select, "replies": replies_select, "traffic": traffic_select}


def materialize(session: Session, q: Query) -> Sources:
    """Fill the temporary tables for ``q``'s period (all conversations); see ``drop``."""
    conn = session.connection()
    drop(session)
    for name, table in _TABLES.items():
        table.create(conn)
        stmt = _SELECTS[name](q)
        conn.execute(table.insert().from_select([c.name for c in table.c], stmt))
        if conn.dialect.name == "postgresql":
            # Autovacuum never analyses temporary tables; the planner needs row counts.
            conn.execute(text(f"ANALYZE {table.name}"))
    return Sources(**_TABLES)


def drop(session: Session) -> None:
    conn = session.connection()
    for table in _TABLES.values():
        table.drop(conn, checkfirst=True)
