"""``GET /api/v1/kpis``: one scope's KPIs over a period, optionally against a baseline."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from connector.api import bp
from connector.db import get_db
from connector.kpis import KpiOptions
from connector.kpis.report import parse_bound, period_of, report, with_baseline
from connector.models import utcnow
from connector.settings_ext import file_config_of, settings_of


@bp.get("/kpis")
def get_kpis() -> dict[str, Any]:
    """Query: scope (default account), id, from, to; a baseline as ``baseline=previous``
    (the same length just before), ``baseline=go_live`` (after WACRM_GO_LIVE against the
    same length before it) or ``baseline_from``/``baseline_to``."""
    opts = KpiOptions.from_settings(settings_of(), file_config_of())
    args, tz = request.args, opts.tz
    period = period_of(
        parse_bound("from", args.get("from"), tz), parse_bound("to", args.get("to"), tz)
    )
    explicit = None
    if args.get("baseline_from") or args.get("baseline_to"):
        explicit = period_of(
            parse_bound("baseline_from", args.get("baseline_from"), tz),
            parse_bound("baseline_to", args.get("baseline_to"), tz),
        )
    now = utcnow()
    period, baseline = with_baseline(args.get("baseline"), period, opts, now, explicit)
    with get_db(current_app).session() as session:
        return report(
            session,
            opts,
            args.get("scope", "account"),
            args.get("id"),
            period,
            now=now,
            baseline=baseline,
        )
