"""Admin API: auth, conversations, sending through a local Cloud API stub, health."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from connector import create_app
from tests.conftest import Signer, base_config, load_fixture
from tests.payloads import BUSINESS, at, inbound, status


def post_webhook(client: FlaskClient, body: bytes) -> None:
    assert (
        client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body)).status_code
        == 200
    )


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer"])
def test_api_requires_bearer_token(client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    resp = client.get("/api/v1/conversations", headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


def test_conversation_detail_shape(client: FlaskClient, auth: dict[str, str]) -> None:
    post_webhook(client, load_fixture("whatsapp", "meta_referral_ctwa"))
    replied = datetime.fromtimestamp(1750275992 + 42, UTC)
    post_webhook(client, status("wamid.reply", "delivered", replied, category="service"))
    (item,) = client.get("/api/v1/conversations", headers=auth).get_json()["items"]
    detail = client.get(f"/api/v1/conversations/{item['id']}", headers=auth).get_json()
    assert {
        "id",
        "status",
        "initiated_by",
        "opened_at",
        "resolved_at",
        "contact",
        "campaign_id",
        "deal_id",
        "attribution",
        "messages",
    } <= set(detail)
    assert detail["contact"] == {
        "id": detail["contact"]["id"],
        "wa_id": "16505551234",
        "user_id": None,
        "name": "Sheena Nelson",
    }
    assert detail["opened_at"] == "2025-06-18T19:46:32Z" and detail["initiated_by"] == "customer"
    assert detail["attribution"]["source"] == "ctwa_referral"
    assert detail["attribution"]["referral"]["ctwa_clid"].startswith("Aff-n8ZT")
    msg, reply = detail["messages"]
    assert (reply["direction"], reply["status"], reply["pricing_category"]) == (
        "outbound",
        "delivered",
        "service",
    )
    assert reply["timestamp"] == "2025-06-18T19:47:14Z"
    assert {
        "wamid",
        "direction",
        "type",
        "text",
        "timestamp",
        "status",
        "error_code",
        "pricing_category",
    } <= set(msg)
    assert (msg["type"], msg["text"], msg["direction"]) == (
        "text",
        "Can I get more info about this?",
        "inbound",
    )


def test_list_filters_and_pagination(client: FlaskClient, auth: dict[str, str]) -> None:
    for k in range(5):
        post_webhook(client, inbound(f"wamid.p{k}", at(days=k * 2), wa_id=f"4477009001{k:02d}"))
    page = client.get("/api/v1/conversations?per_page=2&page=2", headers=auth).get_json()
    assert page["total"] == 5 and len(page["items"]) == 2
    window = {"from": at(days=2).isoformat(), "to": at(days=6).isoformat()}
    assert (
        client.get("/api/v1/conversations", query_string=window, headers=auth).get_json()["total"]
        == 2
    )
    only = client.get("/api/v1/conversations?wa_id=447700900103", headers=auth).get_json()
    assert [i["contact"]["wa_id"] for i in only["items"]] == ["447700900103"]
    assert client.get("/api/v1/conversations?status=open", headers=auth).get_json()["total"] == 0
    assert client.get("/api/v1/conversations?from=2026-13-01", headers=auth).status_code == 400
    assert client.get("/api/v1/conversations?status=nope", headers=auth).status_code == 400


def test_unknown_conversation_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.get("/api/v1/conversations/999", headers=auth).status_code == 404
    assert client.post("/api/v1/conversations/999/resolve", headers=auth).status_code == 404


@pytest.fixture
def sending_app(db_url: str, tmp_path: Path, httpserver: HTTPServer) -> Flask:
    return create_app(
        base_config(
            db_url,
            tmp_path,
            WHATSAPP_ACCESS_TOKEN="EAAG-test-token",
            WHATSAPP_PHONE_NUMBER_ID=BUSINESS,
            WACRM_WHATSAPP_BASE_URL=httpserver.url_for(""),
        )
    )


def graph_ok(wamid: str, wa_id: str = "16505551234") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": wa_id, "wa_id": wa_id}],
        "messages": [{"id": wamid}],
    }


def test_send_text_through_cloud_api(
    sending_app: Flask, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    httpserver.expect_request(
        f"/v23.0/{BUSINESS}/messages",
        method="POST",
        headers={"Authorization": "Bearer EAAG-test-token"},
        json={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "text",
            "text": {"body": "Hello!", "preview_url": False},
        },
    ).respond_with_json(graph_ok("wamid.SENT1"))
    client = sending_app.test_client()
    post_webhook(client, inbound("wamid.in", at()))
    resp = client.post(
        "/api/v1/messages",
        headers=auth,
        json={"to": "16505551234", "text": "Hello!", "agent_id": "owner-42"},
    )
    assert resp.status_code == 201, resp.get_data()
    body = resp.get_json()
    assert (body["wamid"], body["direction"], body["sender_kind"]) == (
        "wamid.SENT1",
        "outbound",
        "agent",
    )
    httpserver.check_assertions()


def test_send_template_opens_business_conversation(
    sending_app: Flask, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    httpserver.expect_request(f"/v23.0/{BUSINESS}/messages", method="POST").respond_with_json(
        graph_ok("wamid.TPL")
    )
    client = sending_app.test_client()
    resp = client.post(
        "/api/v1/messages",
        headers=auth,
        json={
            "to": "+16505551234",
            "campaign_id": "spring",
            "template": {"name": "spring_sale", "language": "en_US", "components": []},
        },
    )
    assert resp.status_code == 201
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["type"] == "template" and sent["template"]["name"] == "spring_sale"
    assert sent["template"]["language"] == {"code": "en_US"}
    conv_id = resp.get_json()["conversation_id"]
    conv = client.get(f"/api/v1/conversations/{conv_id}", headers=auth).get_json()
    assert conv["initiated_by"] == "business" and conv["campaign_id"] == "spring"


def test_cloud_api_error_comes_back_with_metas_code(
    sending_app: Flask, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    httpserver.expect_request(f"/v23.0/{BUSINESS}/messages").respond_with_json(
        {
            "error": {
                "message": "(#131030) Recipient phone number not in allowed list",
                "type": "OAuthException",
                "code": 131030,
                "error_data": {
                    "messaging_product": "whatsapp",
                    "details": "Recipient phone number not in allowed list",
                },
                "fbtrace_id": "AbCdEf",
            }
        },
        status=400,
    )
    resp = sending_app.test_client().post(
        "/api/v1/messages", headers=auth, json={"to": "16505551234", "text": "x"}
    )
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "whatsapp_api_error" and "131030" in error["message"]
    assert error["details"]["meta_code"] == 131030 and error["details"]["fbtrace_id"] == "AbCdEf"


def test_cloud_api_down_is_502(
    sending_app: Flask, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    httpserver.expect_request(f"/v23.0/{BUSINESS}/messages").respond_with_data("oops", status=503)
    resp = sending_app.test_client().post(
        "/api/v1/messages", headers=auth, json={"to": "16505551234", "text": "x"}
    )
    assert resp.status_code == 502


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"to": "abc", "text": "x"},
        {"to": "16505551234"},
        {"to": "16505551234", "text": "x", "template": {"name": "t"}},
        {"to": "16505551234", "template": {"name": "t"}},
        {"to": "16505551234", "text": ""},
    ],
)
def test_send_validation(sending_app: Flask, auth: dict[str, str], body: dict[str, Any]) -> None:
    resp = sending_app.test_client().post("/api/v1/messages", headers=auth, json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "validation_failed"


def test_send_without_credentials_is_503(client: FlaskClient, auth: dict[str, str]) -> None:
    resp = client.post("/api/v1/messages", headers=auth, json={"to": "16505551234", "text": "x"})
    assert resp.status_code == 503


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (
        ready.status_code == 200
        and ready.get_json()["migration"]["current"] == ready.get_json()["migration"]["head"]
    )
    assert b"wacrm_webhooks_total" in client.get("/metrics").data


def test_readyz_reports_unmigrated_database(tmp_path: Path) -> None:
    app = create_app(base_config(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path))
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["migration"]["current"] is None
