"""``wacrm mappings …``: which KPI lands in which CRM field."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask
from sqlalchemy.orm import Session

from connector import mappings
from connector.crm import build_adapter
from connector.db import get_db
from connector.errors import NotFound, ValidationFailed
from connector.settings_ext import file_config_of, settings_of


def _app() -> Flask:
    from connector import create_app

    return create_app()


def _synced(app: Flask, session: Session) -> None:
    mappings.sync_file(
        session, file_config_of(app).field_mappings, default_crm=settings_of(app).crm
    )


@click.group("mappings")
def mappings_group() -> None:
    """KPI → CRM field mappings (the API's and WACRM_CONFIG_FILE's)."""


@mappings_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def mappings_list(as_json: bool) -> None:
    """Every mapping, enabled or not."""
    app = _app()
    with get_db(app).session() as session:
        _synced(app, session)
        items = [mappings.view(m) for m in mappings.listed(session)]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        click.echo(_line(item))
    if not items:
        click.echo("no mappings (wacrm mappings add, or field_mappings in WACRM_CONFIG_FILE)")


def _line(item: dict[str, Any]) -> str:
    kpi = f"{item['kpi']}.{item['stat']}" if item["stat"] else item["kpi"]
    state = "" if item["enabled"] else " (disabled)"
    return (
        f"#{item['id']:<4} {item['source']:4}  {item['scope']:8} {kpi:24} {item['period']:4} "
        f"-> {item['crm']}:{item['object']}.{item['field']}  [{item['transform']}]{state}"
    )


@mappings_group.command("add")
@click.option("--kpi", required=True, help="A KPI name, e.g. frt, csat, attributed_revenue.")
@click.option("--scope", required=True, type=click.Choice(["contact", "deal", "campaign", "agent"]))
@click.option("--field", "field_name", required=True, help="The CRM field's API name.")
@click.option("--object", "object_type", default=None, help="CRM object (default: the scope's).")
@click.option("--stat", default="mean", show_default=True, help="Durations: mean|median|p90|count.")
@click.option(
    "--transform", default="none", show_default=True, help="e.g. seconds_to_minutes,round2"
)
@click.option("--period", default="all", show_default=True, help="all|7d|30d|90d|mtd")
@click.option("--crm", default=None, help="Default: WACRM_CRM.")
@click.option("--disabled", is_flag=True, help="Store it without writing yet.")
def mappings_add(
    kpi: str,
    scope: str,
    field_name: str,
    object_type: str | None,
    stat: str,
    transform: str,
    period: str,
    crm: str | None,
    disabled: bool,
) -> None:
    """Map a KPI onto a CRM field; the next write-back run fills it for every record."""
    app = _app()
    raw = {
        "kpi": kpi,
        "scope": scope,
        "field": field_name,
        "object": object_type,
        "stat": stat,
        "transform": transform,
        "period": period,
        "crm": crm,
        "enabled": not disabled,
    }
    try:
        values = mappings.normalise(raw, default_crm=settings_of(app).crm)
        with get_db(app).session() as session:
            _synced(app, session)
            row = mappings.add(session, values)
            click.echo(_line(mappings.view(row)))
    except ValidationFailed as exc:
        raise click.UsageError(exc.message) from None


@mappings_group.command("remove")
@click.argument("mapping_id", type=int)
def mappings_remove(mapping_id: int) -> None:
    """Delete an API mapping (a file mapping goes by editing the file)."""
    app = _app()
    try:
        with get_db(app).session() as session:
            _synced(app, session)
            mappings.remove(session, mappings.get(session, mapping_id))
    except (ValidationFailed, NotFound) as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"mapping {mapping_id} removed")


@mappings_group.command("validate")
def mappings_validate() -> None:
    """Check every mapping, and that its field exists on the CRM as a number; exit 1 if not."""
    app = _app()
    with get_db(app).session() as session:
        _synced(app, session)
        rows = mappings.listed(session)
    problems = mappings.check(
        rows,
        build_adapter(app),
        crm=settings_of(app).crm,
        business_hours=file_config_of(app).business_hours is not None,
    )
    for problem in problems:
        click.echo(problem)
    if problems:
        raise SystemExit(1)
    click.echo(f"{len(rows)} mapping(s) OK")
