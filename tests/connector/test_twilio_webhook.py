"""Twilio webhook: X-Twilio-Signature over the public URL, form bodies, same events as Meta."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from connector import create_app
from connector.db import get_db
from connector.models import Contact, EventStatus, Message, WebhookEvent
from tests.conftest import base_config, load_fixture
from whatsapp import twilio_signature

TOKEN = "12345-twilio-token"
PUBLIC = "https://wa.example.com"


def form(name: str) -> dict[str, str]:
    return json.loads(load_fixture("whatsapp", name))["form"]


@pytest.fixture
def twilio_app(db_url: str, tmp_path: Path) -> Flask:
    return create_app(
        base_config(db_url, tmp_path, TWILIO_AUTH_TOKEN=TOKEN, WACRM_PUBLIC_URL=PUBLIC)
    )


def send(
    app: Flask,
    data: dict[str, str],
    *,
    url: str = PUBLIC + "/webhooks/twilio",
    signature: str | None = None,
) -> Any:
    sig = signature if signature is not None else twilio_signature(TOKEN, url, data)
    return app.test_client().post(
        "/webhooks/twilio", data=data, headers={"X-Twilio-Signature": sig}
    )


def test_inbound_text_is_normalised(twilio_app: Flask) -> None:
    resp = send(twilio_app, form("twilio_inbound_text"))
    assert resp.status_code == 200 and resp.content_type.startswith("text/xml")
    with get_db(twilio_app).session() as s:
        msg = s.scalars(select(Message)).one()
        assert (msg.wamid, msg.text, msg.direction, msg.provider) == (
            "SM892512e202b34d4109b10a3893fa9640",
            "test",
            "inbound",
            "twilio",
        )
        assert s.scalars(select(Contact)).one().wa_id == "31612345678"


def test_status_callbacks_fold_into_one_outbound_message(twilio_app: Flask) -> None:
    for name in ("twilio_status_delivered", "twilio_status_sent", "twilio_status_undelivered"):
        assert send(twilio_app, form(name)).status_code == 200
    with get_db(twilio_app).session() as s:
        rows = {m.wamid: m for m in s.scalars(select(Message))}
        failed = rows["SM0cec4ed334e74bcbb64eb8b6684e9654"]
        assert (failed.direction, failed.status, failed.error_code) == ("outbound", "failed", 63016)
        assert rows["SMdf55df64a2ff4920bb0748193cfbb640"].status == "delivered"


@pytest.mark.parametrize(
    "name", ["twilio_inbound_image", "twilio_inbound_button_reply", "twilio_inbound_ctwa_referral"]
)
def test_inbound_variants(twilio_app: Flask, name: str) -> None:
    assert send(twilio_app, form(name)).status_code == 200
    with get_db(twilio_app).session() as s:
        event = s.scalars(select(WebhookEvent)).one()
        assert (event.status, event.item_errors) == (EventStatus.PROCESSED, 0)
        assert s.scalars(select(Message)).one().direction == "inbound"


def test_ctwa_referral_tags_the_conversation(twilio_app: Flask) -> None:
    send(twilio_app, form("twilio_inbound_ctwa_referral"))
    auth = {"Authorization": "Bearer test-admin-token"}
    client = twilio_app.test_client()
    (item,) = client.get("/api/v1/conversations", headers=auth).get_json()["items"]
    attribution = client.get(f"/api/v1/conversations/{item['id']}", headers=auth).get_json()[
        "attribution"
    ]
    assert attribution["source"] == "ctwa_referral"
    assert attribution["referral"]["ReferralCtwaClid"].startswith("ARAkLkA8")


@pytest.mark.parametrize("signature", ["", "bm90IGl0", None])
def test_bad_or_missing_signature_is_401(twilio_app: Flask, signature: str | None) -> None:
    data = form("twilio_inbound_text")
    client = twilio_app.test_client()
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    assert client.post("/webhooks/twilio", data=data, headers=headers).status_code == 401
    with get_db(twilio_app).session() as s:
        assert s.scalars(select(WebhookEvent)).all() == []


def test_signature_over_request_url_when_no_public_url(db_url: str, tmp_path: Path) -> None:
    app = create_app(base_config(db_url, tmp_path, TWILIO_AUTH_TOKEN=TOKEN))
    data = form("twilio_inbound_text")
    assert send(app, data, url="http://localhost/webhooks/twilio").status_code == 200
    # Signed for the proxy's public URL but the app does not know it: refused.
    assert send(app, data, url=PUBLIC + "/webhooks/twilio").status_code == 401


def test_unknown_form_is_400_and_kept(twilio_app: Flask) -> None:
    resp = send(twilio_app, {"Foo": "bar"})
    assert resp.status_code == 400
    with get_db(twilio_app).session() as s:
        assert s.scalars(select(WebhookEvent)).one().status == EventStatus.REJECTED


def test_disabled_without_token(app: Flask) -> None:
    resp = app.test_client().post("/webhooks/twilio", data=form("twilio_inbound_text"))
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "not_configured"
