"""``wacrm kpis …``: ``compute`` runs the write-back now, ``show`` prints a report."""

from __future__ import annotations

import json

import click

from connector import schedule
from connector.cli_kpis_show import show


def _app():  # type: ignore[no-untyped-def]
    from connector import create_app

    return create_app()


@click.group("kpis")
def kpis_group() -> None:
    """KPIs: recompute and write back to the CRM, or show them."""


@kpis_group.command("compute")
@click.option(
    "--full", is_flag=True, help="Every record, not only those touched since the last run."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def kpis_compute(full: bool, as_json: bool) -> None:
    """Recompute the mapped KPIs and enqueue the CRM fields that change (the scheduled job)."""
    stats = schedule.run_kpis(_app(), full=full, holder=schedule.holder_id())
    if stats is None:
        raise click.ClickException("another write-back run is in progress; try again shortly")
    click.echo(json.dumps(stats.as_dict(), indent=2) if as_json else stats.summary())


kpis_group.add_command(show)
