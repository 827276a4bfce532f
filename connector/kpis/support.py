"""Support KPIs: first response, reply and resolution times, FCR, SLAs, automation, volume
(and conversion, a count over the same conversations).

Everything here aggregates the per-conversation measures (``sources.convs``), the
human-ended waits (``sources.replies``) and the per-sender traffic (``sources.traffic``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select

from connector.kpis.query import Query
from connector.kpis.sources import Sources
from connector.kpis.sql import EPSILON, count_if, distributions_of, percent, put
from connector.models import Conversation

Result = dict[str, dict[str, Any]]


def compute(q: Query, src: Sources, with_bh: bool, out: Result | None = None) -> Result:
    out = {} if out is None else out
    _durations(q, src, with_bh, out)
    _counts(q, src.convs, out)
    _volume(q, src.traffic, out)
    return out


def _durations(q: Query, src: Sources, with_bh: bool, out: Result) -> None:
    v, r = src.convs, src.replies
    scope_col = q.conv_column(v)
    opened, closed = q.in_period(v.c.opened_at), q.in_period(v.c.resolved_at)
    # frt_human and reply_time belong to the agent who answered.
    human_col = v.c.first_human_agent if q.scope == "agent" else scope_col
    # A wait carries its conversation's scope columns; the agent is the one who replied.
    reply_col = r.c.agent_id if q.scope == "agent" else q.conv_column(r)
    plans = (
        ("frt", v, scope_col, opened),
        ("frt_human", v, human_col, opened),
        ("art", v, scope_col, closed),
        ("reply_time", r, reply_col, q.in_period(r.c.end)),
    )
    # KPIs read from the same relation under the same key share one statement.
    groups: dict[tuple[int, int], tuple[Any, Any, dict[str, tuple[Any, Any]]]] = {}
    for name, source, key_col, when in plans:
        table = r if name == "reply_time" else v
        samples = groups.setdefault((id(source), id(key_col)), (source, key_col, {}))[2]
        for kpi in (name, f"{name}_bh") if with_bh else (name,):
            samples[kpi] = (table.c[kpi], when)
    for source, key_col, samples in groups.values():
        found = distributions_of(q.session, source, q.key(key_col), q.only(key_col), samples)
        for kpi, dists in found.items():
            for key, dist in dists.items():
                put(out, key, **{kpi: dist.as_dict()})


def _counts(q: Query, v: Any, out: Result) -> None:
    opened, closed = q.in_period(v.c.opened_at), q.in_period(v.c.resolved_at)
    resolved = and_(closed, v.c.art.is_not(None))
    frt_target = q.opts.frt_target.total_seconds() + EPSILON
    art_target = q.opts.resolution_target.total_seconds() + EPSILON
    key = q.key(q.conv_column(v))
    stmt = (
        select(
            key.label("k"),
            count_if(opened).label("opened"),
            count_if(and_(opened, v.c.unanswered == 1)).label("unanswered"),
            count_if(and_(opened, v.c.frt.is_not(None))).label("answered"),
            count_if(and_(opened, v.c.frt <= frt_target)).label("frt_met"),
            count_if(resolved).label("resolved"),
            count_if(and_(resolved, v.c.not_fcr == 1)).label("repeat"),
            count_if(and_(resolved, v.c.art <= art_target)).label("art_met"),
            count_if(and_(resolved, v.c.automated == 1)).label("automated"),
            count_if(and_(opened, v.c.converted == 1)).label("converted"),
        )
        .where(or_(opened, closed), q.only(q.conv_column(v)))
        .group_by(key)
    )
    for row in q.session.execute(stmt):
        k, resolved_n, repeats = str(row.k), int(row.resolved or 0), int(row.repeat or 0)
        put(
            out,
            k,
            conversation_volume=int(row.opened or 0),
            unanswered_conversations=int(row.unanswered or 0),
            frt_sla_met_rate=percent(row.frt_met, row.answered),
            resolved_conversations=resolved_n,
            fcr_rate=percent(resolved_n - repeats, resolved_n),
            repeat_contact_rate=percent(repeats, resolved_n),
            resolution_sla_met_rate=percent(row.art_met, resolved_n),
            automation_rate=percent(row.automated, resolved_n),
            automated_resolutions=int(row.automated or 0),
            conversion_rate=percent(row.converted, row.opened),
        )


def _volume(q: Query, t: Any, out: Result) -> None:
    c = Conversation
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
        inbound, outbound = int(inbound or 0), int(outbound or 0)
        put(
            out,
            k,
            inbound_messages=inbound,
            outbound_messages=outbound,
            message_volume=inbound + outbound,
        )


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
