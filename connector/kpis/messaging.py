"""Message KPIs: delivery, read and failure rates, costs, and campaign reach and replies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from connector.kpis.query import Query
from connector.kpis.sources import Sources
from connector.kpis.sql import count_if, epoch, percent, put
from connector.kpis.support import traffic_column
from connector.models import Conversation, LinkClick, Message

Result = dict[str, dict[str, Any]]


def compute(q: Query, src: Sources, out: Result | None = None) -> Result:
    out = {} if out is None else out
    _delivery(q, src.traffic, out)
    _recipients(q, out)
    return out


def _delivery(q: Query, t: Any, out: Result) -> None:
    """Over outbound messages sent in the period with any status at all."""
    c = Conversation
    col = traffic_column(q, t)
    key = q.key(col)
    stmt = (
        select(
            key.label("k"),
            func.sum(t.c.sent),
            func.sum(t.c.reached),
            func.sum(t.c.read),
            func.sum(t.c.failed),
            func.sum(t.c.cost),
        )
        .select_from(t)
        .outerjoin(c, c.id == t.c.conversation_id)
        .where(q.only(col))
        .group_by(key)
    )
    for k, sent, reached_n, read, failed, cost in q.session.execute(stmt):
        put(
            out,
            k,
            delivery_rate=percent(reached_n, sent),
            read_rate=percent(read, reached_n),
            failure_rate=percent(failed, sent),
            messaging_cost=round(float(cost or 0), 6),
        )


def _recipients(q: Query, out: Result) -> None:
    """Campaign recipients: one per (campaign, contact) sent a campaign message in the period."""
    m, c = Message, Conversation
    col = q.message_column(m, c)
    key = q.key(col)
    pairs = (
        select(
            key.label("k"),
            m.campaign_id.label("campaign_id"),
            m.contact_id.label("contact_id"),
            func.min(func.coalesce(m.delivered_at, m.read_at)).label("delivered"),
        )
        .select_from(m)
        .outerjoin(c, c.id == m.conversation_id)
        .where(
            m.direction == "outbound",
            m.campaign_id.is_not(None),
            q.in_period(m.timestamp),
            q.only(col),
        )
        .group_by(key, m.campaign_id, m.contact_id)
        .subquery("recipients")
    )
    reply = aliased(Message, name="reply")
    window = q.opts.reply_window.total_seconds()
    replied = exists().where(
        reply.contact_id == pairs.c.contact_id,
        reply.direction == "inbound",
        reply.sender_kind == "customer",
        reply.timestamp >= pairs.c.delivered,
        epoch(reply.timestamp) <= epoch(pairs.c.delivered) + window,
    )
    clicked = exists().where(
        LinkClick.contact_id == pairs.c.contact_id,
        LinkClick.campaign_id == pairs.c.campaign_id,
    )
    delivered = pairs.c.delivered.is_not(None)
    stmt = select(
        pairs.c.k,
        func.count().label("recipients"),
        count_if(delivered).label("delivered"),
        count_if(and_(delivered, replied)).label("replied"),
        count_if(and_(delivered, clicked)).label("clicked"),
    ).group_by(pairs.c.k)
    for k, recipients, delivered_n, replied_n, clicked_n in q.session.execute(stmt):
        put(
            out,
            k,
            recipients=int(recipients),
            reply_rate=percent(replied_n, delivered_n),
            ctr=percent(clicked_n, delivered_n),
        )
