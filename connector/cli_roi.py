"""``wacrm roi``: the ROI statement as aligned text or JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from connector.costs import Prices
from connector.db import get_db
from connector.errors import ValidationFailed
from connector.kpis import KpiOptions
from connector.models import utcnow
from connector.roi_statement import from_request
from connector.settings_ext import file_config_of, settings_of

# (label, path into a statement, how to print it)
ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Value", (), "head"),
    ("  attributed revenue", ("value", "attributed_revenue"), "money"),
    ("  time saved", ("value", "time_saved_value"), "money"),
    ("  total value", ("value", "total"), "money"),
    ("Costs", (), "head"),
    ("  setup", ("costs", "setup"), "money"),
    ("  recurring", ("costs", "recurring"), "money"),
    ("  messaging", ("costs", "messaging"), "money"),
    ("  integration cost", ("costs", "total"), "money"),
    ("Net", ("net",), "money"),
    ("ROI", ("roi",), "percent"),
)


def _app():  # type: ignore[no-untyped-def]
    from connector import create_app

    return create_app()


@click.command("roi")
@click.option(
    "--from", "start", default=None, help="ISO date or datetime (default: first message)."
)
@click.option("--to", "end", default=None, help="ISO date or datetime, exclusive (default: now).")
@click.option(
    "--baseline-to",
    default=None,
    help="Compare with the period of the same length ending here "
    "(default WACRM_GO_LIVE; 'none' for no baseline).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def roi_command(start: str | None, end: str | None, baseline_to: str | None, fmt: str) -> None:
    """Value, costs, net and ROI % over a period (dates are local to WACRM_TIMEZONE)."""
    app = _app()
    settings, file_config = settings_of(app), file_config_of(app)
    opts = KpiOptions.from_settings(settings, file_config)
    card = Prices.from_config(file_config.rate_card, settings.currency).source
    try:
        with get_db(app).session() as session:
            result = from_request(session, opts, start, end, baseline_to, utcnow(), rate_card=card)
    except ValidationFailed as exc:
        raise click.UsageError(exc.message) from None
    click.echo(json.dumps(result, indent=2) if fmt == "json" else render(result))


def render(result: dict[str, Any]) -> str:
    """Plain aligned text: one column for the period, two more with a baseline."""
    base = result["baseline"]
    lines = [f"ROI statement {result['from']} to {result['to']} ({result['currency']})"]
    if base is not None:
        lines.append(f"baseline      {base['from']} to {base['to']}")
        lines.append(
            "".join([" " * 22, *(f"{h:>13}   " for h in ("period", "baseline", "change"))])
        )
    for label, path, kind in ROWS:
        if kind == "head":
            lines.append(label)
            continue
        now_value = _dig(result, path)
        row = f"{label:22}{_fmt(now_value, kind):>16}"
        if base is not None:
            before = _dig(base, path)
            delta = None if now_value is None or before is None else now_value - before
            row += f"{_fmt(before, kind):>16}{_fmt(delta, kind, signed=True):>16}"
        lines.append(row)
    lines.append("")
    lines.append(_basis(result))
    if result["basis"].get("rate_card"):
        lines.append(f"messaging priced from: {result['basis']['rate_card']}")
    return "\n".join(line.rstrip() for line in lines)


def _basis(result: dict[str, Any]) -> str:
    b, c = result["basis"], result["costs"]
    return (
        f"time saved = {b['automated_resolutions']} automated resolutions x "
        f"{_plain(b['minutes_saved'])} min / 60 x {_plain(b['hourly_rate'])}/h; "
        f"recurring = {_plain(c['monthly'])}/month x {_plain(c['months'])} months"
    )


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _fmt(value: float | None, kind: str, *, signed: bool = False) -> str:
    """Numbers right-aligned on the cents; ROI in %, its change in percentage points."""
    if value is None:
        return "n/a   "
    text = f"{value:{'+' if signed else ''},.2f}"
    unit = {"money": "", "percent": " pp" if signed else " %"}[kind]
    return f"{text}{unit:<3}"


def _plain(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"
