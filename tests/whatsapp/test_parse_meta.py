"""Meta Cloud API webhook parsing: every fixture replayed against an explicit table."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from whatsapp import (
    IGNORED_FIELDS,
    SUPPORTED_EVENT_TYPES,
    FieldEvent,
    MalformedPayload,
    MessageType,
    ParseResult,
    Provider,
    StatusKind,
    parse_webhook,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"

SHEENA = "16505551234"
BIZ = {"business_number_id": "106540352242922", "display_phone_number": "15550783881"}
SHEENA_MSG = {**BIZ, "sender.wa_id": SHEENA, "sender.name": "Sheena Nelson"}
TEST_NAME = {
    "business_number_id": "1122334455667",
    "sender.wa_id": "972987654321",
    "sender.user_id": "US.13491208655302741918",
    "sender.parent_user_id": "US.ENT.11815799212886844830",
    "sender.name": "Test Name",
}
WAMID_4RA = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
WAMID_AADF = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
WAMID_ACB = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
CTWA_CLID = (
    "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0NiNhEgpGo0AHemvuSoifXaytfTzcchptiErT"
    "KCqTrJ5nW1h7IHYeYymGb5K5J5iTROpBhWAGaIAeUzHL50"
)


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


# File name -> expected items per ParseResult attribute; each item maps a dotted
# attribute path to its expected value. ``None`` marks a file that is not a POST body.
EXPECTED: dict[str, dict[str, list[dict[str, Any]]] | None] = {
    # GET verification handshake (method/url/query), consumed by the webhook view tests.
    "meta_verification_get.json": None,
    "meta_text.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "wamid": WAMID_4RA,
                "type": MessageType.TEXT,
                "text": "Does it come in another color?",
                "timestamp": _ts(1749416383),
                "context": None,
                "referral": None,
            }
        ]
    },
    "meta_text_referred_product.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.TEXT,
                "text": "Is this still available?",
                "context.reply_to_wamid": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA",
                "context.reply_to_from": "15550783881",
                "context.referred_product": {
                    "catalog_id": "194836987003835",
                    "product_retailer_id": "di9ozbzfi4",
                },
            }
        ]
    },
    "meta_referral_ctwa.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "wamid": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA=",
                "type": MessageType.TEXT,
                "text": "Can I get more info about this?",
                "referral.ctwa_clid": CTWA_CLID,
                "referral.source_id": "120226305854810726",
                "referral.source_type": "ad",
                "referral.source_url": "https://fb.me/3cr4Wqqkv",
                "referral.headline": "Chat with us",
                "referral.body": "Summer Succulents are here!",
                "referral.media_type": "image",
                "referral.raw.welcome_message.text": "Hi there! Let us know how we can help!",
            }
        ]
    },
    "meta_image.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.IMAGE,
                "text": "Taj Mahal",
                "media.id": "1003383421387256",
                "media.mime_type": "image/jpeg",
                "media.sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
                "media.caption": "Taj Mahal",
            }
        ]
    },
    "meta_audio_voice.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.AUDIO,
                "text": None,
                "media.id": "1908647269898587",
                "media.mime_type": "audio/ogg; codecs=opus",
                "media.voice": True,
            }
        ]
    },
    "meta_video.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.VIDEO,
                "text": "Timelapse of growth",
                "media.mime_type": "video/mp4",
                "media.voice": False,
            }
        ]
    },
    "meta_document.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.DOCUMENT,
                "text": "my receipt",
                "media.filename": "receipt.pdf",
                "media.mime_type": "application/pdf",
                "media.id": "622684793477189",
            }
        ]
    },
    "meta_location.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "wamid": WAMID_AADF,
                "type": MessageType.LOCATION,
                "text": "Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301",
                "raw.location.latitude": 37.44221496582,
            }
        ]
    },
    "meta_contacts.json": {
        "messages": [
            {**SHEENA_MSG, "type": MessageType.CONTACTS, "text": "Barbara J. Johnson"},
        ]
    },
    "meta_interactive_list_reply.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.INTERACTIVE,
                "raw_type": "interactive",
                "text": "Priority Mail Express",
                "reply_id": "priority_express",
                "context.reply_to_wamid": WAMID_ACB,
            }
        ]
    },
    "meta_interactive_button_reply.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "wamid": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=",
                "type": MessageType.INTERACTIVE,
                "text": "Cancel",
                "reply_id": "cancel-button",
                "timestamp": _ts(1750025136),
            }
        ]
    },
    "meta_button_quick_reply.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.BUTTON,
                "text": "Unsubscribe",
                "reply_id": "Unsubscribe",
                "context.reply_to_wamid": WAMID_ACB,
                "context.reply_to_from": "15550783881",
                "context.forwarded": False,
            }
        ]
    },
    "meta_reaction.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "wamid": WAMID_AADF,
                "type": MessageType.REACTION,
                "text": "\N{THUMBS UP SIGN}",
                "reaction_to_wamid": WAMID_ACB,
            }
        ]
    },
    "meta_order.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.ORDER,
                "text": "Love these!",
                "raw.order.catalog_id": "194836987003835",
            }
        ]
    },
    "meta_system_user_changed_number.json": {
        "messages": [
            {
                **BIZ,
                "wamid": "wamid.HBgLMTk4MzU1NTE5NzQVAgASGAoxMTgyMDg2MjY3AA==",
                "type": MessageType.SYSTEM,
                "text": "User Sheena Nelson changed from 16505551234 to 12195555358",
                "new_wa_id": "12195555358",
                "sender.wa_id": SHEENA,
                "sender.name": None,
            }
        ]
    },
    "meta_unsupported.json": {
        "messages": [
            {
                **SHEENA_MSG,
                "type": MessageType.UNSUPPORTED,
                "raw_type": "unsupported",
                "text": None,
                "errors.0.code": 131051,
                "errors.0.title": "Message type unknown",
                "errors.0.details": "Message type is currently not supported.",
                "raw.unsupported.type": "edit",
            }
        ]
    },
    "meta_value_errors.json": {
        "other": [
            {
                "field": "messages",
                "business_account_id": "102290129340398",
                "errors.0.code": 130429,
                "errors.0.title": "Rate limit hit",
                "errors.0.href": "/documentation/business-messaging/whatsapp/support/error-codes",
            }
        ]
    },
    "meta_status_sent_pmp.json": {
        "statuses": [
            {
                **BIZ,
                "wamid": WAMID_AADF,
                "status": StatusKind.SENT,
                "raw_status": "sent",
                "timestamp": _ts(1750030073),
                "recipient.wa_id": SHEENA,
                "conversation.id": "72b14d6bd5407799e66f64d1b338e567",
                "conversation.origin_type": "marketing",
                "conversation.expiration": _ts(1750116480),
                "pricing.billable": True,
                "pricing.pricing_model": "PMP",
                "pricing.category": "marketing",
                "pricing.type": "regular",
            }
        ]
    },
    "meta_status_v24_minimal.json": {
        "statuses": [
            {
                "wamid": WAMID_AADF,
                "status": StatusKind.SENT,
                "recipient.wa_id": SHEENA,
                "conversation": None,
                "pricing": None,
                "errors": (),
            }
        ]
    },
    "meta_status_failed.json": {
        "statuses": [
            {
                "status": StatusKind.FAILED,
                "raw_status": "failed",
                "errors.0.code": 131049,
                "errors.0.details": (
                    "In order to maintain a healthy ecosystem engagement, "
                    "the message failed to be delivered."
                ),
                "errors.0.href": "/documentation/business-messaging/whatsapp/support/error-codes",
            }
        ]
    },
    "meta_status_delivered_cbp.json": {
        "statuses": [
            {
                "status": StatusKind.DELIVERED,
                "conversation.origin_type": "service",
                "conversation.expiration": None,
                "pricing.pricing_model": "CBP",
                "pricing.category": "service",
                "pricing.type": None,
            }
        ]
    },
    "meta_status_read_cbp.json": {
        "statuses": [
            {
                "wamid": "wamid.xyzxyz",
                "status": StatusKind.READ,
                "recipient.wa_id": "972987654321",
                "recipient.user_id": "US.13491208655302741918",
                "recipient.name": "Test Name",
                "conversation.id": "7270432eae37498234f4444b35ffc5",
                "pricing.pricing_model": "CBP",
            }
        ]
    },
    "meta_status_sent_cbp_legacy_user_initiated.json": {
        "statuses": [
            {
                "business_number_id": "107287895522530",
                "status": StatusKind.SENT,
                "recipient.wa_id": "923000000000",
                "conversation.origin_type": "user_initiated",
                "conversation.expiration": _ts(1668676620),
                "pricing.category": "user_initiated",
                "pricing.pricing_model": "CBP",
            }
        ]
    },
    "meta_text_bsuid_only.json": {
        "messages": [
            {
                **BIZ,
                "type": MessageType.TEXT,
                "text": "Does it come in another color?",
                "sender.wa_id": None,
                "sender.user_id": "US.13491208655302741918",
                "sender.parent_user_id": "US.11815799212886844830",
                "sender.name": "Sheena Nelson",
                "sender.username": "@realsheenanelson",
            }
        ]
    },
    "meta_text_reply_context.json": {
        "messages": [
            {
                **TEST_NAME,
                "wamid": "wamid.xyzxyz",
                "text": "replied text",
                "context.reply_to_wamid": "wamid.xyzxyz==",
                "context.reply_to_from": "972123456789",
                "context.forwarded": False,
            }
        ]
    },
    "meta_text_forwarded.json": {
        "messages": [
            {
                **TEST_NAME,
                "text": "forwarded text",
                "context.forwarded": True,
                "context.frequently_forwarded": False,
                "context.reply_to_wamid": None,
            }
        ]
    },
    "meta_batch_multiple_changes.json": {
        "messages": [
            {"wamid": "wamid.ID", "text": "MESSAGE_BODY", "timestamp": _ts(1669233778)},
            {"wamid": "wamid.ID", "text": "MESSAGE_BODY2", "timestamp": _ts(1669233779)},
        ]
    },
    "meta_user_preferences.json": {
        "preferences": [
            {
                "business_number_id": "106540352242922",
                "contact.wa_id": SHEENA,
                "contact.name": None,
                "category": "marketing_messages",
                "value": "resume",
                "detail": "User requested to resume marketing messages",
                "timestamp": _ts(1731705721),
            }
        ]
    },
    "meta_message_template_status_update.json": {
        "other": [
            {
                "field": "message_template_status_update",
                "business_account_id": "102290129340398",
                "value.event": "APPROVED",
                "value.message_template_id": 1689556908129832,
                "errors": (),
            }
        ]
    },
    "meta_account_update.json": {
        "other": [
            {
                "field": "account_update",
                "value.event": "DISABLED_UPDATE",
                "value.ban_info.waba_ban_date": "April 17, 2025",
            }
        ]
    },
}

KINDS = ("messages", "statuses", "preferences", "other")


def _load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _dig(item: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(item, dict):
            item = item[part]
        elif isinstance(item, tuple | list):
            item = item[int(part)]
        else:
            item = getattr(item, part)
    return item


def _with(name: str, edit: Any) -> bytes:
    """Load a fixture as JSON, apply ``edit(document)`` and re-encode (negative tests)."""
    document = json.loads(_load(name))
    edit(document)
    return json.dumps(document).encode()


def _value(document: dict[str, Any]) -> dict[str, Any]:
    return document["entry"][0]["changes"][0]["value"]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e is not None))
def test_fixture_parses_to_expected_values(name: str) -> None:
    expected = EXPECTED[name]
    assert expected is not None
    result = parse_webhook(_load(name))
    assert result.provider is Provider.META
    assert result.errors == ()
    for kind in KINDS:
        items, wanted = getattr(result, kind), expected.get(kind, [])
        assert len(items) == len(wanted), f"{name}: {kind}"
        for item, fields in zip(items, wanted, strict=True):
            for path, value in fields.items():
                assert _dig(item, path) == value, f"{name}: {kind} {path}"


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e is not None))
def test_items_keep_raw_json_and_utc_timestamps(name: str) -> None:
    result = parse_webhook(_load(name))
    for item in (*result.messages, *result.statuses):
        assert item.raw["id"] == item.wamid
        assert item.timestamp.tzinfo is UTC
    for message in result.messages:
        assert message.raw_type == message.raw["type"]


def test_every_fixture_file_is_in_the_table() -> None:
    names = {path.name for path in FIXTURES.glob("*.json")}
    assert all(n.startswith(("meta_", "twilio_")) for n in names), names
    assert {n for n in names if n.startswith("meta_")} == set(EXPECTED)


def test_every_fixture_is_described_in_sources() -> None:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    missing = [p.name for p in FIXTURES.glob("*.json") if f"| {p.name} |" not in sources]
    assert missing == []


def _fixture_fields() -> set[str]:
    fields: set[str] = set()
    for name, expected in EXPECTED.items():
        if expected is not None:
            document = json.loads(_load(name))
            fields |= {c["field"] for e in document["entry"] for c in e["changes"]}
    return fields


def test_every_supported_event_type_has_a_fixture() -> None:
    assert SUPPORTED_EVENT_TYPES == ["messages", "user_preferences"]
    assert set(SUPPORTED_EVENT_TYPES) <= _fixture_fields()


def test_every_fixture_field_is_supported_or_ignored() -> None:
    assert _fixture_fields() <= set(SUPPORTED_EVENT_TYPES) | IGNORED_FIELDS


def test_batch_with_two_changes_yields_both_messages() -> None:
    result = parse_webhook(_load("meta_batch_multiple_changes.json"))
    assert [m.text for m in result.messages] == ["MESSAGE_BODY", "MESSAGE_BODY2"]


def test_batch_with_several_entries_walks_every_entry() -> None:
    def add_entry(document: dict[str, Any]) -> None:
        status_doc = json.loads(_load("meta_status_failed.json"))
        document["entry"].append(status_doc["entry"][0])

    result = parse_webhook(_with("meta_text.json", add_entry))
    assert len(result.messages) == 1
    assert [s.status for s in result.statuses] == [StatusKind.FAILED]


def test_one_malformed_message_becomes_item_error_and_keeps_the_others() -> None:
    broken: dict[str, Any] = {}

    def append_broken(document: dict[str, Any]) -> None:
        messages = _value(document)["messages"]
        broken.update(copy.deepcopy(messages[0]), id="wamid.broken")
        del broken["from"]
        messages.append(broken)
        messages.append({**messages[0], "id": "wamid.after"})

    result = parse_webhook(_with("meta_text.json", append_broken))
    assert [m.wamid for m in result.messages] == [WAMID_4RA, "wamid.after"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.path == "entry[0].changes[0].value.messages[1]"
    assert error.message == "from: missing"
    assert error.raw == broken


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (lambda d: d["entry"].insert(0, "nope"), "entry[0]", "expected an object"),
        (lambda d: d["entry"][0].update(changes={}), "entry[0].changes", "expected a list"),
        (
            lambda d: d["entry"][0]["changes"][0].pop("field"),
            "entry[0].changes[0]",
            "field: missing",
        ),
        (
            lambda d: d["entry"][0]["changes"][0].update(value=[]),
            "entry[0].changes[0]",
            "value: expected an object",
        ),
        (
            lambda d: _value(d).update(messages={}),
            "entry[0].changes[0].value.messages",
            "expected a list",
        ),
        (
            lambda d: _value(d).pop("metadata"),
            "entry[0].changes[0].value.metadata",
            "phone_number_id: missing",
        ),
        (
            lambda d: _value(d)["messages"].append(7),
            "entry[0].changes[0].value.messages[1]",
            "expected an object",
        ),
        (
            lambda d: _value(d)["messages"][0].pop("id"),
            "entry[0].changes[0].value.messages[0]",
            "id: missing",
        ),
        (
            lambda d: _value(d)["messages"][0].pop("type"),
            "entry[0].changes[0].value.messages[0]",
            "type: missing",
        ),
        (
            lambda d: _value(d)["messages"][0].update(id=["x"]),
            "entry[0].changes[0].value.messages[0]",
            "id: expected a string",
        ),
    ],
)
def test_structural_problems_become_item_errors(edit: Any, path: str, message: str) -> None:
    result = parse_webhook(_with("meta_text.json", edit))
    assert [(e.path, e.message) for e in result.errors] == [(path, message)]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "not a JSON object"),
        (b'"whatsapp_business_account"', "not a JSON object"),
        (b'{"object": "page", "entry": []}', "^object: "),
        (b'{"entry": []}', "^object: "),
        (b'{"object": "whatsapp_business_account"}', "^entry: expected a list"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "^entry: expected a list"),
    ],
)
def test_unrecognised_body_raises_malformed_payload(body: bytes, match: str) -> None:
    with pytest.raises(MalformedPayload, match=match):
        parse_webhook(body)


def test_empty_entry_list_is_an_empty_result() -> None:
    result = parse_webhook(b'{"object": "whatsapp_business_account", "entry": []}')
    assert result == ParseResult(provider=Provider.META)
    assert result.is_empty


def test_unknown_message_type_is_kept_with_raw_type() -> None:
    def make_unknown(document: dict[str, Any]) -> None:
        message = _value(document)["messages"][0]
        message.update(type="hologram", hologram={"shape": "cube"})
        del message["text"]

    with capture_logs() as logs:
        result = parse_webhook(_with("meta_text.json", make_unknown))
    (message,) = result.messages
    assert message.type is MessageType.UNKNOWN
    assert message.raw_type == "hologram"
    assert message.raw["hologram"] == {"shape": "cube"}
    assert message.text is None
    assert any(log["event"] == "whatsapp.unknown_message_type" for log in logs)


def test_unknown_status_value_becomes_unknown() -> None:
    result = parse_webhook(
        _with("meta_status_v24_minimal.json", lambda d: _value(d)["statuses"][0].update(status="x"))
    )
    (status,) = result.statuses
    assert status.status is StatusKind.UNKNOWN
    assert status.raw_status == "x"


def test_unknown_field_becomes_field_event_with_a_warning() -> None:
    def rename(document: dict[str, Any]) -> None:
        document["entry"][0]["changes"][0]["field"] = "brand_new_field"

    with capture_logs() as logs:
        result = parse_webhook(_with("meta_account_update.json", rename))
    assert result.errors == ()
    assert result.is_empty
    (event,) = result.other
    assert isinstance(event, FieldEvent)
    assert event.field == "brand_new_field"
    assert event.value["event"] == "DISABLED_UPDATE"
    assert [log["field"] for log in logs if log["event"] == "whatsapp.unknown_field"] == [
        "brand_new_field"
    ]


def test_ignored_field_is_stored_without_warning() -> None:
    with capture_logs() as logs:
        result = parse_webhook(_load("meta_account_update.json"))
    assert [e.field for e in result.other] == ["account_update"]
    assert [log for log in logs if log["log_level"] == "warning"] == []


@pytest.mark.parametrize("stamp", ["1749416383", 1749416383, " 1749416383", 1749416383.0])
def test_timestamps_accept_strings_and_integers(stamp: Any) -> None:
    result = parse_webhook(
        _with("meta_text.json", lambda d: _value(d)["messages"][0].update(timestamp=stamp))
    )
    assert result.messages[0].timestamp == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        (None, "timestamp: missing"),
        ("", "timestamp: missing"),
        ("yesterday", "timestamp: invalid"),
        ("1.5", "timestamp: invalid"),
        (True, "timestamp: invalid"),
        (10**20, "timestamp: invalid"),
        ({"s": 1}, "timestamp: invalid"),
    ],
)
def test_missing_or_invalid_timestamp_is_an_item_error(stamp: Any, message: str) -> None:
    result = parse_webhook(
        _with("meta_text.json", lambda d: _value(d)["messages"][0].update(timestamp=stamp))
    )
    assert result.messages == ()
    assert [e.message for e in result.errors] == [message]


def test_user_preference_timestamp_as_string_also_works() -> None:
    def stringify(document: dict[str, Any]) -> None:
        _value(document)["user_preferences"][0]["timestamp"] = "1731705721"

    result = parse_webhook(_with("meta_user_preferences.json", stringify))
    assert result.preferences[0].timestamp == datetime(2024, 11, 15, 21, 22, 1, tzinfo=UTC)


def test_user_preference_without_category_is_an_item_error() -> None:
    result = parse_webhook(
        _with(
            "meta_user_preferences.json", lambda d: _value(d)["user_preferences"][0].pop("category")
        )
    )
    assert [(e.path, e.message) for e in result.errors] == [
        ("entry[0].changes[0].value.user_preferences[0]", "category: missing")
    ]


def test_status_with_recipient_user_id_only() -> None:
    def bsuid_only(document: dict[str, Any]) -> None:
        status = _value(document)["statuses"][0]
        del status["recipient_id"]
        status.update(recipient_user_id="US.1", recipient_parent_user_id="US.ENT.2")

    (status,) = parse_webhook(_with("meta_status_v24_minimal.json", bsuid_only)).statuses
    assert status.recipient.wa_id is None
    assert status.recipient.user_id == "US.1"
    assert status.recipient.parent_user_id == "US.ENT.2"


def test_status_without_any_recipient_is_an_item_error() -> None:
    result = parse_webhook(
        _with(
            "meta_status_v24_minimal.json", lambda d: _value(d)["statuses"][0].pop("recipient_id")
        )
    )
    assert result.statuses == ()
    assert [(e.path, e.message) for e in result.errors] == [
        ("entry[0].changes[0].value.statuses[0]", "recipient_id: missing")
    ]


def test_message_without_from_and_from_user_id_is_an_item_error() -> None:
    def strip(document: dict[str, Any]) -> None:
        del _value(document)["messages"][0]["from_user_id"]

    (error,) = parse_webhook(_with("meta_text_bsuid_only.json", strip)).errors
    assert error.message == "from: missing"


def _one_message(fixture: str, **fields: Any) -> Any:
    def replace(document: dict[str, Any]) -> None:
        _value(document)["messages"][0].update(fields)

    result = parse_webhook(_with(fixture, replace))
    assert result.errors == ()
    return result.messages[0]


def test_location_without_name_uses_coordinates() -> None:
    message = _one_message("meta_location.json", location={"latitude": 1.5, "longitude": -2})
    assert message.text == "1.5,-2"


def test_contact_card_without_formatted_name_uses_first_and_last() -> None:
    cards = [{"name": {"first_name": "Ada", "last_name": "Lovelace"}}, {"name": {}}]
    message = _one_message("meta_contacts.json", contacts=cards)
    assert message.text == "Ada Lovelace"


def test_flow_reply_uses_body() -> None:
    reply = {
        "type": "nfm_reply",
        "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{}"},
    }
    message = _one_message("meta_interactive_button_reply.json", interactive=reply)
    assert (message.text, message.reply_id) == ("Sent", None)


def test_sticker_is_media_without_text() -> None:
    sticker = {"mime_type": "image/webp", "id": "42", "animated": False}
    message = _one_message("meta_image.json", type="sticker", sticker=sticker)
    assert (message.type, message.text, message.media.id) == (MessageType.STICKER, None, "42")


def test_removed_reaction_has_no_text() -> None:
    message = _one_message("meta_reaction.json", reaction={"message_id": "wamid.X", "emoji": ""})
    assert (message.text, message.reaction_to_wamid) == (None, "wamid.X")


def test_system_message_with_customer_field() -> None:
    system = {"body": "changed", "customer": "12195555358", "type": "customer_identity_changed"}
    message = _one_message("meta_system_user_changed_number.json", system=system)
    assert message.new_wa_id == "12195555358"


def test_frequently_forwarded_context() -> None:
    context = {"forwarded": True, "frequently_forwarded": True}
    message = _one_message("meta_text_forwarded.json", context=context)
    assert (message.context.forwarded, message.context.frequently_forwarded) == (True, True)


def test_value_with_messages_and_errors_keeps_both() -> None:
    def add_errors(document: dict[str, Any]) -> None:
        _value(document)["errors"] = [{"code": "130429", "title": "Rate limit hit"}]

    result = parse_webhook(_with("meta_text.json", add_errors))
    assert len(result.messages) == 1
    assert [(e.field, e.errors[0].code) for e in result.other] == [("messages", 130429)]


def test_logs_carry_no_phone_numbers_or_text() -> None:
    secrets = [SHEENA, "15550783881", "Sheena Nelson", "Does it come in another color?"]
    with capture_logs() as logs:
        for name in ("meta_text.json", "meta_status_failed.json", "meta_user_preferences.json"):
            parse_webhook(_load(name))
        parse_webhook(_with("meta_text.json", lambda d: _value(d)["messages"][0].pop("from")))
    assert logs, "expected log lines"
    rendered = repr(logs)
    assert [s for s in secrets if s in rendered] == []
