"""The ROI statement behind ``wacrm roi`` and ``GET /api/v1/roi``.

The engine supplies attributed revenue, messaging cost and automated resolutions for the
account; ``connector.kpis.roi`` turns them into value, costs, net and ROI. A period's open
sides close at the first message and now (a period reaching past now is counted up to
now, so no future months of recurring cost are charged). The baseline is the period of
the same length ending at ``baseline_to`` (default: ``WACRM_GO_LIVE``, local midnight).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from connector import kpis
from connector.errors import ValidationFailed
from connector.kpis.engine import first_message_at
from connector.kpis.options import KpiOptions, Period
from connector.kpis.report import parse_bound, period_of
from connector.kpis.roi import roi_figures

NO_BASELINE = "none"


def bounds(session: Session, period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The closed-in ``[start, end)`` the ROI is computed over (the engine's own rule)."""
    start = period.start or first_message_at(session) or now
    end = min(period.end or now, max(now, start))
    return start, end


def figures(session: Session, opts: KpiOptions, period: Period, now: datetime) -> dict[str, Any]:
    """One period's statement figures (no baseline)."""
    values = kpis.compute(session, opts, "account", period, now=now).get("account") or {}
    start, end = bounds(session, period, now)
    fig = roi_figures(
        attributed_revenue=Decimal(str(values.get("attributed_revenue") or 0)),
        messaging_cost=Decimal(str(values.get("messaging_cost") or 0)),
        automated_resolutions=int(values.get("automated_resolutions") or 0),
        opts=opts,
        start=start,
        end=end,
    )
    return {
        "from": _iso(start),
        "to": _iso(end),
        "value": {
            "attributed_revenue": _num(fig["attributed_revenue"]),
            "time_saved_value": _num(fig["time_saved_value"]),
            "total": _num(fig["value"]),
        },
        "costs": {
            "setup": _num(fig["setup"]),
            "recurring": _num(fig["recurring"]),
            "monthly": _num(fig["monthly"]),
            "months": _num(fig["months"]),
            "messaging": _num(fig["messaging_cost"]),
            "total": _num(fig["integration_cost"]),
        },
        "net": _num(fig["net"]),
        "roi": _num(fig["roi"]),
        "basis": {
            "automated_resolutions": int(values.get("automated_resolutions") or 0),
            "minutes_saved": _num(opts.minutes_saved),
            "hourly_rate": _num(opts.hourly_rate),
        },
    }


def statement(
    session: Session,
    opts: KpiOptions,
    period: Period,
    baseline: Period | None,
    now: datetime,
    *,
    rate_card: str | None = None,
) -> dict[str, Any]:
    """``{"from","to","currency","value","costs","net","roi","basis","baseline","change"}``.

    ``rate_card`` names the prices behind the messaging cost (shown in ``basis``).
    """
    current = figures(session, opts, period, now)
    current["basis"]["rate_card"] = rate_card
    out: dict[str, Any] = {"currency": opts.currency, **current, "baseline": None, "change": None}
    if baseline is not None:
        before = figures(session, opts, baseline, now)
        before["basis"]["rate_card"] = rate_card
        out["baseline"] = before
        out["change"] = {
            "value": _change(current["value"]["total"], before["value"]["total"]),
            "costs": _change(current["costs"]["total"], before["costs"]["total"]),
            "net": _change(current["net"], before["net"]),
            "roi": _change(current["roi"], before["roi"]),
        }
    return out


def baseline_ending(session: Session, period: Period, at: datetime, now: datetime) -> Period | None:
    """The period as long as the reported one, ending at ``at``; none for an empty period."""
    start, end = bounds(session, period, now)
    if end <= start:
        return None
    return Period(at - (end - start), at)


def from_request(
    session: Session,
    opts: KpiOptions,
    raw_from: str | None,
    raw_to: str | None,
    raw_baseline_to: str | None,
    now: datetime,
    *,
    rate_card: str | None = None,
) -> dict[str, Any]:
    """Parse the CLI/API parameters (dates are local midnights in the account zone)."""
    tz = opts.tz
    period = period_of(parse_bound("from", raw_from, tz), parse_bound("to", raw_to, tz))
    if (raw_baseline_to or "").strip().lower() == NO_BASELINE:
        at = None
    elif raw_baseline_to:
        at = parse_bound("baseline_to", raw_baseline_to, tz)
    elif opts.go_live is not None:
        at = parse_bound("baseline_to", opts.go_live.isoformat(), tz)
    else:
        at = None
    baseline = None if at is None else baseline_ending(session, period, at, now)
    if raw_baseline_to and at is not None and baseline is None:
        raise ValidationFailed(
            "baseline_to: the reported period is empty, so there is no length to compare",
            details={"parameter": "baseline_to"},
        )
    return statement(session, opts, period, baseline, now, rate_card=rate_card)


def _change(new: float | None, old: float | None) -> dict[str, float | None]:
    if new is None or old is None:
        return {"absolute": None, "relative": None}
    absolute = round(new - old, 2)
    relative = round(absolute / abs(old) * 100, 2) if old else None
    return {"absolute": absolute, "relative": relative}


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
