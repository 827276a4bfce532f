"""Agent utilization: time with at least one open assigned conversation, within presence.

Both sides are unions of intervals (overlapping conversations count once, as do
overlapping presence records), clipped to the period, measured in SQL with one sweep
over their ends per agent (window functions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, case, func, literal, select, true, union_all

from connector.kpis.query import Query
from connector.kpis.sql import epoch, greatest, least, percent, seconds
from connector.models import AgentPresence, Conversation

if TYPE_CHECKING:
    from connector.kpis.sources import Memo


def _clip(q: Query, start: Any, end: Any) -> tuple[Any, Any]:
    lo = start if q.period.start is None else greatest(start, seconds(q.period.start))
    hi_bound = q.period.end or q.now
    return lo, least(end, seconds(min(hi_bound, q.now)))


def _agents(q: Query, column: Any) -> Any:
    return q.only(column) if q.ids is not None else column.is_not(None)


def compute(q: Query, memo: Memo) -> dict[str, dict[str, Any]]:
    """Per agent, or for the account as the sum over agents (computed once for both in a
    full recompute)."""
    if q.scope not in ("account", "agent"):
        return {}
    # Every agent: computed once for the account and the agent scope.
    everyone = q.ids is None
    rows = memo.once("utilization", lambda: _per_agent(q)) if everyone else _per_agent(q)
    if q.is_account:
        length = sum(r[1] for r in rows)
        return {"account": {"agent_utilization": percent(sum(r[2] for r in rows), length)}}
    return {agent: {"agent_utilization": percent(used, length)} for agent, length, used in rows}


def _per_agent(q: Query) -> list[tuple[str, float, float]]:
    """Per agent with presence: (agent, presence seconds, busy seconds within presence).

    One sweep per agent over the intervals' ends in time order: a running count of open
    conversations and of presence records says, between one end and the next, whether the
    agent is busy and present. (Islands of each side joined with each other compared every
    pair of an agent's islands: 53 M pairs at 1 M conversations.)"""
    c, p = Conversation, AgentPresence
    now = seconds(q.now)
    cs, ce = _clip(q, epoch(c.opened_at), func.coalesce(epoch(c.resolved_at), now))
    busy = (
        select(c.agent_id.label("agent_id"), cs.label("s"), ce.label("e"))
        .where(c.agent_id.is_not(None), _agents(q, c.agent_id), ce > cs)
        .subquery("busy")
    )
    ps, pe = _clip(q, epoch(p.started_at), func.coalesce(epoch(p.ended_at), now))
    present = (
        select(p.agent_id.label("agent_id"), ps.label("s"), pe.label("e"))
        .where(_agents(q, p.agent_id), pe > ps)
        .subquery("present")
    )
    # Each interval read once, as its two ends: +1 where it starts, -1 where it ends.
    ends = union_all(select(literal(1).label("d")), select(literal(-1).label("d"))).subquery("ends")

    def moves(intervals: Any, busy_side: bool) -> Select[Any]:
        d = ends.c.d
        return select(
            intervals.c.agent_id,
            case((d == 1, intervals.c.s), else_=intervals.c.e).label("t"),
            (d if busy_side else literal(0)).label("db"),
            (literal(0) if busy_side else d).label("dp"),
        ).select_from(intervals.join(ends, true()))

    events = union_all(moves(busy, True), moves(present, False)).subquery("events")
    e = events.c
    # Ties broken by the deltas: events alike are interchangeable, so the sweep is the
    # same whatever order the database gives them.
    order = {"partition_by": e.agent_id, "order_by": (e.t, e.db, e.dp)}
    swept = select(
        e.agent_id,
        (func.lead(e.t).over(**order) - e.t).label("span"),
        func.sum(e.db).over(**order, rows=(None, 0)).label("busy"),
        func.sum(e.dp).over(**order, rows=(None, 0)).label("present"),
    ).subquery("swept")
    w = swept.c
    on_duty = w.present > 0
    stmt = (
        select(
            w.agent_id,
            func.sum(case((on_duty, w.span), else_=0.0)),
            func.sum(case((and_(on_duty, w.busy > 0), w.span), else_=0.0)),
        )
        .group_by(w.agent_id)
        .having(func.max(w.present) > 0)
    )
    return [
        (str(k), float(length or 0), float(used or 0))
        for k, length, used in q.session.execute(stmt)
    ]
