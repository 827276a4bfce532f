"""``wacrm kpis show``: one scope's KPIs over a period, as a table or JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from connector.db import get_db
from connector.errors import ConnectorError
from connector.kpis import SCOPES, KpiOptions
from connector.kpis.report import BASELINES, parse_bound, period_of, report, with_baseline
from connector.models import utcnow
from connector.settings_ext import file_config_of, settings_of


def _app():  # type: ignore[no-untyped-def]
    from connector import create_app

    return create_app()


@click.command("show")
@click.option("--scope", type=click.Choice(SCOPES), default="account", show_default=True)
@click.option("--id", "ref", default=None, help="Agent id, campaign key, deal id, wa_id...")
@click.option("--from", "start", default=None, help="ISO date or datetime (inclusive).")
@click.option("--to", "end", default=None, help="ISO date or datetime (exclusive).")
@click.option(
    "--baseline",
    type=click.Choice(BASELINES),
    default="none",
    show_default=True,
    help="previous: the period of the same length just before; go_live: after "
    "WACRM_GO_LIVE against the same length before it.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def show(
    scope: str, ref: str | None, start: str | None, end: str | None, baseline: str, fmt: str
) -> None:
    """KPIs of one scope (dates are local to WACRM_TIMEZONE, UTC by default)."""
    app = _app()
    opts = KpiOptions.from_settings(settings_of(app), file_config_of(app))
    try:
        period = period_of(parse_bound("from", start, opts.tz), parse_bound("to", end, opts.tz))
        now = utcnow()
        period, against = with_baseline(baseline, period, opts, now)
        with get_db(app).session() as session:
            body = report(session, opts, scope, ref, period, now=now, baseline=against)
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from None
    if fmt == "json":
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(_table(body))


def _table(body: dict[str, Any]) -> str:
    title = body["scope"] + (f" {body['id']}" if body["id"] else "")
    lines = [f"KPIs for {title}, {body['from'] or 'start'} to {body['to'] or 'now'}"]
    change = body.get("change") or {}
    for name, value in body["kpis"].items():
        row = f"  {name:<26} {_fmt(value, body['currency']):<44}"
        if name in change:
            row += f"  Δ {_delta(change[name])}"
        lines.append(row.rstrip())
    return "\n".join(lines)


def _fmt(value: Any, currency: str) -> str:
    if isinstance(value, dict):
        if not value.get("count"):
            return "-"
        return (
            f"mean {_dur(value['mean'])} · median {_dur(value['median'])} · "
            f"p90 {_dur(value['p90'])} (n={value['count']})"
        )
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _delta(change: dict[str, Any]) -> str:
    if "mean" in change:
        change = change["mean"]
    if change.get("absolute") is None:
        return "-"
    relative = change.get("relative")
    return f"{change['absolute']:+,.2f}" + (f" ({relative:+.1f} %)" if relative is not None else "")
