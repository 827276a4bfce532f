"""Meta webhook parsing: negative, lenient and edge cases (built from fixture copies)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from whatsapp import (
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
WAMID_4RA = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="


def _load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _with(name: str, edit: Any) -> bytes:
    """Load a fixture as JSON, apply ``edit(document)`` and re-encode (never saved)."""
    document = json.loads(_load(name))
    edit(document)
    return json.dumps(document).encode()


def _value(document: dict[str, Any]) -> dict[str, Any]:
    return document["entry"][0]["changes"][0]["value"]


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
