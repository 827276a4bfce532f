"""Agent utilization: time with at least one open assigned conversation, within presence.

Both sides are unions of intervals (overlapping conversations count once, as do
overlapping presence records), clipped to the period; islands are merged in SQL with
window functions, then the two sets are intersected with one join.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, case, func, select

from connector.kpis.query import Query
from connector.kpis.sql import epoch, greatest, least, percent, seconds
from connector.models import AgentPresence, Conversation

if TYPE_CHECKING:
    from connector.kpis.sources import Memo


def _clip(q: Query, start: Any, end: Any) -> tuple[Any, Any]:
    lo = start if q.period.start is None else greatest(start, seconds(q.period.start))
    hi_bound = q.period.end or q.now
    return lo, least(end, seconds(min(hi_bound, q.now)))


def _islands(rows: Select[Any], name: str) -> Any:
    """Merge ``(agent_id, s, e)`` intervals into disjoint islands per agent."""
    r = rows.subquery(f"{name}_raw")
    prev_end = func.max(r.c.e).over(
        partition_by=r.c.agent_id, order_by=(r.c.s, r.c.e), rows=(None, -1)
    )
    flagged = select(
        r.c.agent_id,
        r.c.s,
        r.c.e,
        func.coalesce(_new(r.c.s, prev_end), 1).label("fresh"),
    ).subquery(f"{name}_flagged")
    numbered = select(
        flagged.c.agent_id,
        flagged.c.s,
        flagged.c.e,
        func.sum(flagged.c.fresh)
        .over(partition_by=flagged.c.agent_id, order_by=(flagged.c.s, flagged.c.e), rows=(None, 0))
        .label("island"),
    ).subquery(f"{name}_numbered")
    return (
        select(
            numbered.c.agent_id,
            func.min(numbered.c.s).label("s"),
            func.max(numbered.c.e).label("e"),
        )
        .group_by(numbered.c.agent_id, numbered.c.island)
        .subquery(name)
    )


def _agents(q: Query, column: Any) -> Any:
    return q.only(column) if q.ids is not None else column.is_not(None)


def _new(start: Any, prev_end: Any) -> Any:
    return case((prev_end.is_(None), 1), (start > prev_end, 1), else_=0)


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
    c, p = Conversation, AgentPresence
    now = seconds(q.now)
    cs, ce = _clip(q, epoch(c.opened_at), func.coalesce(epoch(c.resolved_at), now))
    busy = _islands(
        select(c.agent_id.label("agent_id"), cs.label("s"), ce.label("e")).where(
            c.agent_id.is_not(None), _agents(q, c.agent_id), ce > cs
        ),
        "busy",
    )
    ps, pe = _clip(q, epoch(p.started_at), func.coalesce(epoch(p.ended_at), now))
    present = _islands(
        select(p.agent_id.label("agent_id"), ps.label("s"), pe.label("e")).where(
            _agents(q, p.agent_id), pe > ps
        ),
        "present",
    )
    # CASE-based least/greatest would treat a missing busy island as the presence bounds.
    both = case(
        (
            busy.c.agent_id.is_not(None),
            least(busy.c.e, present.c.e) - greatest(busy.c.s, present.c.s),
        ),
        else_=0.0,
    )
    overlap = func.coalesce(func.sum(both), 0.0)
    # Each presence island is joined to the busy islands it overlaps; sum presence apart.
    per_island = (
        select(
            present.c.agent_id.label("agent_id"),
            (present.c.e - present.c.s).label("length"),
            overlap.label("used"),
        )
        .select_from(present)
        .outerjoin(
            busy,
            (busy.c.agent_id == present.c.agent_id)
            & (busy.c.s < present.c.e)
            & (present.c.s < busy.c.e),
        )
        .group_by(present.c.agent_id, present.c.s, present.c.e)
        .subquery("per_island")
    )
    stmt = select(
        per_island.c.agent_id, func.sum(per_island.c.length), func.sum(per_island.c.used)
    ).group_by(per_island.c.agent_id)
    return [
        (str(k), float(length or 0), float(used or 0))
        for k, length, used in q.session.execute(stmt)
    ]
