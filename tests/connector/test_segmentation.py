"""Conversation rules (DESIGN §4) on hand-worked timelines, in every arrival order."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connector import jobs
from connector.db import Database
from connector.models import Contact, Conversation, Message, MessageStatusEvent
from tests.conftest import Signer
from tests.payloads import BUSINESS, at, inbound, status

H = 3600


def post(client: FlaskClient, signer: Signer, body: bytes) -> None:
    resp = client.post("/webhooks/whatsapp", data=body, headers=signer.headers(body))
    assert resp.status_code == 200, resp.get_data()


def record_reply(
    client: FlaskClient, auth: dict[str, str], wamid: str, when: datetime, **extra: Any
) -> dict[str, Any]:
    body = {
        "to": "16505551234",
        "text": "on it",
        "send": False,
        "wamid": wamid,
        "timestamp": when.isoformat(),
        "business_number_id": BUSINESS,
        **extra,
    }
    resp = client.post("/api/v1/messages", json=body, headers=auth)
    assert resp.status_code == 201, resp.get_data()
    return resp.get_json()


def snapshot(db: Database) -> list[tuple[Any, ...]]:
    """Conversations with their messages, free of ids (which depend on arrival order)."""
    with db.session() as s:
        convs = s.scalars(select(Conversation).order_by(Conversation.opened_at)).all()
        out = []
        for c in convs:
            wamids = tuple(
                s.scalars(
                    select(Message.wamid)
                    .where(Message.conversation_id == c.id)
                    .order_by(Message.timestamp, Message.wamid)
                )
            )
            out.append(
                (
                    c.opened_at,
                    c.last_message_at,
                    c.status,
                    c.resolved_by,
                    c.resolved_at,
                    c.initiated_by,
                    wamids,
                )
            )
        return out


def spans(db: Database, origin: datetime) -> list[tuple[float, float, str, str | None]]:
    """(opened h, last h, status, resolved_by) relative to ``origin``, in hours."""
    return [
        ((o - origin).total_seconds() / H, (last - origin).total_seconds() / H, st, by)
        for o, last, st, by, *_ in snapshot(db)
    ]


def test_messages_within_window_share_a_conversation(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    # 0 h in, 10 h in, 34 h in: gaps 10 h and 24 h ≤ 24 h → one conversation 0→34 h.
    for i, hours in enumerate([0, 10, 34]):
        post(client, signer, inbound(f"wamid.a{i}", at(hours=hours)))
    assert spans(db, at()) == [(0, 34, "resolved", "timeout")]


def test_gap_over_window_opens_new_conversation(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    # 0 h, then 24 h + 1 s later: the first is auto-resolved at its last message (0 h).
    post(client, signer, inbound("wamid.a", at()))
    post(client, signer, inbound("wamid.b", at(hours=24) + timedelta(seconds=1)))
    (first, second) = snapshot(db)
    assert first[3:5] == ("timeout", at())
    assert second[0] == at(hours=24) + timedelta(seconds=1)


TIMELINE = [("wamid.t0", 0), ("wamid.t1", 15), ("wamid.t2", 30), ("wamid.t3", 60), ("wamid.t4", 70)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::3])
def test_any_arrival_order_segments_the_same(client, signer, db, order) -> None:  # type: ignore[no-untyped-def]
    # 0, 15, 30 h chain (gaps 15, 15); 60 h is 30 h after 30 → new; 70 h joins it.
    for i in [*order, 4]:
        wamid, hours = TIMELINE[i]
        post(client, signer, inbound(wamid, at(hours=hours)))
    assert spans(db, at()) == [(0, 30, "resolved", "timeout"), (60, 70, "resolved", "timeout")]


def test_late_message_bridges_two_conversations(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    post(client, signer, inbound("wamid.a", at()))
    post(client, signer, inbound("wamid.c", at(hours=40)))
    assert len(snapshot(db)) == 2
    post(client, signer, inbound("wamid.b", at(hours=20)))  # 20 h from each side → merge
    assert spans(db, at()) == [(0, 40, "resolved", "timeout")]


def test_late_message_moves_opening_earlier(client, signer, db, auth) -> None:  # type: ignore[no-untyped-def]
    record_reply(client, auth, "wamid.out", at(hours=5))
    post(client, signer, inbound("wamid.in", at(hours=1)))
    ((opened, last, _st, _by, _r, initiated, wamids),) = snapshot(db)
    assert (opened, last, initiated) == (at(hours=1), at(hours=5), "customer")
    assert wamids == ("wamid.in", "wamid.out")


def test_business_initiated_by_template(client, signer, db, auth) -> None:  # type: ignore[no-untyped-def]
    body = {
        "to": "16505551234",
        "template": {"name": "promo", "language": "en_US"},
        "send": False,
        "wamid": "wamid.tpl",
        "timestamp": at().isoformat(),
        "campaign_id": "spring-sale",
        "business_number_id": BUSINESS,
    }
    assert client.post("/api/v1/messages", json=body, headers=auth).status_code == 201
    post(client, signer, inbound("wamid.reply", at(hours=2)))
    ((*_, initiated, wamids),) = snapshot(db)
    assert initiated == "business" and wamids == ("wamid.tpl", "wamid.reply")
    with db.session() as s:
        conv = s.scalars(select(Conversation)).one()
        assert conv.campaign.key == "spring-sale" and conv.attribution_source == "template"


def recent(hours: float = 0) -> datetime:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    return base + timedelta(hours=hours)


def test_explicit_resolution_then_new_inbound_opens_new(client, signer, db, auth) -> None:  # type: ignore[no-untyped-def]
    post(client, signer, inbound("wamid.1", recent()))
    (conv,) = client.get("/api/v1/conversations", headers=auth).get_json()["items"]
    assert conv["status"] == "open"
    resolved = client.post(f"/api/v1/conversations/{conv['id']}/resolve", headers=auth).get_json()
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "api"
    post(client, signer, inbound("wamid.2", datetime.now(UTC) + timedelta(seconds=5)))
    first, second = snapshot(db)
    assert first[3] == "api" and second[2] == "open" and second[6] == ("wamid.2",)
    # A message from before the resolution, delivered late, joins the resolved conversation.
    post(client, signer, inbound("wamid.0", recent(-1)))
    first, second = snapshot(db)
    assert first[6] == ("wamid.0", "wamid.1") and first[2] == "resolved"


def test_idle_job_resolves_at_last_message(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    sent = recent()  # once: a second boundary between two calls would shift it
    post(client, signer, inbound("wamid.1", sent))
    assert snapshot(db)[0][2] == "open"
    window = timedelta(hours=24)
    assert jobs.resolve_idle(db, window=window, now=datetime.now(UTC)) == 0
    assert jobs.resolve_idle(db, window=window, now=sent + timedelta(hours=24.5)) == 1
    assert snapshot(db)[0][2:5] == ("resolved", "timeout", sent)


def test_same_post_five_times_gives_identical_rows(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    bodies = [
        inbound("wamid.x", at()),
        status("wamid.o", "delivered", at(1)),
        status("wamid.o", "sent", at(0.5)),
    ]
    for body in bodies:
        post(client, signer, body)
    before = snapshot(db)
    for body in bodies * 4:
        post(client, signer, body)
    assert snapshot(db) == before
    with db.session() as s:
        assert len(s.scalars(select(Message)).all()) == 2
        assert len(s.scalars(select(MessageStatusEvent)).all()) == 2


def test_random_interleavings_converge(db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from connector import create_app
    from tests.conftest import base_config

    bodies = [inbound(f"wamid.i{k}", at(hours=h)) for k, h in enumerate([0, 3, 20, 50, 52, 80])]
    bodies += [
        status(f"wamid.o{k}", s, at(hours=h, minutes=m))
        for k, (h, m) in enumerate([(1, 0), (45, 0), (51, 0)])
        for s in ("sent", "delivered")
    ]
    bodies += [inbound("wamid.other", at(hours=2), wa_id="447700900123")]
    results = []
    for seed in range(3):
        order = bodies[:]
        random.Random(seed).shuffle(order)
        app = create_app(base_config(db_url, tmp_path / str(seed)))
        client, signer = app.test_client(), Signer()
        for body in order:
            post(client, signer, body)
        results.append(snapshot(app.extensions["wacrm.db"]))
        _wipe(app.extensions["wacrm.db"])
    assert results[0] == results[1] == results[2]
    assert [(c[0], c[1]) for c in results[0] if "wamid.other" not in c[6]] == [
        (at(), at(hours=20)),
        (at(hours=45), at(hours=52)),
        (at(hours=80), at(hours=80)),
    ]


def _wipe(db: Database) -> None:
    from connector.models import Base

    with db.session() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())


def test_status_before_message_and_out_of_order(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    post(client, signer, inbound("wamid.in", at()))
    post(client, signer, status("wamid.out", "read", at(3)))
    post(client, signer, status("wamid.out", "delivered", at(2), category="service"))
    post(client, signer, status("wamid.out", "sent", at(1)))
    with db.session() as s:
        out = s.scalars(select(Message).where(Message.wamid == "wamid.out")).one()
        assert (out.direction, out.sender_kind, out.status) == ("outbound", "unknown", "read")
        assert (out.timestamp, out.sent_at, out.delivered_at, out.read_at) == (
            at(1),
            at(1),
            at(2),
            at(3),
        )
        assert out.pricing_category == "service"
    ((*_, wamids),) = snapshot(db)
    assert wamids == ("wamid.in", "wamid.out")


def test_status_without_sent_uses_earliest_time(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    post(client, signer, status("wamid.out", "read", at(9)))
    post(client, signer, status("wamid.out", "delivered", at(4)))
    ((opened, _l, _s, _b, _r, initiated, _w),) = snapshot(db)
    assert (opened, initiated) == (at(4), "business")


def test_failed_status_keeps_error(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    err = [{"code": 131049, "title": "not delivered to maintain healthy ecosystem engagement."}]
    post(client, signer, status("wamid.f", "sent", at()))
    post(client, signer, status("wamid.f", "failed", at(1), errors=err))
    with db.session() as s:
        row = s.scalars(select(Message)).one()
        assert (row.status, row.error_code, row.failed_at) == ("failed", 131049, at(1))


def test_recorded_send_upgrades_an_unknown_placeholder(client, signer, db, auth) -> None:  # type: ignore[no-untyped-def]
    # Meta's "sent" webhook can beat our own send call's commit.
    post(client, signer, status("wamid.race", "sent", at(0, hours=0) + timedelta(seconds=2)))
    record_reply(client, auth, "wamid.race", at(), agent_id="agent-7")
    with db.session() as s:
        row = s.scalars(select(Message)).one()
        assert (row.sender_kind, row.timestamp, row.sent_at) == (
            "agent",
            at(),
            at() + timedelta(seconds=2),
        )
        assert s.scalars(select(Conversation)).one().agent_id == row.agent_id


def test_bsuid_and_phone_identities_merge(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    from tests.payloads import envelope

    def only_bsuid(wamid: str, when: datetime) -> bytes:
        return envelope(
            {
                "contacts": [{"profile": {"name": "S"}, "user_id": "US.1"}],
                "messages": [
                    {
                        "from_user_id": "US.1",
                        "id": wamid,
                        "type": "text",
                        "timestamp": str(int(when.timestamp())),
                        "text": {"body": "x"},
                    }
                ],
            }
        )

    post(client, signer, only_bsuid("wamid.u1", at()))
    post(client, signer, inbound("wamid.p1", at(1)))
    both = envelope(
        {
            "contacts": [{"profile": {"name": "S"}, "wa_id": "16505551234", "user_id": "US.1"}],
            "messages": [
                {
                    "from": "16505551234",
                    "from_user_id": "US.1",
                    "id": "wamid.b1",
                    "type": "text",
                    "timestamp": str(int(at(2).timestamp())),
                    "text": {"body": "y"},
                }
            ],
        }
    )
    post(client, signer, both)
    with db.session() as s:
        (contact,) = s.scalars(select(Contact)).all()
        assert (contact.wa_id, contact.user_id) == ("16505551234", "US.1")
        assert {m.contact_id for m in s.scalars(select(Message))} == {contact.id}


def test_system_notice_opens_nothing(client, signer, db) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import load_fixture

    post(client, signer, load_fixture("whatsapp", "meta_system_user_changed_number"))
    with db.session() as s:
        row = s.scalars(select(Message)).one()
        assert row.conversation_id is None and row.type == "system"
        assert s.scalars(select(Contact)).one().wa_id == "12195555358"
