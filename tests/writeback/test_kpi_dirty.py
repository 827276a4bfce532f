"""Touched-scope tracking: which scopes a write dirties, once per transaction, and claims."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from connector import jobs, kpi_dirty
from connector.db import Database
from connector.models import (
    Agent,
    Contact,
    Conversation,
    Deal,
    DealContact,
    KpiDirty,
    Message,
    utcnow,
)
from tests.conftest import Signer
from tests.kpis.timeline import Timeline
from tests.payloads import BUSINESS, at, inbound

A, B = "16505551234", "447700900001"
ACCOUNT = ("account", "account")
NUMBER = ("phone_number", BUSINESS)


@pytest.fixture
def t(client: FlaskClient, auth: dict[str, str], db: Database) -> Timeline:
    return Timeline(client, Signer(), auth, db)


def dirty(db: Database) -> set[tuple[str, str]]:
    with db.session() as s:
        return {(d.scope, d.scope_id) for d in s.scalars(select(KpiDirty))}


def contact_id(db: Database, wa_id: str) -> str:
    with db.session() as s:
        return str(s.scalar(select(Contact.id).where(Contact.wa_id == wa_id)))


def agent_id(db: Database, external: str) -> str:
    with db.session() as s:
        return str(s.scalar(select(Agent.id).where(Agent.external_id == external)))


def conversation_of(db: Database, wamid: str) -> int:
    with db.session() as s:
        conv = s.scalar(select(Message.conversation_id).where(Message.wamid == wamid))
        assert conv is not None
        return conv


def test_an_inbound_message_touches_its_contact_number_and_account(
    t: Timeline, db: Database
) -> None:
    t.inbound(A, at())
    assert dirty(db) == {ACCOUNT, NUMBER, ("contact", contact_id(db, A))}


def test_an_agent_reply_touches_the_agent(t: Timeline, db: Database) -> None:
    t.inbound(A, at())
    kpi_dirty.claim(db)
    t.outbound(A, at(minutes=1), agent_id="ana")
    assert dirty(db) == {
        ACCOUNT,
        NUMBER,
        ("contact", contact_id(db, A)),
        ("agent", agent_id(db, "ana")),
    }


def test_a_transfer_touches_the_old_and_the_new_agent(
    t: Timeline, client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    conv = conversation_of(db, t.inbound(A, at()))
    for agent in ("ana", "bo"):
        kpi_dirty.claim(db)
        r = client.post(
            f"/api/v1/conversations/{conv}/assign", json={"agent_id": agent}, headers=auth
        )
        assert r.status_code == 200
    # ana held it, bo took it over: both agents' FCR and volumes change.
    assert {("agent", agent_id(db, "ana")), ("agent", agent_id(db, "bo"))} <= dirty(db)


def test_a_new_conversation_touches_the_previous_ones_scopes(t: Timeline, db: Database) -> None:
    """A repeat contact within the FCR window flips the earlier conversation's FCR, which
    belongs to the agent who handled it, though the new message names no agent."""
    t.inbound(A, at())
    t.outbound(A, at(minutes=1), agent_id="ana")
    kpi_dirty.claim(db)
    t.inbound(A, at(days=2))  # > 24 h later: a new customer-initiated conversation
    assert ("agent", agent_id(db, "ana")) in dirty(db)


def test_a_message_in_the_same_conversation_does_not_widen(t: Timeline, db: Database) -> None:
    t.inbound(A, at())
    t.outbound(A, at(minutes=1), agent_id="ana")
    kpi_dirty.claim(db)
    t.inbound(B, at(minutes=2))  # another contact: ana's conversation is not theirs
    assert ("agent", agent_id(db, "ana")) not in dirty(db)


def test_a_survey_answer_touches_the_surveyed_conversations_scopes(
    t: Timeline, client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    t.inbound(A, at())
    wamid = t.outbound(A, at(minutes=1), agent_id="ana")
    conv = conversation_of(db, wamid)
    kpi_dirty.claim(db)
    r = client.post(
        "/api/v1/surveys",
        json={"conversation_id": conv, "kind": "csat", "score": 5},
        headers=auth,
    )
    assert r.status_code in (200, 201), r.data
    assert {("agent", agent_id(db, "ana")), ("contact", contact_id(db, A)), ACCOUNT} <= dirty(db)


def test_one_insert_per_transaction_however_many_flushes(
    app: Flask, client: FlaskClient, db: Database
) -> None:
    inserts: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO kpi_dirty"):
            inserts.append(statement)

    event.listen(db.engine, "before_cursor_execute", spy)
    try:
        body = inbound("wamid.one", at())  # ingest flushes several times, in savepoints
        assert client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body))
    finally:
        event.remove(db.engine, "before_cursor_execute", spy)
    assert len(inserts) == 1
    assert len(dirty(db)) == 3


def test_a_rolled_back_transaction_leaves_nothing(t: Timeline, db: Database) -> None:
    conv = conversation_of(db, t.inbound(A, at()))
    kpi_dirty.claim(db)
    with pytest.raises(RuntimeError), db.session() as s:
        s.get(Conversation, conv).deal_id = None  # type: ignore[union-attr]
        s.add(Agent(external_id="zed"))
        s.get(Conversation, conv).transfers = 3  # type: ignore[union-attr]
        s.flush()
        raise RuntimeError("boom")
    assert dirty(db) == set()


def test_reading_without_changes_touches_nothing(t: Timeline, db: Database) -> None:
    conv = conversation_of(db, t.inbound(A, at()))
    kpi_dirty.claim(db)
    with db.session() as s:
        row = s.get(Conversation, conv)
        assert row is not None
        row.transfers = row.transfers  # assigned, but not changed
    assert dirty(db) == set()


def test_resolve_idle_marks_what_it_resolves(db: Database, client: FlaskClient) -> None:
    now = utcnow()
    body = inbound("wamid.open", now - timedelta(minutes=5))
    client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body))
    kpi_dirty.claim(db)
    assert jobs.resolve_idle(db, window=timedelta(hours=24), now=now + timedelta(days=2)) == 1
    assert dirty(db) == {ACCOUNT, NUMBER, ("contact", contact_id(db, A))}


def test_a_contact_merge_marks_both_contacts(t: Timeline, db: Database) -> None:
    """The same person seen by BSUID, then by phone, then by both: the merge moves rows
    with bulk updates (no session hooks) and marks the kept and the folded contact."""
    from tests.payloads import envelope

    def says(wamid: str, minutes: int, **ids: str) -> None:
        sender = {"from": ids["wa_id"]} if "wa_id" in ids else {}
        sender |= {"from_user_id": ids["user_id"]} if "user_id" in ids else {}
        message = {"id": wamid, "type": "text", "text": {"body": "x"}, **sender}
        message["timestamp"] = str(int(at(minutes=minutes).timestamp()))
        body = envelope({"contacts": [{"profile": {"name": "S"}, **ids}], "messages": [message]})
        t.client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body))

    says("wamid.u1", 0, user_id="US.1")
    says("wamid.p1", 1, wa_id=A)
    with db.session() as s:
        before = {str(c) for c in s.scalars(select(Contact.id))}
    assert len(before) == 2
    kpi_dirty.claim(db)
    says("wamid.b1", 2, wa_id=A, user_id="US.1")
    touched = dirty(db)
    assert {("contact", c) for c in before} <= touched
    assert ACCOUNT in touched


def test_a_deal_widens_to_its_contacts_conversations(t: Timeline, db: Database) -> None:
    t.inbound(A, at())
    t.outbound(A, at(minutes=1), agent_id="ana")
    t.inbound(B, at(minutes=5))
    buyer = int(contact_id(db, A))
    with db.session() as s:
        deal = Deal(key="D-1", is_closed=True, is_won=True, won_at=at(days=1))
        s.add(deal)
        s.flush()
        s.add(DealContact(deal_id=deal.id, contact_id=buyer))
        deal_id = str(deal.id)
    assert ("deal", deal_id) in dirty(db)
    with db.session() as s:
        widened = kpi_dirty.widen_deals(s, [deal_id])
    # A's conversation: contact, agent ana, number; B has no part in the deal.
    assert widened == {("contact", contact_id(db, A)), ("agent", agent_id(db, "ana")), NUMBER}


def test_claim_takes_every_row_and_restore_puts_them_back(db: Database) -> None:
    with db.session() as s:
        kpi_dirty.mark(s, [("contact", "1"), ("contact", "2"), ("agent", "7")])
    taken = kpi_dirty.claim(db)
    assert taken.ids == {"contact": {"1", "2"}, "agent": {"7"}}
    assert dirty(db) == set()
    kpi_dirty.restore(db, taken)
    assert dirty(db) == {("contact", "1"), ("contact", "2"), ("agent", "7")}


def test_a_touch_during_a_run_is_kept_for_the_next(db: Database) -> None:
    """The claim deletes first: re-touching a claimed scope mid-run leaves it dirty (deleting
    after the run would erase this touch, its insert having been a no-op)."""
    with db.session() as s:
        kpi_dirty.mark(s, [("contact", "1")])
    kpi_dirty.claim(db)
    with db.session() as s:  # ingest while the run computes
        kpi_dirty.mark(s, [("contact", "1")])
    assert dirty(db) == {("contact", "1")}


def test_too_many_ids_or_the_all_marker_mean_the_whole_scope(db: Database) -> None:
    with db.session() as s:
        kpi_dirty.mark(s, [("contact", str(i)) for i in range(5)] + [("deal", "*"), ("agent", "3")])
    taken = kpi_dirty.claim(db, threshold=4)
    assert taken.everything == {"contact", "deal"}
    assert taken.ids == {"agent": {"3"}}
    kpi_dirty.restore(db, taken)  # a failed run asks for the whole scopes again
    assert dirty(db) == {("contact", "*"), ("deal", "*"), ("agent", "3")}


def test_claim_waits_for_older_writers_on_postgresql(db: Database, db_url: str) -> None:
    """A writer whose insert was a no-op on a row the claim then deletes must have
    committed before the run reads, or its change would be computed by nobody."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's claim waits for writers through its write lock")
    with db.session() as s:
        kpi_dirty.mark(s, [("contact", "1")])
    writer = db.sessions()
    writer.begin()
    kpi_dirty.mark(writer, [("contact", "2")])  # holds a transaction id
    kpi_dirty.mark(writer, [("contact", "1")])  # exists: a no-op, no lock
    threading.Timer(0.5, writer.commit).start()
    started = time.monotonic()
    taken = kpi_dirty.claim(db)
    waited = time.monotonic() - started
    writer.close()
    assert taken.ids == {"contact": {"1"}}
    assert 0.4 <= waited < kpi_dirty.SETTLE_TIMEOUT
    assert dirty(db) == {("contact", "2")}
