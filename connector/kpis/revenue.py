"""Revenue KPIs: conversion, attributed revenue (last/first-touch, linear), CPA, retention.

A won deal's touches are the conversations of its contacts opened within
``attribution_window`` before it was won. Last-touch credits the latest touch with the
whole amount, first-touch the earliest, linear splits it evenly. A deal with no touch in
the window is not attributed to anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, case, exists, func, literal, or_, select, union
from sqlalchemy.orm import aliased
from sqlalchemy.sql import FromClause

from connector.kpis.options import Period
from connector.kpis.query import SCOPE_COLUMNS, Query
from connector.kpis.sql import Part, epoch, percent
from connector.models import Campaign, Conversation, Deal, DealContact, Message

if TYPE_CHECKING:  # sources materialises what the families read
    from connector.kpis.sources import Sources


def parts(q: Query, src: Sources) -> list[Part]:
    """Attributed revenue and new customers, spend, retention (conversion is a count over
    the materialised conversations: ``support``)."""
    found = [_attributed(q, src), _spend(q), _retention(q)]
    return [part for part in found if part is not None]


def won_at() -> Any:
    return func.coalesce(Deal.won_at, Deal.close_date)


def won_after(c: Any, window: float) -> list[Any]:
    """A won deal of ``c``'s contact within ``window`` seconds of ``c``'s opening."""
    return [
        DealContact.contact_id == c.contact_id,
        Deal.id == DealContact.deal_id,
        Deal.is_won.is_(True),
        won_at() >= c.opened_at,
        epoch(won_at()) <= epoch(c.opened_at) + window,
    ]


def won_by_contact() -> Any:
    """Per contact with a won deal, the epochs its deals were won at (an array: a contact
    has a few), to hash-join a few conversations to (``won_within``)."""
    return (
        select(
            DealContact.contact_id.label("contact_id"),
            func.array_agg(epoch(won_at())).label("won"),
        )
        .where(Deal.id == DealContact.deal_id, Deal.is_won.is_(True))
        .group_by(DealContact.contact_id)
        .subquery("won_contacts")
    )


def won_within(won: Any, c: Any, window: float) -> Any:
    """``won_after`` through ``won_by_contact`` joined on ``c``'s contact: one of its won
    epochs within ``window`` seconds of ``c``'s opening (PostgreSQL)."""
    at = func.unnest(won.c.won).table_valued("at").render_derived()
    opened = epoch(c.opened_at)
    found = exists().select_from(at).where(at.c.at >= opened, at.c.at <= opened + window)
    return and_(won.c.won.is_not(None), found)


def touches(q: Query, convs: FromClause | None = None) -> Any:
    """(won deal, amount, won at, the touch conversation's scope columns, weight,
    is-primary) for deals won in the period; ``convs``: a table of the touched
    conversations with their contacts, read instead of probing each conversation."""
    t = aliased(Conversation, name="touch")
    window = q.opts.attribution_window.total_seconds()
    model = q.opts.attribution_model
    order = (
        (t.opened_at.asc(), t.id.asc())
        if model == "first_touch"
        else (t.opened_at.desc(), t.id.desc())
    )
    won = won_at()
    deals = [Deal.is_won.is_(True)]
    source: Any = Deal
    if q.keyed and not q.everything:
        # Only deals of the contacts whose conversations can be credited here; each keeps
        # all its touches, so the ranking is the same as over every deal.
        contacts = (
            select(Conversation.contact_id).where(q.conversations(Conversation.id))
            if convs is None
            else select(convs.c.contact_id)
        )
        linked = select(DealContact.deal_id).where(DealContact.contact_id.in_(contacts))
        if q.lookups:
            # Fenced (OFFSET 0): found first, then each deal probed; left to itself the
            # planner ranks every won deal's touches and only then keeps the wanted ones.
            wanted = linked.distinct().offset(0).subquery("wanted_deals")
            source = wanted.join(Deal, Deal.id == wanted.c.deal_id)
        else:
            deals.append(Deal.id.in_(linked))
    ranked = (
        select(
            Deal.id.label("won_deal"),
            Deal.amount.label("amount"),
            won.label("won"),
            *(getattr(t, name).label(name) for name in SCOPE_COLUMNS),
            func.row_number().over(partition_by=Deal.id, order_by=order).label("rn"),
            func.count().over(partition_by=Deal.id).label("n"),
        )
        .select_from(source)
        .join(DealContact, DealContact.deal_id == Deal.id)
        .join(t, t.contact_id == DealContact.contact_id)
        .where(
            *deals,
            q.in_period(won),
            t.opened_at <= won,
            epoch(t.opened_at) >= epoch(won) - window,
        )
        .subquery("ranked")
    )
    weight = (1.0 / ranked.c.n) if model == "linear" else literal(1.0)
    credited = ranked.c.rn == 1 if model != "linear" else literal(True)
    return (
        select(
            ranked.c.won_deal,
            ranked.c.amount,
            ranked.c.won,
            *(ranked.c[name] for name in SCOPE_COLUMNS),
            weight.label("weight"),
            (ranked.c.rn == 1).label("primary"),
        )
        .where(credited)
        .subquery("touches")
    )


def touches_select(q: Query, convs: FromClause | None = None) -> Select[Any]:
    """Per credited touch: its conversation's scope columns, the amount credited to it, and
    its contact when it makes a new customer (the primary touch of the contact's first
    won deal); ``convs`` as for ``touches``."""
    tt = touches(q, convs)
    earlier = aliased(Deal, name="earlier")
    earlier_link = aliased(DealContact, name="earlier_link")
    first_win = ~exists().where(
        earlier_link.contact_id == tt.c.contact_id,
        earlier.id == earlier_link.deal_id,
        earlier.is_won.is_(True),
        or_(
            func.coalesce(earlier.won_at, earlier.close_date) < tt.c.won,
            and_(
                func.coalesce(earlier.won_at, earlier.close_date) == tt.c.won,
                earlier.id < tt.c.won_deal,
            ),
        ),
    )
    return select(
        *(tt.c[name] for name in SCOPE_COLUMNS),
        (func.coalesce(tt.c.amount, 0) * tt.c.weight).label("credit"),
        case((and_(tt.c.primary, first_win), tt.c.contact_id)).label("new_customer"),
    )


def _attributed(q: Query, src: Sources) -> Part:
    t = src.touches
    col = q.conv_column(t)
    key = q.key(col)
    stmt = (
        select(key.label("k"), func.sum(t.c.credit), func.count(func.distinct(t.c.new_customer)))
        .where(q.only(col))
        .group_by(key)
    )
    return Part(stmt, _read_attributed)


def _read_attributed(row: Sequence[Any]) -> dict[str, Any]:
    revenue, new_customers = row
    return {
        "attributed_revenue": round(float(revenue or 0), 2),
        "new_customers": int(new_customers or 0),
    }


def _spend(q: Query) -> Part | None:
    """Campaign spend counts where the campaign was active in the period (sent or tagged)."""
    if q.scope not in ("account", "campaign"):
        return None
    m, c = Message, Conversation
    key = q.key(Campaign.id)
    stmt = (
        select(key.label("k"), func.sum(func.coalesce(Campaign.spend, 0)))
        .select_from(Campaign)
        .where(q.only(Campaign.id))
        .group_by(key)
    )
    if q.keyed:
        # A few campaigns: a probe of each one's index, not every campaign's messages.
        sent = exists().where(m.campaign_id == Campaign.id, q.in_period(m.timestamp))
        tagged = exists().where(c.campaign_id == Campaign.id, q.in_period(c.opened_at))
        return Part(stmt.where(or_(sent, tagged)), _read_spend)
    active = union(
        select(m.campaign_id.label("cid")).where(
            m.campaign_id.is_not(None), q.in_period(m.timestamp)
        ),
        select(c.campaign_id.label("cid")).where(
            c.campaign_id.is_not(None), q.in_period(c.opened_at)
        ),
    ).subquery("active")
    return Part(stmt.join(active, active.c.cid == Campaign.id), _read_spend)


def _read_spend(row: Sequence[Any]) -> dict[str, Any]:
    return {"campaign_spend": round(float(row[0] or 0), 2)}


def _active(q: Query, period: Period) -> Select[Any]:
    c = Conversation
    conds = [q.own(c)]
    if period.start is not None:
        conds.append(c.opened_at >= period.start)
    if period.end is not None:
        conds.append(c.opened_at < period.end)
    conv = (
        select(q.conv_key(c).label("k"), c.contact_id.label("contact_id"))
        .select_from(c)
        .where(*conds)
    )
    if not q.is_account:
        return conv
    won = won_at()
    deals = (
        select(q.key(None).label("k"), DealContact.contact_id.label("contact_id"))
        .join(Deal, Deal.id == DealContact.deal_id)
        .where(Deal.is_won.is_(True), won >= period.start, won < period.end)
    )
    return union(conv, deals)  # type: ignore[return-value]


def _retention(q: Query) -> Part | None:
    """Contacts active in the previous period (same length) who are active again in this one."""
    if q.period.start is None or q.period.end is None:
        return None
    previous = _active(q, q.period.previous()).subquery("previous")
    current = _active(q, q.period).subquery("current")
    stmt = (
        select(
            previous.c.k,
            func.count(func.distinct(previous.c.contact_id)),
            func.count(func.distinct(current.c.contact_id)),
        )
        .select_from(previous)
        .outerjoin(
            current,
            and_(current.c.k == previous.c.k, current.c.contact_id == previous.c.contact_id),
        )
        .group_by(previous.c.k)
    )
    return Part(stmt, _read_retention)


def _read_retention(row: Sequence[Any]) -> dict[str, Any]:
    rate = percent(row[1], row[0])
    return {"retention_rate": rate, "churn_rate": None if rate is None else round(100.0 - rate, 4)}
