"""Twilio WhatsApp webhook parsing: every ``twilio_*.json`` fixture replayed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from whatsapp import MalformedPayload, MessageType, Provider, StatusKind, parse_twilio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
RECEIVED = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CTWA_CLID = (
    "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOd"
    "RMv-_zfUQ2a"
)
BIZ_1412 = {"business_number_id": "14123456789", "display_phone_number": "+14123456789"}

# File name -> {"messages" | "statuses": [{dotted attribute path: expected value}]}
EXPECTED: dict[str, dict[str, list[dict[str, Any]]]] = {
    "twilio_inbound_text.json": {
        "messages": [
            {
                **BIZ_1412,
                "wamid": "SM892512e202b34d4109b10a3893fa9640",
                "type": MessageType.TEXT,
                "raw_type": "text",
                "text": "test",
                "sender.wa_id": "31612345678",
                "sender.name": None,
                "media": None,
                "referral": None,
                "context": None,
                "timestamp": RECEIVED,
            }
        ]
    },
    "twilio_inbound_image.json": {
        "messages": [
            {
                **BIZ_1412,
                "wamid": "MM21151abfaadc1fb79b782f8460862a52",
                "type": MessageType.IMAGE,
                "raw_type": "image",
                "text": None,
                "sender.wa_id": "31612345678",
                "media.mime_type": "image/jpeg",
                "media.url": (
                    "https://api.twilio.com/2010-04-01/Accounts/AC1a03647d811fab342c0ad608e382fab2"
                    "/Messages/MM21151abfaadc1fb79b782f8460862a52/Media/"
                    "ME5f0afa2336bd0f73ca553fb5a2e3150bc"
                ),
                "media.caption": None,
            }
        ]
    },
    "twilio_inbound_button_reply.json": {
        "messages": [
            {
                "business_number_id": "554123456789",
                "display_phone_number": "+554123456789",
                "wamid": "SMxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "type": MessageType.INTERACTIVE,
                "raw_type": "interactive",
                "text": "VOICE_CALL_REQUEST",
                "reply_id": "REJECTED",
                "sender.wa_id": "5524987654321",
                "sender.name": "XXXX Caller BR-2",
                "referral": None,
            }
        ]
    },
    "twilio_inbound_ctwa_referral.json": {
        "messages": [
            {
                "business_number_id": "15558675310",
                "wamid": "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                "type": MessageType.TEXT,
                "text": "Ahoy! Let's build something amazing.",
                "sender.wa_id": "14017122661",
                "sender.name": "Perspective Coffee",
                "referral.ctwa_clid": CTWA_CLID,
                "referral.source_id": "118588094077142",
                "referral.source_type": "post",
                "referral.source_url": "https://fb.me/xyz123",
                "referral.headline": "Send us a message",
                "referral.body": "Learn more about our company by sending us a message on WhatsApp",
                "referral.media_type": "image/jpeg",
                "referral.raw.ReferralMediaId": "e420b130-f934-4acf-a5e6-f964f776bxyz",
            }
        ]
    },
    "twilio_status_sent.json": {
        "statuses": [
            {
                **BIZ_1412,
                "wamid": "SM0cec4ed334e74bcbb64eb8b6684e9654",
                "status": StatusKind.SENT,
                "raw_status": "sent",
                "recipient.wa_id": "31612345678",
                "timestamp": RECEIVED,
                "errors": (),
            }
        ]
    },
    "twilio_status_delivered.json": {
        "statuses": [
            {
                **BIZ_1412,
                "wamid": "SMdf55df64a2ff4920bb0748193cfbb640",
                "status": StatusKind.DELIVERED,
                "raw_status": "delivered",
                "recipient.wa_id": "31612345678",
            }
        ]
    },
    "twilio_status_undelivered.json": {
        "statuses": [
            {
                "wamid": "SM0cec4ed334e74bcbb64eb8b6684e9654",
                "status": StatusKind.FAILED,
                "raw_status": "undelivered",
                "errors.0.code": 63016,
                "errors.0.message": None,
            }
        ]
    },
}


def _form(name: str) -> dict[str, str]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["form"]


def _dig(item: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(item, dict):
            item = item[part]
        elif isinstance(item, tuple | list):
            item = item[int(part)]
        else:
            item = getattr(item, part)
    return item


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_expected_values(name: str) -> None:
    form = _form(name)
    result = parse_twilio(form, RECEIVED)
    assert result.provider is Provider.TWILIO
    assert result.errors == ()
    for kind in ("messages", "statuses", "preferences", "other"):
        items, wanted = getattr(result, kind), EXPECTED[name].get(kind, [])
        assert len(items) == len(wanted), f"{name}: {kind}"
        for item, fields in zip(items, wanted, strict=True):
            assert item.raw == form
            for path, value in fields.items():
                assert _dig(item, path) == value, f"{name}: {kind} {path}"


def test_every_twilio_fixture_file_is_in_the_table() -> None:
    names = {path.name for path in FIXTURES.glob("twilio_*.json")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize(
    ("raw_status", "kind"),
    [
        ("queued", StatusKind.QUEUED),
        ("accepted", StatusKind.QUEUED),
        ("scheduled", StatusKind.QUEUED),
        ("sending", StatusKind.QUEUED),
        ("sent", StatusKind.SENT),
        ("delivered", StatusKind.DELIVERED),
        ("read", StatusKind.READ),
        ("undelivered", StatusKind.FAILED),
        ("failed", StatusKind.FAILED),
        ("canceled", StatusKind.FAILED),
        ("partially_delivered", StatusKind.UNKNOWN),
    ],
)
def test_status_values_map_to_status_kind(raw_status: str, kind: StatusKind) -> None:
    form = {**_form("twilio_status_sent.json"), "MessageStatus": raw_status}
    (status,) = parse_twilio(form, RECEIVED).statuses
    assert (status.status, status.raw_status) == (kind, raw_status)


def test_sms_status_alone_identifies_a_status_callback() -> None:
    form = _form("twilio_status_delivered.json")
    del form["MessageStatus"]
    (status,) = parse_twilio(form, RECEIVED).statuses
    assert status.status is StatusKind.DELIVERED


def test_error_code_and_message() -> None:
    form = {**_form("twilio_status_undelivered.json"), "ErrorMessage": "Outside window"}
    (status,) = parse_twilio(form, RECEIVED).statuses
    assert (status.errors[0].code, status.errors[0].message) == (63016, "Outside window")


def test_inbound_without_status_but_with_body_is_a_message() -> None:
    form = _form("twilio_inbound_text.json")
    del form["SmsStatus"]
    assert parse_twilio(form, RECEIVED).messages[0].text == "test"


def test_form_without_message_sid_is_malformed() -> None:
    form = _form("twilio_inbound_text.json")
    for key in ("MessageSid", "SmsSid", "SmsMessageSid"):
        del form[key]
    with pytest.raises(MalformedPayload, match="MessageSid: missing"):
        parse_twilio(form, RECEIVED)


def test_form_that_is_neither_message_nor_status_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="neither"):
        parse_twilio({"MessageSid": "SM1", "AccountSid": "AC1"}, RECEIVED)


def test_sms_sid_is_the_fallback_id() -> None:
    form = _form("twilio_inbound_text.json")
    del form["MessageSid"]
    assert parse_twilio(form, RECEIVED).messages[0].wamid == "SM892512e202b34d4109b10a3893fa9640"


@pytest.mark.parametrize(("missing", "message"), [("To", "To: missing"), ("From", "From: missing")])
def test_message_without_numbers_is_an_item_error(missing: str, message: str) -> None:
    form = _form("twilio_inbound_text.json")
    del form[missing]
    result = parse_twilio(form, RECEIVED)
    assert result.messages == ()
    assert [(e.path, e.message, e.raw) for e in result.errors] == [("form", message, form)]


def test_status_recipient_prefers_wa_id() -> None:
    form = {**_form("twilio_status_sent.json"), "WaId": "31600000000"}
    assert parse_twilio(form, RECEIVED).statuses[0].recipient.wa_id == "31600000000"


def test_naive_received_at_is_taken_as_utc() -> None:
    message = parse_twilio(_form("twilio_inbound_text.json"), datetime(2025, 1, 2, 3, 4)).messages[
        0
    ]
    assert message.timestamp == datetime(2025, 1, 2, 3, 4, tzinfo=UTC)


def test_aware_received_at_is_kept() -> None:
    when = datetime(2025, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2)))
    assert parse_twilio(_form("twilio_inbound_text.json"), when).messages[0].timestamp == when


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("audio/ogg", MessageType.AUDIO),
        ("video/mp4", MessageType.VIDEO),
        ("application/pdf", MessageType.DOCUMENT),
        ("IMAGE/PNG", MessageType.IMAGE),
    ],
)
def test_media_type_is_inferred_from_content_type(content_type: str, kind: MessageType) -> None:
    form = {**_form("twilio_inbound_image.json"), "MediaContentType0": content_type}
    message = parse_twilio(form, RECEIVED).messages[0]
    assert (message.type, message.raw_type, message.media.mime_type) == (
        kind,
        kind.value,
        content_type,
    )


def test_location_without_message_type() -> None:
    form = {**_form("twilio_inbound_text.json"), "Body": "", "Latitude": "52.1", "Longitude": "4.3"}
    message = parse_twilio(form, RECEIVED).messages[0]
    assert (message.type, message.text) == (MessageType.LOCATION, "52.1,4.3")
    labelled = {**form, "Label": "Office", "Address": "Main St 1"}
    assert parse_twilio(labelled, RECEIVED).messages[0].text == "Office, Main St 1"


def test_unknown_message_type_param_is_kept_as_raw_type() -> None:
    form = {**_form("twilio_inbound_text.json"), "MessageType": "hologram"}
    message = parse_twilio(form, RECEIVED).messages[0]
    assert (message.type, message.raw_type, message.text) == (
        MessageType.UNKNOWN,
        "hologram",
        "test",
    )


def test_list_reply() -> None:
    form = {
        **_form("twilio_inbound_text.json"),
        "MessageType": "interactive",
        "ListId": "priority_express",
        "ListTitle": "Priority Mail Express",
    }
    message = parse_twilio(form, RECEIVED).messages[0]
    assert (message.text, message.reply_id) == ("Priority Mail Express", "priority_express")


def test_reply_context() -> None:
    form = {
        **_form("twilio_inbound_text.json"),
        "OriginalRepliedMessageSid": "SMparent",
        "OriginalRepliedMessageSender": "whatsapp:+14123456789",
    }
    context = parse_twilio(form, RECEIVED).messages[0].context
    assert (context.reply_to_wamid, context.reply_to_from) == ("SMparent", "14123456789")
