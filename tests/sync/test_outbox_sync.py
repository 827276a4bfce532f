"""Outbox → CRM: batching, delays, typed failures, dead letters, crash safety."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connector import outbox
from connector.crm import build_syncer
from connector.db import Database
from connector.models import CrmLink, OutboxOp
from connector.sync import Syncer
from crm_adapters import local
from crm_adapters.errors import AuthExpired, RateLimited, Transient
from tests.conftest import Signer
from tests.payloads import at, inbound, status
from tests.sync.fake_adapter import FakeAdapter


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def post(client: FlaskClient, body: bytes) -> None:
    assert (
        client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body)).status_code
        == 200
    )


def states(db: Database) -> dict[tuple[str, str], int]:
    with db.session() as s:
        return {
            (op, st): n
            for op, st, n in s.execute(
                select(OutboxOp.operation, OutboxOp.status, func.count()).group_by(
                    OutboxOp.operation, OutboxOp.status
                )
            )
        }


def fake_syncer(db: Database, adapter: FakeAdapter, clock: Clock) -> Syncer:
    return Syncer(db, adapter, crm="local", clock=clock)  # rows were enqueued for "local"


def test_messages_reach_the_local_crm_once(app: Flask, client: FlaskClient, db: Database) -> None:
    for k in range(3):
        post(client, inbound(f"wamid.l{k}", at(minutes=k)))
    assert states(db) == {("upsert_contact", "pending"): 1, ("log_message", "pending"): 3}
    report = build_syncer(app).flush(force=True)
    assert (report.calls, report.done) == (2, 4)
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(local.messages)).scalar() == 3
        (row,) = conn.execute(select(local.contacts)).all()
        assert (row.key, row.name) == ("16505551234", "Sheena Nelson")
    post(client, inbound("wamid.l0", at()))  # a redelivery
    assert build_syncer(app).flush(force=True).calls == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(CrmLink)) == 4


def test_batches_of_max_size_contacts_first(client: FlaskClient, db: Database) -> None:
    for k in range(250):
        post(client, inbound(f"wamid.b{k}", at(minutes=k), wa_id=f"4477009{k % 5:05d}"))
    adapter, clock = FakeAdapter(), Clock()
    fake_syncer(db, adapter, clock).flush(force=True)
    assert [(op, len(recs)) for op, recs in adapter.calls] == [
        ("upsert_contacts", 5),
        ("log_messages", 100),
        ("log_messages", 100),
        ("log_messages", 50),
    ]


def test_partial_batch_waits_for_max_delay(client: FlaskClient, db: Database) -> None:
    post(client, inbound("wamid.d", at()))
    adapter, clock = FakeAdapter(), Clock()
    syncer = fake_syncer(db, adapter, clock)
    assert syncer.flush().calls == 0  # 2 rows, batch not full, younger than 2 s
    clock.advance(2.5)
    assert syncer.flush().calls == 2


def test_rate_limit_waits_as_told_without_counting_an_attempt(
    client: FlaskClient, db: Database
) -> None:
    post(client, inbound("wamid.r", at()))
    adapter, clock = FakeAdapter(fail_next=[RateLimited("429", retry_after=10)]), Clock()
    syncer = fake_syncer(db, adapter, clock)
    syncer.flush(force=True)
    with db.session() as s:
        row = s.scalars(select(OutboxOp).where(OutboxOp.operation == "upsert_contact")).one()
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.next_attempt_at == clock.now + timedelta(seconds=10)
    clock.advance(5)
    assert syncer.flush(force=True).calls == 0  # still waiting
    clock.advance(6)
    assert syncer.flush(force=True).done == 2


def test_outage_backs_off_and_never_drops(client: FlaskClient, db: Database) -> None:
    post(client, inbound("wamid.o", at()))
    adapter, clock = FakeAdapter(fail_next=[Transient("503")] * 12), Clock()
    syncer = fake_syncer(db, adapter, clock)
    delays = []
    for _ in range(12):
        syncer.flush(force=True)
        with db.session() as s:
            row = s.scalars(select(OutboxOp).where(OutboxOp.operation == "upsert_contact")).one()
            assert row.status == "pending" and "Transient" in (row.last_error or "")
            delays.append((row.next_attempt_at - clock.now).total_seconds())
        clock.now = row.next_attempt_at
    # Exponential (2 s, 4 s, 8 s … capped at 600 s), each with ±50 % jitter.
    for attempt, delay in enumerate(delays, start=1):
        nominal = min(600.0, 2.0 * 2 ** (attempt - 1))
        assert 0.5 * nominal <= delay <= 1.5 * nominal, (attempt, delay)
    syncer.flush(force=True)
    assert states(db) == {("upsert_contact", "done"): 1, ("log_message", "done"): 1}


def test_expired_auth_refreshes_once_and_retries(client: FlaskClient, db: Database) -> None:
    post(client, inbound("wamid.a", at()))
    adapter = FakeAdapter(fail_next=[AuthExpired("401 EXPIRED_AUTHENTICATION")])
    fake_syncer(db, adapter, Clock()).flush(force=True)
    assert adapter.refreshed == 1
    assert states(db)[("log_message", "done")] == 1


def test_refused_record_goes_dead_without_holding_back_its_batch(
    client: FlaskClient, db: Database
) -> None:
    for k in range(3):
        post(client, inbound(f"wamid.p{k}", at(minutes=k)))
    adapter = FakeAdapter(refuse={"wamid.p1": "Property values were not valid"})
    fake_syncer(db, adapter, Clock()).flush(force=True)
    assert states(db)[("log_message", "dead")] == 1
    report = outbox.status(db)
    assert report.dead[0]["key"] == "wamid.p1"
    assert "Property values were not valid [INVALID]" in report.dead[0]["error"]
    assert outbox.replay(db, all_dead=True) == 1
    adapter.refuse.clear()
    fake_syncer(db, adapter, Clock()).flush(force=True)
    assert states(db) == {("upsert_contact", "done"): 1, ("log_message", "done"): 3}


def test_call_level_refusal_is_isolated_to_its_record(client: FlaskClient, db: Database) -> None:
    for k in range(4):
        post(client, inbound(f"wamid.q{k}", at(minutes=k)))
    adapter = FakeAdapter(poison={"wamid.q2"})
    fake_syncer(db, adapter, Clock()).flush(force=True)
    assert states(db)[("log_message", "done")] == 3
    assert states(db)[("log_message", "dead")] == 1


def test_message_of_refused_contact_dies_with_reason(client: FlaskClient, db: Database) -> None:
    post(client, inbound("wamid.c", at()))
    adapter = FakeAdapter(refuse={"16505551234": "INVALID_EMAIL"})
    fake_syncer(db, adapter, Clock()).flush(force=True)
    report = outbox.status(db)
    assert {d["operation"] for d in report.dead} == {"upsert_contact", "log_message"}
    assert any("its contact was refused" in d["error"] for d in report.dead)


def test_crash_between_crm_call_and_commit_creates_nothing_twice(
    app: Flask, client: FlaskClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in range(3):
        post(client, inbound(f"wamid.x{k}", at(minutes=k)))
    syncer = build_syncer(app)
    syncer.flush(force=True)  # the contact
    with db.session() as s:
        s.execute(
            OutboxOp.__table__.update()
            .where(OutboxOp.operation == "log_message")
            .values(status="pending")
        )

    def crash(*_a: Any, **_k: Any) -> None:
        raise SystemExit("killed after the CRM answered")

    with monkeypatch.context() as patch:
        patch.setattr(Syncer, "_apply", crash)
        with pytest.raises(SystemExit):
            syncer.flush(force=True)
    assert states(db)[("log_message", "in_flight")] == 3
    clock = Clock()
    clock.advance(301)  # the claim's lease runs out
    restarted = Syncer(db, syncer.adapter, crm="local", clock=clock)
    restarted.flush(force=True)
    assert states(db)[("log_message", "done")] == 3
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(local.messages)).scalar() == 3


def test_status_only_outbound_is_logged_too(app: Flask, client: FlaskClient, db: Database) -> None:
    post(client, status("wamid.s", "delivered", at()))
    build_syncer(app).flush(force=True)
    with db.engine.connect() as conn:
        (row,) = conn.execute(select(local.messages)).all()
        assert (row.key, row.direction, row.sender_kind) == ("wamid.s", "outbound", "unknown")


def test_sync_api_and_local_records(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    post(client, inbound("wamid.api", at()))
    body = client.get("/api/v1/sync/status", headers=auth).get_json()
    assert body["crm"] == "local" and body["counts"]["log_message"] == {"pending": 1}
    assert body["oldest_pending_seconds"] is not None
    build_syncer(app).flush(force=True)
    records = client.get("/api/v1/crm/records?object=message", headers=auth).get_json()
    assert [r["key"] for r in records["items"]] == ["wamid.api"]
    assert client.post("/api/v1/sync/replay", json={"all_dead": True}, headers=auth).get_json() == {
        "replayed": 0
    }
    assert client.post("/api/v1/sync/replay", json={}, headers=auth).status_code == 400
    assert client.get("/api/v1/crm/records?object=nope", headers=auth).status_code == 400


def test_transient_with_wait_honours_it(client: FlaskClient, db: Database) -> None:
    post(client, inbound("wamid.lock", at()))
    adapter, clock = FakeAdapter(fail_next=[Transient("423 locked", retry_after=2.0)]), Clock()
    fake_syncer(db, adapter, clock).flush(force=True)
    with db.session() as s:
        row = s.scalars(select(OutboxOp).where(OutboxOp.operation == "upsert_contact")).one()
        assert row.next_attempt_at == clock.now + timedelta(seconds=2)


def test_unrefreshable_token_defers_without_dead_letters(client: FlaskClient, db: Database) -> None:
    from crm_adapters.errors import Permanent

    class StaticToken(FakeAdapter):
        def refresh_auth(self) -> None:
            raise Permanent("a private-app token cannot be refreshed")

    post(client, inbound("wamid.tok", at()))
    adapter = StaticToken(fail_next=[AuthExpired("401 EXPIRED_AUTHENTICATION")])
    fake_syncer(db, adapter, Clock()).flush(force=True)
    with db.session() as s:
        row = s.scalars(select(OutboxOp).where(OutboxOp.operation == "upsert_contact")).one()
        assert row.status == "pending" and "refresh failed" in (row.last_error or "")


def test_field_writes_fold_per_record_newest_wins(
    app: Flask, client: FlaskClient, db: Database
) -> None:
    """KPI write-back rides the same outbox: pending writes to one record fold into one."""
    post(client, inbound("wamid.kpi", at()))
    build_syncer(app).flush(force=True)
    with db.engine.connect() as conn:
        crm_id = str(conn.execute(select(local.contacts.c.id)).scalar_one())
    with db.session() as s:
        outbox.enqueue_fields(
            s, "local", "contact", crm_id, {"frt_median": 40, "csat": 80}, version="v1"
        )
        outbox.enqueue_fields(s, "local", "contact", crm_id, {"frt_median": 42}, version="v2")
        outbox.enqueue_fields(s, "local", "contact", "999", {"csat": 1}, version="v1")
    report = build_syncer(app).flush(force=True)
    assert report.calls == 1 and report.done == 2 and report.dead == 1
    with db.engine.connect() as conn:
        fields = conn.execute(select(local.contacts.c.fields)).scalar_one()
    assert fields == {"frt_median": 42, "csat": 80}
    assert "record not found" in outbox.status(db).dead[0]["error"]
