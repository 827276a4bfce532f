"""Run every KPI family for one scope and period, then derive the ratios between them."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.kpis import messaging, revenue, roi, satisfaction, support, utilization
from connector.kpis.business_hours import Calendar
from connector.kpis.options import KpiOptions, Period
from connector.kpis.query import Query, drop_keys
from connector.kpis.sources import Sources, drop, materialize
from connector.kpis.sql import EMPTY, tune
from connector.models import Agent, Campaign, Contact, Conversation, Deal, Message

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
CHUNK = 20_000


def compute(
    session: Session,
    opts: KpiOptions,
    scope: str,
    period: Period,
    ids: Collection[str] | None = None,
    *,
    now: datetime,
    sources: Sources | None = None,
) -> Result:
    """``{scope_key: {kpi: value}}`` for every key with data (or every key in ``ids``)."""
    q = Query.build(session, opts, scope, period, ids, now)
    cal = calendar(q)
    tune(session)
    if sources is not None:
        return _compute(q, sources, cal)
    # Materialised even for a few ids: every family reads the aggregates several times, and
    # on small temporary tables with real statistics the planner cannot misjudge a join.
    try:
        q = q.with_keys()
        return _compute(q, materialize(session, q, cal), cal)
    finally:
        drop(session)
        drop_keys(session)


def compute_all(
    session: Session,
    opts: KpiOptions,
    scopes: Collection[str],
    period: Period,
    *,
    now: datetime,
    chunk: int = CHUNK,
) -> Iterator[tuple[str, Result]]:
    """Every key of every scope, a chunk of keys at a time (memory stays bounded).

    The message aggregates are materialised once for all scopes; scopes with many keys
    (contacts, deals) are computed ``chunk`` ids at a time.
    """
    base = Query.build(session, opts, "account", period, None, now)
    cal = calendar(base)
    tune(session)
    src = materialize(session, base, cal)
    try:
        for scope in scopes:
            whole = Query.build(session, opts, scope, period, None, now)
            for span in _spans(session, scope, chunk):
                yield scope, _compute(replace(whole, span=span), src, cal)
    finally:
        drop(session)


_ID_COLUMNS = {
    "agent": Agent.id,
    "campaign": Campaign.id,
    "deal": Deal.id,
    "contact": Contact.id,
}


def _spans(session: Session, scope: str, chunk: int) -> Iterator[tuple[int, int] | None]:
    column = _ID_COLUMNS.get(scope)
    if column is None:
        yield None
        return
    low, high = session.execute(select(func.min(column), func.max(column))).one()
    if low is None:
        return
    start = int(low)
    while start <= int(high):
        yield start, start + chunk
        start += chunk


def _compute(q: Query, src: Sources, cal: Calendar | None) -> Result:
    out: Result = {}  # every family merges into it
    support.compute(q, src, cal is not None, out)
    messaging.compute(q, src, out)
    satisfaction.compute(q, src, out)
    revenue.compute(q, out)
    for key, values in utilization.compute(q, src.memo).items():
        out.setdefault(key, {}).update(values)
    if q.ids is not None:
        out = {k: v for k, v in out.items() if k in q.ids}
        for key in q.ids:
            out.setdefault(key, {})
    for key, values in out.items():
        out[key] = values = _complete(values, with_bh=cal is not None)
        _derive(q, values)
    return out


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


def _complete(values: dict[str, Any], *, with_bh: bool) -> dict[str, Any]:
    """Every KPI present: what had no data gets its empty value."""
    durations = DURATIONS + (BUSINESS_HOURS if with_bh else ())
    empty = {name: EMPTY.as_dict() for name in durations if name not in values}
    return {**_DEFAULTS, **empty, **values}


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
