"""`wacrm outbox …`, `wacrm crm …` and pulling deals/campaigns, on the built-in CRM."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.cli import cli
from connector.crm import build_syncer, pull
from connector.db import Database
from connector.models import Campaign, Deal, DealContact
from crm_adapters import local
from tests.conftest import Signer, base_config
from tests.payloads import at, inbound


def env_for(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in base_config(db_url, tmp_path).items()
        if k.isupper() and k not in ("TESTING", "QUEUE_IMMEDIATE")
    }


def post(client: FlaskClient, body: bytes) -> None:
    assert (
        client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body)).status_code
        == 200
    )


def test_outbox_status_flush_and_replay(client: FlaskClient, db_url: str, tmp_path: Path) -> None:
    post(client, inbound("wamid.cli", at()))
    runner, env = CliRunner(), env_for(db_url, tmp_path)
    status = runner.invoke(cli, ["outbox", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "log_message      pending=1" in status.output and "oldest pending:" in status.output
    flushed = runner.invoke(cli, ["outbox", "flush"], env=env)
    assert "2 CRM calls: 2 done" in flushed.output
    as_json = runner.invoke(cli, ["outbox", "status", "--json"], env=env)
    assert '"done": 1' in as_json.output
    assert runner.invoke(cli, ["outbox", "replay"], env=env).exit_code == 2
    assert (
        "0 dead letter(s)" in runner.invoke(cli, ["outbox", "replay", "--all-dead"], env=env).output
    )


def test_provision_then_check(db_url: str, tmp_path: Path) -> None:
    runner, env = CliRunner(), env_for(db_url, tmp_path)
    missing = runner.invoke(cli, ["crm", "check"], env=env)
    assert missing.exit_code == 1 and "missing: contact.whatsapp_wa_id" in missing.output
    created = runner.invoke(cli, ["crm", "provision"], env=env)
    assert "created 2 field(s)" in created.output
    again = runner.invoke(cli, ["crm", "provision"], env=env)
    assert "created 0 field(s)" in again.output
    ok = runner.invoke(cli, ["crm", "check"], env=env)
    assert ok.exit_code == 0 and "all fields present" in ok.output


def test_pull_brings_deals_and_links_contacts(
    app: Flask, client: FlaskClient, db: Database
) -> None:
    post(client, inbound("wamid.deal", at()))
    build_syncer(app).flush(force=True)  # the contact now exists in the local CRM
    with db.engine.begin() as conn:
        crm_contact = conn.execute(select(local.contacts.c.id)).scalar_one()
        conn.execute(
            local.deals.insert().values(
                name="Spring order",
                amount=Decimal("1250.00"),
                currency="EUR",
                stage="won",
                is_closed=True,
                is_won=True,
                close_date=datetime(2026, 3, 5),
                contact_ids=[crm_contact],
                fields={},
                updated_at=datetime(2026, 3, 5),
            )
        )
        conn.execute(
            local.campaigns.insert().values(
                name="Spring sale",
                status="active",
                spend=Decimal("300"),
                fields={},
                updated_at=datetime(2026, 3, 1),
            )
        )
    assert pull(app) == {"deals": 1, "campaigns": 1}
    with db.session() as s:
        deal = s.scalars(select(Deal)).one()
        assert (deal.amount, deal.is_won, deal.crm) == (Decimal("1250.00"), True, "local")
        assert deal.won_at == datetime(2026, 3, 5, tzinfo=UTC)
        assert s.scalars(select(DealContact)).one().deal_id == deal.id
        campaign = s.scalars(select(Campaign)).one()
        assert (campaign.name, campaign.spend) == ("Spring sale", Decimal("300.00"))
    # The cursor moved: a second pull brings nothing unchanged.
    assert pull(app) == {"deals": 0, "campaigns": 0}
