"""Webhook endpoints through the Flask test client: verify, sign, store, reject."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connector.db import Database
from connector.models import EventStatus, Message, WebhookEvent
from tests.conftest import VERIFY_TOKEN, Signer, load_fixture
from tests.payloads import envelope


def _events(db: Database) -> list[WebhookEvent]:
    with db.session() as s:
        return list(s.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_verification_handshake_echoes_challenge(client: FlaskClient) -> None:
    spec = json.loads(load_fixture("whatsapp", "meta_verification_get"))
    resp = client.get("/webhooks/whatsapp", query_string=spec["query"])
    assert resp.status_code == spec["expected_response"]["status"]
    assert resp.get_data(as_text=True) == spec["expected_response"]["body"]


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "wrong"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {},
    ],
)
def test_verification_refused(client: FlaskClient, query: dict[str, str]) -> None:
    assert client.get("/webhooks/whatsapp", query_string=query).status_code == 403


def test_signed_post_is_stored_then_processed(
    client: FlaskClient, signer: Signer, db: Database
) -> None:
    body = load_fixture("whatsapp", "meta_text")
    resp = client.post("/webhooks/whatsapp", data=body, headers=signer.headers(body))
    assert resp.status_code == 200
    (event,) = _events(db)
    assert event.body == body and event.signature_valid
    assert event.status == EventStatus.PROCESSED and event.item_errors == 0
    assert event.headers["X-Hub-Signature-256"].startswith("sha256=")


def test_unsigned_post_is_refused_and_not_stored(client: FlaskClient, db: Database) -> None:
    body = load_fixture("whatsapp", "meta_text")
    resp = client.post("/webhooks/whatsapp", data=body, content_type="application/json")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "missing_signature"
    assert _events(db) == []


@pytest.mark.parametrize("header", ["sha256=" + "0" * 64, "sha1=abc", "garbage", "sha256="])
def test_bad_signature_is_refused(client: FlaskClient, db: Database, header: str) -> None:
    body = load_fixture("whatsapp", "meta_text")
    resp = client.post(
        "/webhooks/whatsapp",
        data=body,
        headers={"X-Hub-Signature-256": header, "Content-Type": "application/json"},
    )
    assert resp.status_code == 401
    assert _events(db) == []


def test_signature_over_other_secret_is_refused(client: FlaskClient, db: Database) -> None:
    body = load_fixture("whatsapp", "meta_text")
    resp = client.post("/webhooks/whatsapp", data=body, headers=Signer("other").headers(body))
    assert resp.status_code == 401 and _events(db) == []


def test_body_altered_after_signing_is_refused(client: FlaskClient, signer: Signer) -> None:
    body = load_fixture("whatsapp", "meta_text")
    headers = signer.headers(body)
    resp = client.post(
        "/webhooks/whatsapp", data=body.replace(b"color", b"colour"), headers=headers
    )
    assert resp.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1,2]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": {}}',
    ],
)
def test_signed_unknown_shape_is_400_and_kept_rejected(
    client: FlaskClient, signer: Signer, db: Database, body: bytes
) -> None:
    resp = client.post("/webhooks/whatsapp", data=body, headers=signer.headers(body))
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "malformed_payload"
    (event,) = _events(db)
    assert event.status == EventStatus.REJECTED and event.body == body and event.error


def test_too_large_is_413(db_url: str, tmp_path, signer: Signer) -> None:  # type: ignore[no-untyped-def]
    from connector import create_app
    from tests.conftest import base_config

    app = create_app(base_config(db_url, tmp_path, WACRM_MAX_BODY_BYTES="1000"))
    body = envelope({"messages": [], "padding": "x" * 2000})
    resp = app.test_client().post("/webhooks/whatsapp", data=body, headers=signer.headers(body))
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "payload_too_large"


def test_ignored_field_is_200_stored_and_marked_ignored(
    client: FlaskClient, signer: Signer, db: Database
) -> None:
    body = load_fixture("whatsapp", "meta_message_template_status_update")
    assert (
        client.post("/webhooks/whatsapp", data=body, headers=signer.headers(body)).status_code
        == 200
    )
    (event,) = _events(db)
    assert event.status == EventStatus.IGNORED
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0


def test_bad_item_is_reported_and_others_kept(
    client: FlaskClient, signer: Signer, db: Database
) -> None:
    doc = json.loads(load_fixture("whatsapp", "meta_text"))
    good = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    broken = {k: v for k, v in good.items() if k != "from"} | {"id": "wamid.broken"}
    doc["entry"][0]["changes"][0]["value"]["messages"].append(broken)
    body = json.dumps(doc).encode()
    assert (
        client.post("/webhooks/whatsapp", data=body, headers=signer.headers(body)).status_code
        == 200
    )
    (event,) = _events(db)
    assert event.status == EventStatus.PROCESSED and event.item_errors == 1
    assert "messages[1]" in (event.error or "")
    with db.session() as s:
        assert s.scalars(select(Message.wamid)).all() == [good["id"]]


def test_pending_row_is_recovered_by_the_sweep(app, db: Database, signer: Signer) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from connector import inbox, jobs
    from connector.models import utcnow
    from connector.queue import get_queue

    body = load_fixture("whatsapp", "meta_text")
    # A row committed but never enqueued, as if the process died right after the commit.
    event_id = inbox.store(db, provider="meta", body=body, headers={}, signature_valid=True)
    assert jobs.sweep_inbox(db, get_queue(app), grace=timedelta(seconds=60), now=utcnow()) == 0
    later = utcnow() + timedelta(minutes=2)
    assert jobs.sweep_inbox(db, get_queue(app), grace=timedelta(seconds=60), now=later) == 1
    with db.session() as s:
        assert s.get(WebhookEvent, event_id).status == EventStatus.PROCESSED  # type: ignore[union-attr]
    assert jobs.sweep_inbox(db, get_queue(app), grace=timedelta(seconds=60), now=later) == 0


def test_ack_means_committed(db_url: str, tmp_path, signer: Signer) -> None:  # type: ignore[no-untyped-def]
    """With no consumer running, an acknowledged body is already in the database."""
    from connector import create_app
    from connector.db import make_database
    from tests.conftest import base_config

    config = base_config(db_url, tmp_path) | {"QUEUE_IMMEDIATE": False}
    app = create_app(config)
    body = load_fixture("whatsapp", "meta_text")
    resp = app.test_client().post("/webhooks/whatsapp", data=body, headers=signer.headers(body))
    assert resp.status_code == 200
    app.extensions["wacrm.db"].dispose()  # nothing may be left uncommitted in a pool
    other = make_database(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with other.session() as s:
        (event,) = s.scalars(select(WebhookEvent)).all()
        assert (event.id, event.status, event.body) == (
            resp.get_json()["event_id"],
            "pending",
            body,
        )
    other.dispose()
