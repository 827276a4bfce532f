"""Campaign reach: recipients, reply rate, click-through (delivery rates and costs are sums
over the traffic ``support`` groups for volume)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, case, exists, func, select, true
from sqlalchemy.orm import aliased

from connector.kpis.query import Query
from connector.kpis.sql import Part, count_if, epoch, percent
from connector.models import Conversation, LinkClick, Message

if TYPE_CHECKING:  # sources materialises what the families read
    from connector.kpis.sources import Sources


def parts(q: Query, src: Sources) -> list[Part]:
    return [_recipients(q, src)]


def sends_select(q: Query) -> Select[Any]:
    """Per (agent, business number, deal, campaign, contact) sent a campaign message in the
    period: its first delivery, and whether the contact then replied within the reply
    window, and whether they clicked the campaign's links (1 or 0).

    The finest grain any scope's recipients need: a scope's (key, campaign, contact) pair
    is delivered at the earliest of its rows' deliveries and replied as that row did.
    """
    c = Conversation
    m, found, wanted = _campaign_messages(q)
    by = [m.agent_id, m.business_number_id, c.deal_id, m.campaign_id, m.contact_id]
    sends = (
        select(*by, func.min(func.coalesce(m.delivered_at, m.read_at)).label("delivered"))
        .select_from(found)
        .outerjoin(c, c.id == m.conversation_id)
        .where(*wanted, q.only(q.message_column(m, c)))
        .group_by(*by)
        .subquery("sends")
    )
    reply = aliased(Message, name="reply")
    window = q.opts.reply_window.total_seconds()
    replied = exists().where(
        reply.contact_id == sends.c.contact_id,
        reply.direction == "inbound",
        reply.sender_kind == "customer",
        reply.timestamp >= sends.c.delivered,
        epoch(reply.timestamp) <= epoch(sends.c.delivered) + window,
    )
    clicked = exists().where(
        LinkClick.contact_id == sends.c.contact_id,
        LinkClick.campaign_id == sends.c.campaign_id,
    )
    return select(
        *sends.c,
        case((and_(sends.c.delivered.is_not(None), replied), 1), else_=0).label("replied"),
        case((clicked, 1), else_=0).label("clicked"),
    )


# Scopes whose key is an indexed column of the message itself.
_INDEXED = {"contact": "contact_id", "campaign": "campaign_id", "agent": "agent_id"}


def _campaign_messages(q: Query) -> tuple[Any, Any, list[Any]]:
    """The campaign messages sent in the period: their columns, what to select them from,
    and the conditions left to apply.

    For a few keys on PostgreSQL, each key's messages through the index on its column
    (one probe per key, kept apart from the outer query by OFFSET 0 so the planner cannot
    flatten it); otherwise the planner would read every campaign message to find them.
    """
    m = Message
    wanted = [m.direction == "outbound", m.campaign_id.is_not(None), q.in_period(m.timestamp)]
    if q.scope == "deal" and q.keyed:
        # A deal's sends are those in its conversations (the key is the conversation's
        # deal), so those conversations' index can lead (not all touched conversations:
        # scopes computed together touch more).
        wanted.append(q.own_conversations(m.conversation_id))
    column = _INDEXED.get(q.scope)
    if not (q.probes and column is not None):
        return m, m, wanted
    picked = (
        select(m.agent_id, m.business_number_id, m.conversation_id, m.campaign_id)
        .add_columns(m.contact_id, m.delivered_at, m.read_at)
        .where(getattr(m, column) == q.keys.c.id, *wanted)
        .offset(0)
        .lateral("campaign_messages")
    )
    return picked.c, q.keys.join(picked, true()), []


def _recipients(q: Query, src: Sources) -> Part:
    """Campaign recipients: one per (campaign, contact) sent a campaign message in the period;
    reply rate and click-through over the delivered ones."""
    s = src.sends
    col = q.conv_column(s)
    key = q.key(col)
    pair = [s.c.campaign_id, s.c.contact_id]
    first = func.min(s.c.delivered).over(partition_by=pair if col is None else [col, *pair])
    ranked = (
        select(key.label("k"), *pair, s.c.delivered, s.c.replied, s.c.clicked, first.label("first"))
        .where(q.only(col))
        .subquery("ranked_sends")
    )
    r = ranked.c
    pairs = (
        select(
            r.k,
            func.max(r.first).label("delivered"),
            func.max(case((r.delivered == r.first, r.replied))).label("replied"),
            func.max(r.clicked).label("clicked"),
        )
        .group_by(r.k, r.campaign_id, r.contact_id)
        .subquery("recipients")
    )
    delivered = pairs.c.delivered.is_not(None)
    stmt = select(
        pairs.c.k,
        func.count(),
        count_if(delivered),
        count_if(and_(delivered, pairs.c.replied == 1)),
        count_if(and_(delivered, pairs.c.clicked == 1)),
    ).group_by(pairs.c.k)
    return Part(stmt, _read_recipients)


def _read_recipients(row: Sequence[Any]) -> dict[str, Any]:
    recipients, delivered, replied, clicked = row
    return {
        "recipients": int(recipients),
        "reply_rate": percent(replied, delivered),
        "ctr": percent(clicked, delivered),
    }
