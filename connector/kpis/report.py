"""KPI reports in the public shape: external ids, ISO periods, baselines and changes.

``{"scope", "id", "from", "to", "currency", "kpis": {...}, "baseline": {...} | null,
"change": {kpi: {"absolute", "relative"}} | null}``; for durations the change is given
for each of mean, median and p90.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from connector.errors import NotFound, ValidationFailed
from connector.kpis.engine import KPI_NAMES, compute
from connector.kpis.options import SCOPES, KpiOptions, Period
from connector.kpis.query import ACCOUNT
from connector.kpis.sql import epoch, ifloor
from connector.models import Agent, Campaign, Contact, Deal, Message


def parse_bound(name: str, raw: str | None, tz: ZoneInfo) -> datetime | None:
    """An ISO date (local midnight in ``tz``) or datetime (naive = local in ``tz``)."""
    if raw in (None, ""):
        return None
    text = str(raw).strip().replace("Z", "+00:00")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{name}: expected an ISO-8601 date or datetime", details={"parameter": name}
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def period_of(start: datetime | None, end: datetime | None) -> Period:
    try:
        return Period(start, end)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"parameter": "to"}) from None


BASELINES = ("none", "previous", "go_live")


def with_baseline(
    kind: str | None,
    period: Period,
    opts: KpiOptions,
    now: datetime,
    explicit: Period | None = None,
) -> tuple[Period, Period | None]:
    """The reported period and its baseline.

    ``previous``: the period of the same length just before (both ends needed).
    ``go_live``: after ``WACRM_GO_LIVE`` against the same length before it (the reported
    period starts at go-live unless it starts later). ``explicit`` wins over both.
    """
    if explicit is not None:
        return period, explicit
    if kind in (None, "", "none"):
        return period, None
    if kind == "previous":
        if period.start is None or period.end is None:
            raise ValidationFailed("baseline previous needs both from and to")
        return period, period.previous()
    if kind == "go_live":
        if opts.go_live is None:
            raise ValidationFailed("baseline go_live needs WACRM_GO_LIVE")
        go = datetime.combine(opts.go_live, time(0), tzinfo=opts.tz)
        start = max(period.start or go, go)
        after = period_of(start, period.end or now)
        return after, Period(go - (after.end - after.start), go)  # type: ignore[operator]
    raise ValidationFailed(
        f"baseline: expected one of {', '.join(BASELINES)}", details={"parameter": "baseline"}
    )


def resolve_key(session: Session, scope: str, ref: str | None) -> str:
    """The internal scope key for an external id (agent external id, campaign key, ...)."""
    if scope not in SCOPES:
        raise ValidationFailed(
            f"scope: expected one of {', '.join(SCOPES)}", details={"parameter": "scope"}
        )
    if scope == ACCOUNT:
        return ACCOUNT
    if not ref:
        raise ValidationFailed(f"id: required for scope {scope}", details={"parameter": "id"})
    if scope == "phone_number":
        return ref
    lookups: dict[str, Any] = {
        "agent": select(Agent.id).where(Agent.external_id == ref),
        "campaign": select(Campaign.id).where(Campaign.key == ref),
        "deal": select(Deal.id).where(Deal.key == ref),
        "contact": select(Contact.id).where(
            or_(Contact.wa_id == ref.lstrip("+"), Contact.user_id == ref)
        ),
    }
    found = session.scalar(lookups[scope])
    if found is None:
        raise NotFound(f"{scope} {ref!r} not found")
    return str(found)


def report(
    session: Session,
    opts: KpiOptions,
    scope: str,
    ref: str | None,
    period: Period,
    *,
    now: datetime,
    baseline: Period | None = None,
) -> dict[str, Any]:
    key = resolve_key(session, scope, ref)
    ids = None if scope == ACCOUNT else [key]
    values = _ordered(compute(session, opts, scope, period, ids, now=now).get(key) or {})
    out: dict[str, Any] = {
        "scope": scope,
        "id": None if scope == ACCOUNT else ref,
        "from": _iso(period.start),
        "to": _iso(period.end),
        "currency": opts.currency,
        "kpis": values,
        "volume_by_hour_of_week": hour_of_week(session, opts, period) if scope == ACCOUNT else None,
        "baseline": None,
        "change": None,
    }
    if baseline is not None:
        before = _ordered(compute(session, opts, scope, baseline, ids, now=now).get(key) or {})
        out["baseline"] = {"from": _iso(baseline.start), "to": _iso(baseline.end), "kpis": before}
        out["change"] = changes(values, before)
    return out


def _ordered(values: dict[str, Any]) -> dict[str, Any]:
    """KPIs in the order of DESIGN §4's table, whatever order the families produced them."""
    return {name: values[name] for name in KPI_NAMES if name in values}


def changes(current: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in current.items():
        old = base.get(name)
        if isinstance(value, dict):
            out[name] = {
                stat: _change(value.get(stat), (old or {}).get(stat))
                for stat in ("mean", "median", "p90")
            }
        else:
            out[name] = _change(value, old)
    return out


def _change(new: Any, old: Any) -> dict[str, float | None]:
    if not isinstance(new, int | float) or not isinstance(old, int | float):
        return {"absolute": None, "relative": None}
    absolute = round(float(new) - float(old), 4)
    relative = round(absolute / abs(float(old)) * 100, 4) if old else None
    return {"absolute": absolute, "relative": relative}


def hour_of_week(session: Session, opts: KpiOptions, period: Period) -> list[int]:
    """Inbound customer messages per local hour of the week (Monday 00:00 first), 168 bins.

    SQL counts per quarter-hour of UTC epoch; the local hour is found in Python per
    quarter-hour, so DST and half-hour zones are exact.
    """
    m = Message
    bucket = ifloor(epoch(m.timestamp) / 900)
    conds = [m.direction == "inbound", m.sender_kind == "customer"]
    if period.start is not None:
        conds.append(m.timestamp >= period.start)
    if period.end is not None:
        conds.append(m.timestamp < period.end)
    bins = [0] * 168
    tz = opts.tz
    for quarter, count in session.execute(
        select(bucket, func.count()).where(*conds).group_by(bucket)
    ):
        local = datetime.fromtimestamp(int(quarter) * 900, UTC).astimezone(tz)
        bins[local.weekday() * 24 + local.hour] += int(count)
    return bins


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
