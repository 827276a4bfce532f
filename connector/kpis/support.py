"""Support KPIs: first response, reply and resolution times, FCR, SLAs, automation, volume."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased

from connector.kpis.business_hours import Calendar
from connector.kpis.query import Query
from connector.kpis.sql import EPSILON, count_if, distributions, epoch, greatest, percent
from connector.models import Conversation, Message

# Survey questions/answers and Meta's system notices are not part of the conversation.
CONVERSATIONAL = ("customer", "agent", "bot", "campaign", "unknown")
Result = dict[str, dict[str, Any]]


def _msgs() -> Any:
    return Message.sender_kind.in_(CONVERSATIONAL)


def facts(q: Query) -> Any:
    """Per conversation: first inbound, first outbound, first human message, human count."""
    m = Message
    inbound, outbound, human = (
        m.direction == "inbound",
        m.direction == "outbound",
        m.sender_kind == "agent",
    )
    return (
        select(
            m.conversation_id.label("cid"),
            func.min(_when(inbound, m.timestamp)).label("first_in"),
            func.min(_when(outbound, m.timestamp)).label("first_out"),
            func.min(_when(human, m.timestamp)).label("first_human"),
            count_if(human).label("humans"),
            func.count(func.distinct(_when(human, m.agent_id))).label("human_agents"),
        )
        .where(m.conversation_id.is_not(None), _msgs(), q.conversations(m.conversation_id))
        .group_by(m.conversation_id)
        .subquery("facts")
    )


def _when(cond: Any, value: Any) -> Any:
    return case((cond, value))


def compute(q: Query, cal: Calendar | None) -> Result:
    out: Result = {}
    f = facts(q)
    _first_response(q, f, cal, out)
    _frt_human(q, cal, out)
    _reply_time(q, cal, out)
    _resolution(q, f, cal, out)
    _volume(q, out)
    return out


def _put(out: Result, key: str, name: str, value: Any) -> None:
    out.setdefault(key, {})[name] = value


def _answered_base(q: Query, f: Any) -> Select[Any]:
    c = Conversation
    return (
        select(q.conv_key(c).label("k"))
        .select_from(c)
        .join(f, f.c.cid == c.id)
        .where(c.initiated_by == "customer", q.in_period(c.opened_at), q.only(q.conv_column(c)))
    )


def _first_response(q: Query, f: Any, cal: Calendar | None, out: Result) -> None:
    start, end = epoch(f.c.first_in), epoch(f.c.first_out)
    base = _answered_base(q, f)
    samples = base.add_columns((end - start).label("v")).where(f.c.first_out.is_not(None))
    for key, dist in distributions(q.session, samples).items():
        _put(out, key, "frt", dist.as_dict())
    target = q.opts.frt_target.total_seconds() + EPSILON
    counts = base.add_columns(
        count_if(f.c.first_out.is_(None)).label("unanswered"),
        count_if(and_(f.c.first_out.is_not(None), end - start <= target)).label("met"),
        count_if(f.c.first_out.is_not(None)).label("answered"),
    ).group_by(q.conv_key(Conversation))
    for key, unanswered, met, answered in q.session.execute(counts):
        _put(out, str(key), "unanswered_conversations", int(unanswered or 0))
        _put(out, str(key), "frt_sla_met_rate", percent(met, answered))
    if cal is not None:
        bh = base.add_columns((cal.clock(end) - cal.clock(start)).label("v")).where(
            f.c.first_out.is_not(None)
        )
        for key, dist in distributions(q.session, bh).items():
            _put(out, key, "frt_bh", dist.as_dict())


def _frt_human(q: Query, cal: Calendar | None, out: Result) -> None:
    """First human message - max(first inbound, handoff), credited to the agent who sent it."""
    m, c = Message, Conversation
    first_human = (
        select(
            m.conversation_id.label("cid"),
            m.agent_id.label("agent_id"),
            m.timestamp.label("ts"),
            func.row_number()
            .over(partition_by=m.conversation_id, order_by=(m.timestamp, m.id))
            .label("rn"),
        )
        .where(
            m.sender_kind == "agent",
            m.conversation_id.is_not(None),
            q.conversations(m.conversation_id),
        )
        .subquery("fh")
    )
    first_in = (
        select(m.conversation_id.label("cid"), func.min(m.timestamp).label("ts"))
        .where(
            m.direction == "inbound",
            m.sender_kind == "customer",
            q.conversations(m.conversation_id),
        )
        .group_by(m.conversation_id)
        .subquery("fi")
    )
    key_col = first_human.c.agent_id if q.scope == "agent" else q.conv_column(c)
    start = greatest(epoch(first_in.c.ts), func.coalesce(epoch(c.handoff_at), epoch(first_in.c.ts)))
    end = epoch(first_human.c.ts)
    base = (
        select(q.key(key_col).label("k"))
        .select_from(c)
        .join(first_in, first_in.c.cid == c.id)
        .join(first_human, and_(first_human.c.cid == c.id, first_human.c.rn == 1))
        .where(c.initiated_by == "customer", q.in_period(c.opened_at), q.only(key_col))
    )
    for key, dist in distributions(q.session, base.add_columns((end - start).label("v"))).items():
        _put(out, key, "frt_human", dist.as_dict())
    if cal is not None:
        bh = base.add_columns((cal.clock(end) - cal.clock(start)).label("v"))
        for key, dist in distributions(q.session, bh).items():
            _put(out, key, "frt_human_bh", dist.as_dict())


def _reply_time(q: Query, cal: Calendar | None, out: Result) -> None:
    """A wait starts at the first customer message after a business message (or the start)
    and ends at the next business message: a human one gives a sample, credited to them."""
    m, c = Message, Conversation
    numbered = (
        select(
            m.conversation_id.label("cid"),
            m.timestamp.label("ts"),
            m.direction.label("direction"),
            m.sender_kind.label("kind"),
            m.agent_id.label("agent_id"),
            func.sum(func.coalesce(_when(m.direction == "outbound", 1), 0))
            .over(
                partition_by=m.conversation_id,
                order_by=(m.timestamp, m.id),
                rows=(None, 0),
            )
            .label("g"),
        )
        .where(m.conversation_id.is_not(None), _msgs(), q.conversations(m.conversation_id))
        .subquery("numbered")
    )
    waits = (
        select(numbered.c.cid, numbered.c.g, func.min(numbered.c.ts).label("start"))
        .where(numbered.c.direction == "inbound")
        .group_by(numbered.c.cid, numbered.c.g)
        .subquery("waits")
    )
    ends = aliased(numbered, name="ends")
    key_col = ends.c.agent_id if q.scope == "agent" else q.conv_column(c)
    start, end = epoch(waits.c.start), epoch(ends.c.ts)
    base = (
        select(q.key(key_col).label("k"))
        .select_from(waits)
        .join(ends, and_(ends.c.cid == waits.c.cid, ends.c.g == waits.c.g + 1))
        .join(c, c.id == waits.c.cid)
        .where(
            ends.c.direction == "outbound",
            ends.c.kind == "agent",
            q.in_period(ends.c.ts),
            q.only(key_col),
        )
    )
    for key, dist in distributions(q.session, base.add_columns((end - start).label("v"))).items():
        _put(out, key, "reply_time", dist.as_dict())
    if cal is not None:
        bh = base.add_columns((cal.clock(end) - cal.clock(start)).label("v"))
        for key, dist in distributions(q.session, bh).items():
            _put(out, key, "reply_time_bh", dist.as_dict())


def resolved_base(q: Query, f: Any) -> Select[Any]:
    """Resolved conversations in the period that a customer took part in."""
    c = Conversation
    return (
        select(q.conv_key(c).label("k"))
        .select_from(c)
        .join(f, f.c.cid == c.id)
        .where(
            c.resolved_at.is_not(None),
            f.c.first_in.is_not(None),
            q.in_period(c.resolved_at),
            q.only(q.conv_column(c)),
        )
    )


def _resolution(q: Query, f: Any, cal: Calendar | None, out: Result) -> None:
    c = Conversation
    start, end = epoch(c.opened_at), epoch(c.resolved_at)
    base = resolved_base(q, f)
    for key, dist in distributions(q.session, base.add_columns((end - start).label("v"))).items():
        _put(out, key, "art", dist.as_dict())
    if cal is not None:
        bh = base.add_columns((cal.clock(end) - cal.clock(start)).label("v"))
        for key, dist in distributions(q.session, bh).items():
            _put(out, key, "art_bh", dist.as_dict())
    later = aliased(Conversation, name="later")
    window = q.opts.fcr_window.total_seconds()
    repeat = exists().where(
        later.contact_id == c.contact_id,
        later.id != c.id,
        later.initiated_by == "customer",
        later.opened_at > c.resolved_at,
        epoch(later.opened_at) <= epoch(c.resolved_at) + window,
    )
    not_fcr = or_(repeat, c.transfers > 0, f.c.human_agents > 1)
    target = q.opts.resolution_target.total_seconds() + EPSILON
    counts = base.add_columns(
        func.count().label("resolved"),
        count_if(not_fcr).label("repeat"),
        count_if(end - start <= target).label("met"),
        count_if(and_(f.c.humans == 0, f.c.first_out.is_not(None))).label("automated"),
    ).group_by(q.conv_key(c))
    for key, resolved, repeats, met, automated in q.session.execute(counts):
        k = str(key)
        _put(out, k, "resolved_conversations", int(resolved))
        _put(out, k, "fcr_rate", percent(int(resolved) - int(repeats or 0), resolved))
        _put(out, k, "repeat_contact_rate", percent(repeats, resolved))
        _put(out, k, "resolution_sla_met_rate", percent(met, resolved))
        _put(out, k, "automation_rate", percent(automated, resolved))
        _put(out, k, "automated_resolutions", int(automated or 0))


def _volume(q: Query, out: Result) -> None:
    c, m = Conversation, Message
    convs = (
        select(q.conv_key(c).label("k"), func.count())
        .select_from(c)
        .where(q.in_period(c.opened_at), q.only(q.conv_column(c)))
        .group_by(q.conv_key(c))
    )
    for key, n in q.session.execute(convs):
        _put(out, str(key), "conversation_volume", int(n))
    col = q.message_column(m, c)
    if q.scope == "campaign":
        col = func.coalesce(m.campaign_id, c.campaign_id)
    key = q.key(col)
    msgs = (
        select(
            key.label("k"),
            count_if(m.direction == "inbound").label("inbound"),
            count_if(m.direction == "outbound").label("outbound"),
        )
        .select_from(m)
        .outerjoin(c, c.id == m.conversation_id)
        .where(_msgs(), q.in_period(m.timestamp), q.only(col))
        .group_by(key)
    )
    for k, inbound, outbound in q.session.execute(msgs):
        _put(out, str(k), "inbound_messages", int(inbound or 0))
        _put(out, str(k), "outbound_messages", int(outbound or 0))
        _put(out, str(k), "message_volume", int(inbound or 0) + int(outbound or 0))
