"""Run every KPI family for one scope and period, then derive the ratios between them."""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select, union
from sqlalchemy.orm import Session

from connector.kpis import messaging, revenue, roi, side_by_side, support, utilization
from connector.kpis.business_hours import Calendar
from connector.kpis.options import KpiOptions, Period
from connector.kpis.query import Query, drop_keys, load
from connector.kpis.sources import Sources, drop, materialize
from connector.kpis.sql import EMPTY, FETCH, tune
from connector.models import Conversation, Message

DURATIONS = ("frt", "frt_human", "reply_time", "art")
BUSINESS_HOURS = tuple(f"{name}_bh" for name in DURATIONS)
COUNTS = (
    "unanswered_conversations",
    "resolved_conversations",
    "conversation_volume",
    "message_volume",
    "inbound_messages",
    "outbound_messages",
    "automated_resolutions",
    "recipients",
    "new_customers",
)
MONEY = (
    "attributed_revenue",
    "messaging_cost",
    "campaign_spend",
    "revenue_per_recipient",
    "cpa",
    "time_saved_value",
    "integration_cost",
)
RATES = (
    "fcr_rate",
    "repeat_contact_rate",
    "csat",
    "csat_mean",
    "csat_response_rate",
    "nps",
    "agent_utilization",
    "frt_sla_met_rate",
    "resolution_sla_met_rate",
    "automation_rate",
    "delivery_rate",
    "read_rate",
    "failure_rate",
    "reply_rate",
    "ctr",
    "conversion_rate",
    "roi",
    "retention_rate",
    "churn_rate",
)
# The order of DESIGN §4's table (reports list KPIs in this order).
KPI_NAMES = (
    *DURATIONS,
    *BUSINESS_HOURS,
    "unanswered_conversations",
    "resolved_conversations",
    "fcr_rate",
    "repeat_contact_rate",
    "csat",
    "csat_mean",
    "csat_response_rate",
    "nps",
    "conversation_volume",
    "message_volume",
    "inbound_messages",
    "outbound_messages",
    "agent_utilization",
    "frt_sla_met_rate",
    "resolution_sla_met_rate",
    "automation_rate",
    "automated_resolutions",
    "delivery_rate",
    "read_rate",
    "failure_rate",
    "reply_rate",
    "ctr",
    "recipients",
    "conversion_rate",
    "attributed_revenue",
    "revenue_per_recipient",
    "messaging_cost",
    "campaign_spend",
    "new_customers",
    "cpa",
    "time_saved_value",
    "integration_cost",
    "roi",
    "retention_rate",
    "churn_rate",
)
assert set(KPI_NAMES) == {*DURATIONS, *BUSINESS_HOURS, *COUNTS, *MONEY, *RATES}

Result = dict[str, dict[str, Any]]
CHUNK = 10_000  # keys per result of compute_all


def compute(
    session: Session,
    opts: KpiOptions,
    scope: str,
    period: Period,
    ids: Collection[str] | None = None,
    *,
    now: datetime,
) -> Result:
    """``{scope_key: {kpi: value}}`` for every key with data (or every key in ``ids``)."""
    return compute_many(session, opts, {scope: ids}, period, now=now)[scope]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during one computation (the previous setting after):
    it makes no reference cycles worth collecting, only dicts freed as they go, and a full
    collection over a process's objects (the modules and SQLAlchemy's caches: a tenth of a
    second) would otherwise land when the scopes' statements start, holding the GIL the
    threads starting them need."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@_collector_paused()
def compute_many(
    session: Session,
    opts: KpiOptions,
    wanted: Mapping[str, Collection[str] | None],
    period: Period,
    *,
    now: datetime,
) -> dict[str, Result]:
    """``compute`` for several scopes at once (``{scope: ids or None}``), as the write-back
    needs them: the conversations their ids touch are read once, into sources the scopes
    share (each has its own campaign sends), then every scope's statement runs, on
    PostgreSQL side by side. A scope that reads every conversation is computed apart
    (``query.load``)."""
    queries = [Query.build(session, opts, scope, period, ids, now) for scope, ids in wanted.items()]
    out: dict[str, Result] = {q.scope: {} for q in queries}
    if not queries:
        return out
    cal = calendar(queries[0])
    tune(session)
    # Materialised even for a few ids: every family reads the aggregates several times, and
    # on small temporary tables with real statistics the planner cannot misjudge a join.
    if side_by_side.possible(session):

        def make_plans(group: list[Query], src: Sources) -> list[Plan]:
            return [plan(q, src, cal) for q in group]

        with closing(side_by_side.groups(session, queries, cal, make_plans)) as spread:
            for _, src, prepare, plans in spread:
                for keys in side_by_side.stream(session, plans, src, prepare):
                    _collect(out, keys)
    else:
        try:
            for group in load(queries):
                try:
                    src = materialize(session, group[0], cal, group)
                    for q in group:
                        _collect(out, _keys(plan(q, src, cal), src))
                finally:
                    drop(session, group)
        finally:
            drop_keys(session, queries)
    return {q.scope: _only_wanted(q, out[q.scope], cal is not None) for q in queries}


def _collect(out: dict[str, Result], keys: Iterable[tuple[Query, str, dict[str, Any]]]) -> None:
    for q, key, values in keys:
        out[q.scope][key] = values


def _only_wanted(q: Query, found: Result, with_bh: bool) -> Result:
    """The wanted keys only, each of them present (with empty values when it had no data)."""
    if q.ids is None:
        return found
    out = {k: v for k, v in found.items() if k in q.ids}
    for key in q.ids.difference(out):
        out[key] = _finish(q, {}, with_bh)
    return out


def compute_all(
    session: Session,
    opts: KpiOptions,
    scopes: Collection[str],
    period: Period,
    *,
    now: datetime,
    chunk: int = CHUNK,
) -> Iterator[tuple[str, Result]]:
    """Every key of every scope, ``chunk`` keys at a time (memory stays bounded).

    The sources are materialised once for all scopes; each scope's keys are streamed from
    one statement. On PostgreSQL, when this transaction has written nothing (other
    connections see what it sees), that work is spread over several connections, and a
    scope with many keys is computed range of keys by range (``side_by_side.ranges``): a
    scope's keys may then come in several runs of chunks, between other scopes' chunks.
    """
    base = Query.build(session, opts, "account", period, None, now)
    cal = calendar(base)
    tune(session)
    queries = [Query.build(session, opts, scope, period, None, now) for scope in scopes]
    if side_by_side.possible(session):
        with side_by_side.sources(session, base, cal) as src:
            ranged = [each for q in queries for each in side_by_side.ranges(session, q)]
            plans = [plan(q, src, cal) for q in ranged]
            yield from _chunks(side_by_side.stream(session, plans, src), chunk)
        return
    src = materialize(session, base, cal)
    try:
        yield from _chunks((_keys(plan(q, src, cal), src) for q in queries), chunk)
    finally:
        drop(session)


def _chunks(
    scopes: Iterable[Iterator[tuple[Query, str, dict[str, Any]]]], chunk: int
) -> Iterator[tuple[str, Result]]:
    for keys in scopes:
        out: Result = {}
        scope = ""
        for q, key, values in keys:
            scope = q.scope
            out[key] = values
            if len(out) >= chunk:
                yield scope, out
                out = {}
        if out:
            yield scope, out


@dataclass(frozen=True, slots=True)
class Plan:
    """One scope's statement: every family's part joined on the key (one row per key).

    Every family's part is one grouping by the scope key; they are joined on the key into
    one statement whose rows are streamed, so Python sees one row per key.
    """

    q: Query
    stmt: Select[Any]
    slices: list[tuple[Callable[[Sequence[Any]], dict[str, Any]], int, int]]
    with_bh: bool

    def read(
        self, rows: Iterable[Sequence[Any]], extra: dict[str, dict[str, Any]]
    ) -> Iterator[tuple[Query, str, dict[str, Any]]]:
        """Each key's KPIs from its row, in key order; ``extra`` (utilization) merged in."""
        q, with_bh = self.q, self.with_bh
        for row in rows:
            values: dict[str, Any] = {}
            for read, lo, hi in self.slices:
                if row[lo] is not None:  # the part has a row for this key (see ``Part``)
                    values.update(read(row[lo:hi]))
            key = str(row[0])
            values.update(extra.pop(key, ()))
            yield q, key, _finish(q, values, with_bh)
        for key, values in extra.items():  # agents with presence and nothing else
            yield q, key, _finish(q, dict(values), with_bh)


def plan(q: Query, src: Sources, cal: Calendar | None) -> Plan:
    with_bh = cal is not None
    src = src.of(q.scope)
    parts = [
        *support.parts(q, src, with_bh),
        *messaging.parts(q, src),
        *revenue.parts(q, src),
    ]
    named = [part.stmt.cte(f"part{i}") for i, part in enumerate(parts)]
    keys = union(*(select(cte.c.k) for cte in named)).subquery("scope_keys")
    stmt = select(keys.c.k, *(c for cte in named for c in list(cte.c)[1:])).select_from(keys)
    for cte in named:
        stmt = stmt.outerjoin(cte, cte.c.k == keys.c.k)
    slices = []
    at = 1
    for part, cte in zip(parts, named, strict=True):
        width = len(cte.c) - 1
        slices.append((part.read, at, at + width))
        at += width
    return Plan(q, stmt.order_by(keys.c.k), slices, with_bh)


def _keys(p: Plan, src: Sources) -> Iterator[tuple[Query, str, dict[str, Any]]]:
    """Every key of the plan's scope with data, and its KPIs, in key order."""
    # Utilization comes from interval arithmetic per agent, not a grouping: merged by key.
    extra = utilization.compute(p.q, src.memo)
    rows = p.q.session.execute(p.stmt, execution_options={"yield_per": FETCH})
    return p.read(rows, extra)


def _finish(q: Query, values: dict[str, Any], with_bh: bool) -> dict[str, Any]:
    values = _complete(values, with_bh=with_bh)
    _derive(q, values)
    return values


def calendar(q: Query) -> Calendar | None:
    hours = q.opts.business_hours
    if hours is None:
        return None
    first = q.period.start or _first_activity(q.session) or q.now
    last = max(q.period.end or q.now, q.now)
    return Calendar(hours, q.opts.timezone, first, last)


def _first_activity(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Conversation.opened_at)))


def first_message_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Message.timestamp)))


_DEFAULTS: dict[str, Any] = {
    **{name: None for name in (*RATES, "revenue_per_recipient", "cpa")},
    **{name: None for name in ("time_saved_value", "integration_cost")},
    **{name: 0 for name in COUNTS},
    **{name: 0.0 for name in ("attributed_revenue", "messaging_cost", "campaign_spend")},
}


_DURATIONS_BH = DURATIONS + BUSINESS_HOURS


def _complete(values: dict[str, Any], *, with_bh: bool) -> dict[str, Any]:
    """Every KPI present: what had no data gets its empty value."""
    out = dict(_DEFAULTS)
    for name in _DURATIONS_BH if with_bh else DURATIONS:
        if name not in values:
            out[name] = dict(EMPTY)
    out.update(values)
    return out


def _derive(q: Query, values: dict[str, Any]) -> None:
    revenue_, cost, spend = (
        values["attributed_revenue"],
        values["messaging_cost"],
        values["campaign_spend"],
    )
    if values["recipients"]:
        values["revenue_per_recipient"] = round(revenue_ / values["recipients"], 4)
    if values["new_customers"]:
        values["cpa"] = round((cost + spend) / values["new_customers"], 4)
    if q.scope == "account":
        _account_roi(q, values)
    elif q.scope == "campaign":
        invested = cost + spend
        values["integration_cost"] = round(invested, 2)
        values["roi"] = round((revenue_ - invested) / invested * 100, 4) if invested else None


def _account_roi(q: Query, values: dict[str, Any]) -> None:
    start = q.period.start or first_message_at(q.session) or q.now
    end = min(q.period.end or q.now, max(q.now, start))
    figures = roi.roi_figures(
        attributed_revenue=Decimal(str(values["attributed_revenue"])),
        messaging_cost=Decimal(str(values["messaging_cost"])),
        automated_resolutions=int(values["automated_resolutions"]),
        opts=q.opts,
        start=start,
        end=end,
    )
    values["time_saved_value"] = _float(figures["time_saved_value"])
    values["integration_cost"] = _float(figures["integration_cost"])
    values["roi"] = _float(figures["roi"])


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)
