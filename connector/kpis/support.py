"""Support KPIs: first response, reply and resolution times, FCR, SLAs, automation, volume
(and, from the same groupings: conversion and CSAT/NPS, counts over the conversations;
delivery rates and cost, sums over the traffic).

Everything here aggregates the per-conversation measures (``sources.convs``), the
human-ended waits (``sources.replies``) and the per-sender traffic (``sources.traffic``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from connector.kpis import satisfaction
from connector.kpis.query import Query
from connector.kpis.sql import EPSILON, Part, count_if, distribution_parts, percent, total

if TYPE_CHECKING:  # sources materialises what the families read
    from connector.kpis.sources import Sources


def parts(q: Query, src: Sources, with_bh: bool) -> list[Part]:
    return [*_durations(q, src, with_bh), _counts(q, src.convs), *_traffic(q, src)]


def _durations(q: Query, src: Sources, with_bh: bool) -> list[Part]:
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
    # KPIs read from the same relation under the same key share one grouping.
    groups: dict[tuple[int, int], tuple[Any, Any, dict[str, tuple[Any, Any]]]] = {}
    for name, source, key_col, when in plans:
        samples = groups.setdefault((id(source), id(key_col)), (source, key_col, {}))[2]
        for kpi in (name, f"{name}_bh") if with_bh else (name,):
            samples[kpi] = (source.c[kpi], when)
    dialect = q.session.get_bind().dialect.name
    return [
        part
        for source, key_col, samples in groups.values()
        for part in distribution_parts(dialect, source, q.key(key_col), q.only(key_col), samples)
    ]


def _counts(q: Query, v: Any) -> Part:
    opened, closed = q.in_period(v.c.opened_at), q.in_period(v.c.resolved_at)
    resolved = and_(closed, v.c.art.is_not(None))
    frt_target = q.opts.frt_target.total_seconds() + EPSILON
    art_target = q.opts.resolution_target.total_seconds() + EPSILON
    key = q.key(q.conv_column(v))
    surveys, surveyed = satisfaction.sums(v)
    stmt = (
        select(
            key.label("k"),
            count_if(opened),
            count_if(and_(opened, v.c.unanswered == 1)),
            count_if(and_(opened, v.c.frt.is_not(None))),
            count_if(and_(opened, v.c.frt <= frt_target)),
            count_if(resolved),
            count_if(and_(resolved, v.c.not_fcr == 1)),
            count_if(and_(resolved, v.c.art <= art_target)),
            count_if(and_(resolved, v.c.automated == 1)),
            count_if(and_(opened, v.c.converted == 1)),
            *surveys,
        )
        .where(q.only(q.conv_column(v)))
        .group_by(key)
        # Keys with a conversation opened or resolved in the period, or surveyed.
        .having(or_(count_if(or_(opened, closed)) > 0, surveyed))
    )
    return Part(stmt, _read_counts)


def _read_counts(row: Sequence[Any]) -> dict[str, Any]:
    # Sums over at least one row: integers, never NULL.
    opened, unanswered, answered, frt_met, resolved, repeats, art_met, automated, converted = row[
        :9
    ]
    return {
        **satisfaction.read(row[9:]),
        "conversation_volume": opened,
        "unanswered_conversations": unanswered,
        "frt_sla_met_rate": percent(frt_met, answered),
        "resolved_conversations": resolved,
        "fcr_rate": percent(resolved - repeats, resolved),
        "repeat_contact_rate": percent(repeats, resolved),
        "resolution_sla_met_rate": percent(art_met, resolved),
        "automation_rate": percent(automated, resolved),
        "automated_resolutions": automated,
        "conversion_rate": percent(converted, opened),
    }


def _traffic(q: Query, src: Sources) -> list[Part]:
    """Message volume and delivery from the per-sender traffic: one grouping, except for
    campaigns (a conversation's traffic counts for the campaign it is tagged with; delivery
    for the campaign of each send)."""
    sends = traffic_column(q, src)
    if q.scope != "campaign":
        return [_traffic_part(q, src, sends, volume=True, delivery=True)]
    tagged = func.coalesce(src.traffic.c.campaign_id, src.convs.c.campaign_id)
    return [
        _traffic_part(q, src, tagged, volume=True, delivery=False),
        _traffic_part(q, src, sends, volume=False, delivery=True),
    ]


_VOLUME = ("inbound", "outbound")
_DELIVERY = ("sent", "reached", "read", "failed")  # counts; the cost follows them


def _traffic_part(q: Query, src: Sources, col: Any, *, volume: bool, delivery: bool) -> Part:
    t, v = src.traffic, src.convs
    sums = [total(t.c[name]) for name in _VOLUME] if volume else []
    if delivery:
        sums += [*(total(t.c[name]) for name in _DELIVERY), func.sum(t.c.cost)]
    key = q.key(col)
    stmt = select(key.label("k"), *sums).select_from(t)
    if q.scope in ("deal", "campaign"):  # keyed by (or falling back on) the conversation's tag
        stmt = stmt.outerjoin(v, v.c.cid == t.c.conversation_id)
    # Rows with no message in the period (the traffic then also carries the conversations'
    # facts, ``sources.traffic_select``) count for nothing and make no key.
    in_period = t.c.inbound + t.c.outbound > 0
    stmt = stmt.where(q.only(col), in_period).group_by(key)
    if volume and delivery:
        return Part(stmt, lambda row: _delivery(row, len(_VOLUME), _volume(row)))
    return Part(stmt, _volume if volume else lambda row: _delivery(row, 0, {}))


# Run once per key (half a million contacts in a full recompute): read by position.
def _volume(row: Sequence[Any]) -> dict[str, Any]:
    inbound, outbound = row[0] or 0, row[1] or 0
    return {
        "inbound_messages": inbound,
        "outbound_messages": outbound,
        "message_volume": inbound + outbound,
    }


def _delivery(row: Sequence[Any], at: int, out: dict[str, Any]) -> dict[str, Any]:
    """Over outbound messages sent in the period with any status at all (``row[at:]``),
    into ``out``."""
    sent, reached, read, failed, cost = row[at : at + 5]
    out["delivery_rate"] = percent(reached, sent)
    out["read_rate"] = percent(read, reached)
    out["failure_rate"] = percent(failed, sent)
    out["messaging_cost"] = round(float(cost or 0), 6)
    return out


def traffic_column(q: Query, src: Sources) -> Any:
    """The scope column of a traffic row: its own sender/campaign/contact/number, or the
    conversation's deal (joined from ``src.convs``)."""
    t = src.traffic
    if q.is_account:
        return None
    if q.scope == "deal":
        return src.convs.c.deal_id
    if q.scope == "phone_number":
        return t.c.business_number_id
    return t.c[f"{q.scope}_id"]
