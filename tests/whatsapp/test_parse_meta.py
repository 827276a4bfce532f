"""Meta Cloud API webhook parsing: every fixture replayed against an explicit table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from whatsapp import (
    IGNORED_FIELDS,
    SUPPORTED_EVENT_TYPES,
    MessageType,
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
