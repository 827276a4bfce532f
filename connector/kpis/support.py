"""Support KPIs: first response, reply and resolution times, FCR, SLAs, automation, volume."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from connector.kpis.business_hours import Calendar
from connector.kpis.query import Query
from connector.kpis.sources import Sources
from connector.kpis.sql import EPSILON, count_if, distributions, epoch, greatest, percent
from connector.models import Conversation

Result = dict[str, dict[str, Any]]


def compute(q: Query, src: Sources, cal: Calendar | None) -> Result:
    out: Result = {}
    _first_response(q, src.facts, cal, out)
    _frt_human(q, src.facts, cal, out)
    _reply_time(q, src.replies, cal, out)
    _resolution(q, src.facts, cal, out)
    _volume(q, src.traffic, out)
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


def _frt_human(q: Query, f: Any, cal: Calendar | None, out: Result) -> None:
    """First human message - max(first inbound, handoff), credited to the agent who sent it."""
    c = Conversation
    key_col = f.c.first_human_agent if q.scope == "agent" else q.conv_column(c)
    first_in = epoch(f.c.first_in)
    start = greatest(first_in, func.coalesce(epoch(c.handoff_at), first_in))
    end = epoch(f.c.first_human)
    base = (
        select(q.key(key_col).label("k"))
        .select_from(c)
        .join(f, f.c.cid == c.id)
        .where(
            c.initiated_by == "customer",
            f.c.first_human.is_not(None),
            f.c.first_in.is_not(None),
            q.in_period(c.opened_at),
            q.only(key_col),
        )
    )
    for key, dist in distributions(q.session, base.add_columns((end - start).label("v"))).items():
        _put(out, key, "frt_human", dist.as_dict())
    if cal is not None:
        bh = base.add_columns((cal.clock(end) - cal.clock(start)).label("v"))
        for key, dist in distributions(q.session, bh).items():
            _put(out, key, "frt_human_bh", dist.as_dict())


def _reply_time(q: Query, r: Any, cal: Calendar | None, out: Result) -> None:
    """Customer waits ended by a human reply in the period, credited to the replier."""
    c = Conversation
    key_col = r.c.agent_id if q.scope == "agent" else q.conv_column(c)
    start, end = epoch(r.c.start), epoch(r.c.end)
    base = (
        select(q.key(key_col).label("k"))
        .select_from(r)
        .join(c, c.id == r.c.cid)
        .where(q.in_period(r.c.end), q.only(key_col))
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


def _volume(q: Query, t: Any, out: Result) -> None:
    c = Conversation
    convs = (
        select(q.conv_key(c).label("k"), func.count())
        .select_from(c)
        .where(q.in_period(c.opened_at), q.only(q.conv_column(c)))
        .group_by(q.conv_key(c))
    )
    for key, n in q.session.execute(convs):
        _put(out, str(key), "conversation_volume", int(n))
    col = traffic_column(q, t)
    if q.scope == "campaign":  # a conversation's traffic counts for the campaign it is tagged with
        col = func.coalesce(t.c.campaign_id, c.campaign_id)
    key = q.key(col)
    msgs = (
        select(key.label("k"), func.sum(t.c.inbound), func.sum(t.c.outbound))
        .select_from(t)
        .outerjoin(c, c.id == t.c.conversation_id)
        .where(q.only(col))
        .group_by(key)
    )
    for k, inbound, outbound in q.session.execute(msgs):
        _put(out, str(k), "inbound_messages", int(inbound or 0))
        _put(out, str(k), "outbound_messages", int(outbound or 0))
        _put(out, str(k), "message_volume", int(inbound or 0) + int(outbound or 0))


def traffic_column(q: Query, t: Any) -> Any:
    """The scope column of a traffic row: its own sender/campaign/contact/number, or the
    conversation's deal."""
    if q.is_account:
        return None
    if q.scope == "deal":
        return Conversation.deal_id
    if q.scope == "phone_number":
        return t.c.business_number_id
    return t.c[f"{q.scope}_id"]
