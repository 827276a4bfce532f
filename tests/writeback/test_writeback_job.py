"""The write-back job end to end: webhooks → KPIs → outbox → CRM field, incrementally."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connector import create_app, kpi_dirty, outbox, schedule, writeback
from connector.cli import cli
from connector.crm import build_syncer, pull
from connector.db import Database, get_db
from connector.models import CrmFieldWrite, FieldMapping, KpiValue, OutboxOp, utcnow
from connector.settings_ext import file_config_of, settings_of
from connector.sync import Syncer
from crm_adapters import local
from crm_adapters.errors import Transient
from tests.conftest import ADMIN_TOKEN, Signer, base_config
from tests.kpis.timeline import Timeline
from tests.payloads import at
from tests.sync.fake_adapter import FakeAdapter

A, B = "16505551234", "447700900001"


class Clock:
    """The wall clock, moved forward by ``skip``."""

    def __init__(self) -> None:
        self.skip = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.skip


@pytest.fixture
def t(client: FlaskClient, auth: dict[str, str], db: Database) -> Timeline:
    return Timeline(client, Signer(), auth, db)


def two_conversations(t: Timeline) -> None:
    """A waits 90 s for ana's reply, B 30 s: FRT 90 s and 30 s, 2 messages each."""
    t.inbound(A, at())
    t.outbound(A, at(minutes=1.5), agent_id="ana")
    t.inbound(B, at(minutes=10))
    t.outbound(B, at(minutes=10.5), agent_id="ana")


def add_mapping(client: FlaskClient, auth: dict[str, str], **body: Any) -> None:
    response = client.post("/api/v1/mappings", json=body, headers=auth)
    assert response.status_code == 201, response.json


def contact_mappings(client: FlaskClient, auth: dict[str, str], period: str = "all") -> None:
    add_mapping(
        client,
        auth,
        kpi="frt",
        scope="contact",
        field=f"wa_frt_min_{period}",
        transform="seconds_to_minutes",
        period=period,
    )
    add_mapping(
        client,
        auth,
        kpi="message_volume",
        scope="contact",
        field=f"wa_msgs_{period}",
        period=period,
    )


def run(app: Flask, now: datetime, *, full: bool = False) -> writeback.RunStats:
    return writeback.run(get_db(app), settings_of(app), file_config_of(app), now=now, full=full)


def crm_fields(db: Database) -> dict[str, dict[str, Any]]:
    """Local CRM contacts' custom fields by wa_id."""
    with db.engine.connect() as conn:
        return {
            key: fields
            for key, fields in conn.execute(select(local.contacts.c.key, local.contacts.c.fields))
        }


def accepted(db: Database) -> dict[tuple[str, str], str | None]:
    with db.session() as s:
        return {(w.crm_id, w.field): w.value for w in s.scalars(select(CrmFieldWrite))}


def computed_at(db: Database) -> dict[tuple[str, str], datetime]:
    with db.session() as s:
        return {(v.scope_id, v.kpi): v.computed_at for v in s.scalars(select(KpiValue))}


def write_ops(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.session() as s:
        return [
            (op.status, op.payload["values"])  # type: ignore[index]
            for op in s.scalars(
                select(OutboxOp).where(OutboxOp.operation == "write_fields").order_by(OutboxOp.id)
            )
        ]


def test_traffic_reaches_the_crm_field_then_only_changes_follow(
    app: Flask, client: FlaskClient, auth: dict[str, str], t: Timeline, db: Database
) -> None:
    two_conversations(t)
    build_syncer(app).flush(force=True)  # the contacts exist in the CRM now
    contact_mappings(client, auth)
    first = run(app, at(hours=1))
    assert (first.computed, first.records, first.fields) == ({"contact": 2}, 2, 4)
    assert build_syncer(app).flush(force=True).by_op == {"write_fields": 2}
    assert crm_fields(db) == {
        A: {"wa_frt_min_all": 1.5, "wa_msgs_all": 2},  # 90 s / 60; 1 in + 1 out
        B: {"wa_frt_min_all": 0.5, "wa_msgs_all": 2},  # 30 s / 60
    }
    assert sorted(accepted(db).values()) == ["0.5", "1.5", "2", "2"]

    quiet = run(app, at(hours=2))  # no traffic since: nothing computed, nothing sent
    assert (quiet.computed, quiet.records) == ({}, 0)

    before = computed_at(db)
    t.inbound(A, at(minutes=30))  # A writes again, same conversation: FRT stays 90 s
    again = run(app, at(hours=3))
    assert again.computed == {"contact": 1}
    after = computed_at(db)
    changed = {key for key in after if after[key] != before[key]}
    assert {scope_id for scope_id, _ in changed} == {"1"}  # A only; B untouched
    assert (again.records, again.fields, again.unchanged) == (1, 1, 1)
    build_syncer(app).flush(force=True)
    assert crm_fields(db)[A] == {"wa_frt_min_all": 1.5, "wa_msgs_all": 3}  # 2 in + 1 out
    assert crm_fields(db)[B] == {"wa_frt_min_all": 0.5, "wa_msgs_all": 2}


def test_records_without_a_crm_id_are_reported_not_written(
    app: Flask, client: FlaskClient, auth: dict[str, str], t: Timeline, db: Database
) -> None:
    two_conversations(t)  # contacts not synced yet; ana is not linked to a CRM user
    contact_mappings(client, auth)
    add_mapping(client, auth, kpi="frt_human", scope="agent", object="User", field="wa_frt")
    stats = run(app, at(hours=1))
    assert stats.no_record == {"contact": 2, "agent": 1}
    assert stats.records == 0 and write_ops(db) == []
    with db.session() as s:  # computed and kept all the same
        agent_frt = s.scalars(select(KpiValue).where(KpiValue.scope == "agent")).one()
    # ana answered after 90 s and 30 s: mean (90 + 30) / 2 = 60 s
    assert (agent_frt.kpi, agent_frt.value, agent_frt.data["count"]) == ("frt_human", 60.0, 2)


def test_a_linked_agent_gets_its_kpis_on_its_crm_user(
    app: Flask, client: FlaskClient, auth: dict[str, str], t: Timeline, db: Database
) -> None:
    two_conversations(t)
    add_mapping(client, auth, kpi="frt_human", scope="agent", object="User", field="wa_frt")
    assert run(app, at(hours=1)).no_record == {"agent": 1}  # computed, nowhere to write
    linked = client.put("/api/v1/agents/ana", json={"name": "Ana", "crm_id": "u-7"}, headers=auth)
    assert linked.status_code == 200
    assert linked.json == {
        "agent_id": "ana",
        "name": "Ana",
        "is_bot": False,
        "crm": "local",
        "crm_id": "u-7",
    }
    # Linking marks the agent dirty: the next incremental run writes it, no new traffic.
    stats = run(app, at(hours=2))
    assert (stats.computed, stats.records, stats.no_record) == ({"agent": 1}, 1, {})
    build_syncer(app).flush(force=True)
    with db.engine.connect() as conn:
        users = dict(conn.execute(select(local.users.c.id, local.users.c.fields)).all())
    assert users == {"u-7": {"wa_frt": 60.0}}  # ana: (90 + 30) / 2 = 60 s
    records = client.get("/api/v1/crm/records?object=user", headers=auth).json["items"]
    assert [(r["id"], r["fields"]) for r in records] == [("u-7", {"wa_frt": 60.0})]
    listed = client.get("/api/v1/agents", headers=auth).json["agents"]
    assert [(a["agent_id"], a["crm_id"]) for a in listed] == [("ana", "u-7")]
    # Unlinked: the next run has nowhere to write ana's KPIs again.
    client.put("/api/v1/agents/ana", json={"crm_id": None}, headers=auth)
    assert run(app, at(hours=3), full=True).no_record == {"agent": 1}


def test_agent_updates_are_validated(client: FlaskClient, auth: dict[str, str]) -> None:
    bad = client.put(
        "/api/v1/agents/ana", json={"is_bot": "yes", "crm_id": "", "team": 1}, headers=auth
    )
    assert bad.status_code == 400
    assert bad.json["error"]["details"]["fields"] == {
        "team": "unknown field",
        "crm_id": "expected a non-empty string",
        "is_bot": "expected true or false",
    }
    bot = client.put("/api/v1/agents/helper", json={"is_bot": True}, headers=auth)
    assert bot.json == {
        "agent_id": "helper",
        "name": None,
        "is_bot": True,
        "crm": "local",
        "crm_id": None,
    }


def test_a_crm_failure_keeps_the_write_pending_and_the_record_unchanged(
    client: FlaskClient, auth: dict[str, str], app: Flask, t: Timeline, db: Database
) -> None:
    two_conversations(t)
    adapter, clock = FakeAdapter(), Clock()
    syncer = Syncer(db, adapter, crm="local", clock=clock)
    syncer.flush(force=True)
    contact_mappings(client, auth)
    assert run(app, at(hours=1)).records == 2
    adapter.fail_next = [Transient("503 Service Unavailable")]
    assert syncer.flush(force=True).retried == 2
    assert [status for status, _ in write_ops(db)] == ["pending", "pending"]
    assert accepted(db) == {}
    # Recomputing finds the same values on their way: no second copy is queued.
    full = run(app, at(hours=2), full=True)
    assert (full.records, full.unchanged) == (0, 4)
    clock.skip = timedelta(minutes=5)  # past the backoff
    assert syncer.flush(force=True).done == 2
    assert accepted(db) == {
        ("crm-1", "wa_frt_min_all"): "1.5",
        ("crm-1", "wa_msgs_all"): "2",
        ("crm-2", "wa_frt_min_all"): "0.5",
        ("crm-2", "wa_msgs_all"): "2",
    }


def test_a_refused_value_is_not_sent_again_until_it_changes(
    client: FlaskClient, auth: dict[str, str], app: Flask, t: Timeline, db: Database
) -> None:
    t.inbound(A, at())
    adapter = FakeAdapter()
    syncer = Syncer(db, adapter, crm="local")
    syncer.flush(force=True)
    add_mapping(client, auth, kpi="message_volume", scope="contact", field="wa_msgs")
    run(app, at(hours=1))
    adapter.refuse["crm-1"] = "PROPERTY_DOESNT_EXIST"
    assert syncer.flush(force=True).dead == 1
    assert run(app, at(hours=2), full=True).records == 0  # the same 1 would die again
    t.inbound(A, at(minutes=1))
    assert run(app, at(hours=3)).fields == 1  # 2 messages now: worth another try
    assert write_ops(db) == [("dead", {"wa_msgs": 1}), ("pending", {"wa_msgs": 2})]


def test_a_won_deal_pulled_from_the_crm_reaches_its_contacts_fields(
    app: Flask, client: FlaskClient, auth: dict[str, str], t: Timeline, db: Database
) -> None:
    two_conversations(t)
    build_syncer(app).flush(force=True)
    add_mapping(client, auth, kpi="attributed_revenue", scope="contact", field="wa_revenue")
    add_mapping(client, auth, kpi="conversion_rate", scope="contact", field="wa_conversion")
    run(app, at(hours=1))
    build_syncer(app).flush(force=True)
    assert crm_fields(db)[A] == {"wa_revenue": 0.0, "wa_conversion": 0.0}
    with db.engine.begin() as conn:  # A buys two days later (local CRM deal, won)
        crm_contact = conn.execute(
            select(local.contacts.c.id).where(local.contacts.c.key == A)
        ).scalar_one()
        conn.execute(
            local.deals.insert().values(
                name="Order",
                amount=Decimal("500.00"),
                is_closed=True,
                is_won=True,
                close_date=at(days=2).replace(tzinfo=None),
                contact_ids=[crm_contact],
                fields={},
                updated_at=at(days=2).replace(tzinfo=None),
            )
        )
    pull(app)  # links the deal to A with a Core insert: the deal is dirty, not A
    stats = run(app, at(days=3))
    assert stats.computed == {"contact": 1}  # widened from the deal to A only
    build_syncer(app).flush(force=True)
    # A's one conversation (opened T0) is followed by a won deal within 30 days: 1/1 = 100 %;
    # last-touch credits it the whole 500.
    assert crm_fields(db)[A] == {"wa_revenue": 500.0, "wa_conversion": 100.0}
    assert crm_fields(db)[B] == {"wa_revenue": 0.0, "wa_conversion": 0.0}


def test_the_full_run_moves_rolling_periods_and_clears_stale_fields(
    app: Flask, client: FlaskClient, auth: dict[str, str], t: Timeline, db: Database
) -> None:
    two_conversations(t)
    build_syncer(app).flush(force=True)
    contact_mappings(client, auth, period="7d")
    run(app, at(days=1))
    build_syncer(app).flush(force=True)
    assert crm_fields(db)[A] == {"wa_frt_min_7d": 1.5, "wa_msgs_7d": 2}
    # Ten days on, no traffic: the last 7 days hold nothing for A or B.
    assert run(app, at(days=10)).records == 0  # incremental: nothing was touched
    full = run(app, at(days=10), full=True)
    assert (full.records, full.fields) == (2, 4)
    build_syncer(app).flush(force=True)
    assert crm_fields(db)[A] == {"wa_frt_min_7d": None, "wa_msgs_7d": 0}


def test_a_failed_run_gives_its_claim_back(
    app: Flask, client: FlaskClient, auth: dict[str, str], t: Timeline, db: Database
) -> None:
    two_conversations(t)
    contact_mappings(client, auth)
    with db.session() as s:  # a row edited by hand: a business number has no CRM record
        s.add(
            FieldMapping(kpi="frt", scope="phone_number", crm="local", object_type="x", field="y")
        )
    with db.session() as s:
        dirty = {(d.scope, d.scope_id) for d in s.scalars(select(kpi_dirty.KpiDirty))}
    with pytest.raises(ValueError, match="has no CRM record"):
        run(app, at(hours=1))
    with db.session() as s:
        back = {(d.scope, d.scope_id) for d in s.scalars(select(kpi_dirty.KpiDirty))}
    # The new mappings had asked for every contact ("*"), which covers contacts 1 and 2.
    assert ("contact", "*") in dirty
    assert back == {key for key in dirty if key[0] != "contact"} | {("contact", "*")}


# -- configuration file, scheduler, CLI -----------------------------------------------------


@pytest.fixture
def yaml_app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "wacrm.yaml"
    path.write_text(
        "field_mappings:\n"
        "  - {kpi: frt, stat: median, scope: contact, object: contacts, field: wa_frt_s}\n"
    )
    app = create_app(base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(path)))
    yield app
    get_db(app).dispose()


def test_file_mappings_are_written_at_each_run(yaml_app: Flask) -> None:
    db = get_db(yaml_app)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    two_conversations(Timeline(yaml_app.test_client(), Signer(), auth, db))
    build_syncer(yaml_app).flush(force=True)
    stats = run(yaml_app, at(hours=1))
    assert (stats.mappings, stats.fields) == (1, 2)
    build_syncer(yaml_app).flush(force=True)
    assert crm_fields(db) == {A: {"wa_frt_s": 90.0}, B: {"wa_frt_s": 30.0}}


def test_only_the_lease_holder_runs(
    app: Flask, client: FlaskClient, auth: dict[str, str], t: Timeline, db: Database
) -> None:
    two_conversations(t)
    contact_mappings(client, auth)
    settings, start = settings_of(app), threading.Barrier(2)
    ran: dict[str, bool] = {}

    def tick(holder: str) -> None:
        start.wait()
        ran[holder] = schedule.kpi_tick(app, settings, holder)

    threads = [threading.Thread(target=tick, args=(f"host-{n}:1",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ran.values()) == [False, True]
    with db.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(KpiValue)) == 4
        )  # one run: 2 contacts x 2 KPIs


def test_a_run_in_progress_blocks_another_even_from_the_same_process(
    app: Flask, db: Database, db_url: str, tmp_path: Path
) -> None:
    settings, holder = settings_of(app), schedule.holder_id()
    now = utcnow()
    assert schedule.acquire_lease(db, "elsewhere:9", ttl=timedelta(minutes=5), now=now, name="kpis")
    assert schedule.kpi_tick(app, settings, holder) is False  # the leader, but a run is on
    busy = CliRunner().invoke(cli, ["kpis", "compute"], env=env_for(db_url, tmp_path))
    assert busy.exit_code == 1 and "another write-back run is in progress" in busy.output
    schedule.release_lease(db, "elsewhere:9", name="kpis", now=utcnow())
    assert schedule.kpi_tick(app, settings, holder) is True


def env_for(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in base_config(db_url, tmp_path).items()
        if k.isupper() and k not in ("TESTING", "QUEUE_IMMEDIATE")
    }


def test_cli_compute_prints_what_it_did(
    client: FlaskClient, auth: dict[str, str], t: Timeline, app: Flask, db_url: str, tmp_path: Path
) -> None:
    two_conversations(t)
    build_syncer(app).flush(force=True)
    contact_mappings(client, auth)
    result = CliRunner().invoke(cli, ["kpis", "compute"], env=env_for(db_url, tmp_path))
    assert result.exit_code == 0, result.output
    assert "computed contact 2; enqueued 4 field value(s) on 2 record(s)" in result.output
    again = CliRunner().invoke(
        cli, ["kpis", "compute", "--full", "--json"], env=env_for(db_url, tmp_path)
    )
    assert '"unchanged": 4' in again.output and '"full": true' in again.output


def test_writes_to_a_contact_and_a_deal_sharing_an_id_settle_apart(
    app: Flask, client: FlaskClient, db: Database
) -> None:
    """HubSpot and the local CRM number each object type on its own: contact 1 and deal 1
    are different records, and one's refusal must not mark the other done (or vice versa)."""
    Timeline(client, Signer(), {}, db).inbound(A, at())
    build_syncer(app).flush(force=True)  # local CRM contact 1; no local deal 1
    with db.session() as s:
        outbox.enqueue_fields(s, "local", "contact", "1", {"wa_csat": 80.0}, version="v1")
        outbox.enqueue_fields(s, "local", "deal", "1", {"wa_csat": 60.0}, version="v1")
    report = build_syncer(app).flush(force=True)
    assert (report.done, report.dead) == (1, 1)
    assert [(status, values) for status, values in write_ops(db)] == [
        ("done", {"wa_csat": 80.0}),
        ("dead", {"wa_csat": 60.0}),
    ]
    assert accepted(db) == {("1", "wa_csat"): "80.0"}
