"""Survey test helpers: an app that sends through a local Graph API stub, webhook builders."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from connector import create_app, schedule
from connector.db import get_db
from connector.models import Conversation, Survey, SurveyResponse, utcnow
from connector.settings_ext import settings_of
from tests.conftest import Signer, base_config
from tests.payloads import BUSINESS, envelope, inbound

WA_ID = "16505551234"
GRAPH_PATH = f"/v23.0/{BUSINESS}/messages"
STAR = "\N{WHITE MEDIUM STAR}"


def sending_app(db_url: str, tmp_path: Path, httpserver: HTTPServer, **extra: Any) -> Flask:
    return create_app(
        base_config(
            db_url,
            tmp_path,
            WHATSAPP_ACCESS_TOKEN="EAAG-test-token",
            WHATSAPP_PHONE_NUMBER_ID=BUSINESS,
            WACRM_WHATSAPP_BASE_URL=httpserver.url_for(""),
            **extra,
        )
    )


def graph_ok(wamid: str, wa_id: str = WA_ID) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": wa_id, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }


def recent() -> datetime:
    """Whole seconds, like Meta's timestamps; segmentation judges idleness by the real clock."""
    return utcnow().replace(microsecond=0)


def post(client: FlaskClient, body: bytes) -> None:
    resp = client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body))
    assert resp.status_code == 200, resp.data


def text(client: FlaskClient, wamid: str, when: datetime, body: str = "hi") -> None:
    post(client, inbound(wamid, when, wa_id=WA_ID, text=body))


def list_reply(
    client: FlaskClient, wamid: str, when: datetime, reply_id: str, title: str, context: str
) -> None:
    """The documented inbound ``interactive.list_reply`` shape, replying to ``context``."""
    message = {
        "context": {"from": "15550783881", "id": context},
        "from": WA_ID,
        "id": wamid,
        "timestamp": str(int(when.timestamp())),
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": reply_id, "title": title}},
    }
    post(
        client,
        envelope(
            {"contacts": [{"profile": {"name": "Sheena"}, "wa_id": WA_ID}], "messages": [message]}
        ),
    )


def resolved_conversation(client: FlaskClient, auth: dict[str, str], when: datetime) -> int:
    """A customer asks at ``when``; the conversation is resolved through the API."""
    text(client, "wamid.question", when, "Where is my order?")
    (item,) = client.get("/api/v1/conversations", headers=auth).get_json()["items"]
    resp = client.post(f"/api/v1/conversations/{item['id']}/resolve", headers=auth)
    assert resp.status_code == 200
    return int(item["id"])


def tick(app: Flask) -> None:
    """One scheduler beat, as the lease holder (runs the survey job)."""
    schedule.tick(app, settings_of(app), "test-holder")


def sent_bodies(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def surveys(app: Flask) -> list[Survey]:
    with get_db(app).session() as s:
        rows = list(s.scalars(select(Survey).order_by(Survey.id)))
        s.expunge_all()
        return rows


def responses(app: Flask) -> list[tuple[int, str, int, str]]:
    with get_db(app).session() as s:
        return [
            (r.conversation_id, r.kind, r.score, r.source)
            for r in s.scalars(select(SurveyResponse).order_by(SurveyResponse.kind))
        ]


def conversation_count(app: Flask) -> int:
    with get_db(app).session() as s:
        return len(list(s.scalars(select(Conversation.id))))


def later(start: datetime, **delta: float) -> datetime:
    return start + timedelta(**delta)
