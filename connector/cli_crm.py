"""``wacrm outbox …`` and ``wacrm crm …``: sync health, dead-letter replay, CRM fields."""

from __future__ import annotations

import json

import click
from flask import Flask

from connector import mappings, outbox
from connector.crm import build_adapter, build_syncer, pull
from connector.db import get_db
from connector.provision import check_fields, mapped_fields, provision_fields
from connector.settings_ext import file_config_of, settings_of
from crm_adapters.base import FieldSpec


def _app():  # type: ignore[no-untyped-def]
    from connector import create_app

    return create_app()


@click.group("outbox")
def outbox_group() -> None:
    """CRM sync queue: status and dead-letter replay."""


@outbox_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def outbox_status(as_json: bool) -> None:
    """Counts by operation and state, the oldest pending age, recent dead letters."""
    report = outbox.status(get_db(_app()))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    for operation, states in sorted(report.counts.items()):
        line = "  ".join(f"{state}={n}" for state, n in sorted(states.items()))
        click.echo(f"{operation:16} {line}")
    age = report.oldest_pending_seconds
    click.echo(f"oldest pending: {'none' if age is None else f'{age:.1f}s'}")
    for dead in report.dead[:20]:
        click.echo(f"dead #{dead['id']} {dead['operation']} {dead['key']}: {dead['error']}")


@outbox_group.command("replay")
@click.option("--id", "ids", type=int, multiple=True, help="A dead letter's id (repeatable).")
@click.option("--all-dead", is_flag=True, help="Every dead letter.")
def outbox_replay(ids: tuple[int, ...], all_dead: bool) -> None:
    """Send dead letters again, after fixing what the CRM objected to."""
    if not ids and not all_dead:
        raise click.UsageError("give --id N (repeatable) or --all-dead")
    revived = outbox.replay(get_db(_app()), ids=list(ids), all_dead=all_dead)
    click.echo(f"{revived} dead letter(s) back to pending")


@outbox_group.command("flush")
def outbox_flush() -> None:
    """Send everything due now (the background loop does this on its own)."""
    report = build_syncer(_app()).flush(force=True)
    click.echo(
        f"{report.calls} CRM calls: {report.done} done, {report.dead} dead, "
        f"{report.retried} deferred"
    )


@click.group("crm")
def crm_group() -> None:
    """The configured CRM (WACRM_CRM): fields and pulls."""


def _mapped(app: Flask) -> list[FieldSpec]:
    """The KPI fields of the field mappings of the configured CRM (the YAML ones synced
    first)."""
    crm = settings_of(app).crm
    with get_db(app).session() as session:
        mappings.sync_file(session, file_config_of(app).field_mappings, default_crm=crm)
        return mapped_fields(mappings.listed(session), crm)


@crm_group.command("provision")
def crm_provision() -> None:
    """Create the custom fields the connector writes, the mapped KPI fields included
    (idempotent)."""
    app = _app()
    created = provision_fields(build_adapter(app), _mapped(app))
    click.echo(f"created {len(created)} field(s): {', '.join(created) or 'none needed'}")


@crm_group.command("check")
def crm_check() -> None:
    """Report fields that are missing or mistyped on the CRM; exit 1 if any."""
    app = _app()
    problems = check_fields(build_adapter(app), _mapped(app))
    for problem in problems:
        click.echo(problem)
    if problems:
        raise SystemExit(1)
    click.echo("all fields present")


@crm_group.command("pull")
@click.option("--full", is_flag=True, help="Ignore the cursor: pull everything.")
def crm_pull(full: bool) -> None:
    """Bring deals and campaigns from the CRM into the connector's tables."""
    counts = pull(_app(), full=full)
    click.echo(f"pulled {counts['deals']} deal(s), {counts['campaigns']} campaign(s)")
