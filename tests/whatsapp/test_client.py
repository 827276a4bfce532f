"""Cloud API send client, against a ``responses``-mocked Graph API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from structlog.testing import capture_logs

from whatsapp import SendResult, WhatsAppApiError, WhatsAppClient

TOKEN = "EAAG-super-secret-token"
BASE = "https://graph.example.test"
URL = f"{BASE}/v23.0/106540352242922/messages"
TO = "16505551234"
WAMID = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
ACCEPTED = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+1 650-555-1234", "wa_id": TO}],
    "messages": [{"id": WAMID, "message_status": "accepted"}],
}
# Shapes from https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
NOT_ALLOWED = {
    "error": {
        "message": "(#131030) Recipient phone number not in allowed list",
        "type": "OAuthException",
        "code": 131030,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Recipient phone number not in allowed list: Add recipient phone number "
            "to recipient list and try again.",
        },
        "fbtrace_id": "AI5Ob2z72R0JAUB5zOF-nao",
    }
}
EXPIRED = {
    "error": {
        "message": "Error validating access token: Session has expired.",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 463,
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }
}


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client() -> WhatsAppClient:
    return WhatsAppClient(BASE + "/", TOKEN, "106540352242922", timeout=3.5)


def _sent(api: responses.RequestsMock) -> dict[str, Any]:
    (call,) = api.calls
    return json.loads(call.request.body)


def test_send_text_posts_cloud_api_json(
    api: responses.RequestsMock, client: WhatsAppClient
) -> None:
    api.post(URL, json=ACCEPTED)
    result = client.send_text(TO, "Hello")
    assert result == SendResult(wamid=WAMID, wa_id=TO, raw=ACCEPTED)
    request = api.calls[0].request
    assert request.url == URL
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.req_kwargs["timeout"] == 3.5
    assert _sent(api) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
    }


def test_send_text_as_reply_with_preview(
    api: responses.RequestsMock, client: WhatsAppClient
) -> None:
    api.post(URL, json=ACCEPTED)
    client.send_text(TO, "See https://example.com", reply_to="wamid.parent", preview_url=True)
    body = _sent(api)
    assert body["context"] == {"message_id": "wamid.parent"}
    assert body["text"] == {"preview_url": True, "body": "See https://example.com"}


def test_send_template(api: responses.RequestsMock, client: WhatsAppClient) -> None:
    api.post(URL, json=ACCEPTED)
    components = [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]
    client.send_template(TO, "order_confirmation", "en_US", components)
    body = _sent(api)
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_confirmation",
        "language": {"code": "en_US"},
        "components": components,
    }


def test_send_template_without_components(
    api: responses.RequestsMock, client: WhatsAppClient
) -> None:
    api.post(URL, json=ACCEPTED)
    client.send_template(TO, "hello_world", "en_US")
    assert _sent(api)["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


def test_send_interactive(api: responses.RequestsMock, client: WhatsAppClient) -> None:
    api.post(URL, json=ACCEPTED)
    interactive = {
        "type": "button",
        "body": {"text": "Cancel?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "cancel", "title": "Cancel"}}]},
    }
    client.send_interactive(TO, interactive)
    body = _sent(api)
    assert (body["type"], body["interactive"], body["to"]) == ("interactive", interactive, TO)


def test_send_raw_payload(api: responses.RequestsMock, client: WhatsAppClient) -> None:
    api.post(URL, json=ACCEPTED)
    client.send(TO, {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}})
    assert _sent(api) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "reaction",
        "reaction": {"message_id": "wamid.X", "emoji": "👍"},
    }


def test_wa_id_falls_back_to_to(api: responses.RequestsMock, client: WhatsAppClient) -> None:
    api.post(URL, json={"messages": [{"id": WAMID}]})
    assert client.send_text("+1 650 555 1234", "hi").wa_id == "+1 650 555 1234"


def test_uses_given_session_and_api_version(api: responses.RequestsMock) -> None:
    api.post(f"{BASE}/v24.0/99/messages", json=ACCEPTED)
    session = requests.Session()
    client = WhatsAppClient(BASE, TOKEN, "99", api_version="v24.0", session=session)
    assert client.send_text(TO, "hi").wamid == WAMID


@pytest.mark.parametrize(
    ("status", "kwargs", "match", "expected"),
    [
        (
            400,
            {"json": NOT_ALLOWED},
            r"^\(#131030\) Recipient phone number not in allowed list \u2014 Recipient phone",
            {"code": 131030, "subcode": None, "fbtrace_id": "AI5Ob2z72R0JAUB5zOF-nao"},
        ),
        (
            401,
            {"json": EXPIRED},
            "^Error validating access token: Session has expired.$",
            {"code": 190, "subcode": 463, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"},
        ),
        (
            500,
            {"body": "<html>oops</html>"},
            "^Cloud API returned HTTP 500$",
            {"code": None, "subcode": None, "fbtrace_id": None},
        ),
        (
            200,
            {"json": {"messaging_product": "whatsapp", "messages": []}},
            r"no messages\[0\]\.id",
            {"code": None},
        ),
        (200, {"body": "not json"}, r"no messages\[0\]\.id", {"code": None}),
    ],
)
def test_api_errors(
    api: responses.RequestsMock,
    client: WhatsAppClient,
    status: int,
    kwargs: dict[str, Any],
    match: str,
    expected: dict[str, Any],
) -> None:
    api.post(URL, status=status, **kwargs)
    with pytest.raises(WhatsAppApiError, match=match) as caught:
        client.send_text(TO, "hi")
    assert caught.value.http_status == status
    for name, value in expected.items():
        assert getattr(caught.value, name) == value


@pytest.mark.parametrize(
    ("exc", "match"),
    [
        (requests.exceptions.ReadTimeout(f"token {TOKEN}"), "timed out after 3.5s"),
        (requests.exceptions.ConnectTimeout(), "timed out"),
        (requests.exceptions.ConnectionError(f"token {TOKEN}"), "failed: ConnectionError"),
    ],
)
def test_network_errors(
    api: responses.RequestsMock, client: WhatsAppClient, exc: Exception, match: str
) -> None:
    api.post(URL, body=exc)
    with pytest.raises(WhatsAppApiError, match=match) as caught:
        client.send_text(TO, "hi")
    assert (caught.value.code, caught.value.http_status) == (None, None)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_token_never_appears_in_errors_logs_or_repr(
    api: responses.RequestsMock, client: WhatsAppClient
) -> None:
    echo = {"error": {"message": f"bad token {TOKEN}", "code": 190}}
    api.post(URL, status=401, json=echo)
    api.post(URL, body=requests.exceptions.ConnectionError(f"Bearer {TOKEN}"))
    api.post(URL, json=ACCEPTED)
    errors = []
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(WhatsAppApiError) as caught:
                client.send_text(TO, "secret text")
            errors.append(caught.value)
        client.send_text(TO, "secret text")
    rendered = [repr(client), repr(logs), *(f"{e!s} {e!r} {vars(e)}" for e in errors)]
    assert all(TOKEN not in text for text in rendered)
    assert TO not in repr(logs)
    assert "secret text" not in repr(logs)
    assert [log["event"] for log in logs] == [
        "whatsapp.send_failed",
        "whatsapp.send_failed",
        "whatsapp.sent",
    ]


def test_empty_token_is_rejected() -> None:
    with pytest.raises(ValueError, match="access_token"):
        WhatsAppClient(BASE, "", "1")
