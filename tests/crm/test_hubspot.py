"""HubSpotAdapter writes through the real SDK against a local stub: contacts, messages, fields."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from crm_adapters.base import BatchResult, ContactRecord, FieldWrite, MessageRecord, Rate, Rejected
from crm_adapters.errors import Permanent
from crm_adapters.hubspot import HubSpotAdapter, HubSpotSettings
from tests.crm.hubspot_stub import (
    TOKEN,
    Call,
    CommunicationsFake,
    HubSpotStub,
    RecordingLimiter,
    batch,
    batch_error,
    example,
    example_reply,
    expected_buckets,
    make_adapter,
    record,
)

CONTACTS = "/crm/v3/objects/contacts"
COMMS_CREATE = "/crm/v3/objects/communications/batch/create"
USERS_UPDATE = "/crm/v3/objects/users/batch/update"
ANA, BOB = "4915112345678", "447700900123"
BSUID = "bsuid:US.13491208655302741918"
EMPTY_READ = (200, batch([]))


@pytest.fixture
def stub(httpserver: HTTPServer) -> HubSpotStub:
    return HubSpotStub(httpserver)


@pytest.fixture
def limiter() -> RecordingLimiter:
    return RecordingLimiter()


@pytest.fixture
def adapter(stub: HubSpotStub, limiter: RecordingLimiter) -> HubSpotAdapter:
    return make_adapter(stub, limiter)


def message(key: str, **overrides: Any) -> MessageRecord:
    values: dict[str, Any] = {
        "key": key,
        "contact_crm_id": "51",
        "direction": "inbound",
        "type": "text",
        "text": "Thanks!",
        "timestamp": datetime(2026, 11, 25, 16, 43, 20, tzinfo=UTC),
        "sender_kind": "customer",
    }
    return MessageRecord(**(values | overrides))


def echo_created(call: Call) -> tuple[int, Any]:
    """201 with one result per input, ids derived from the position."""
    results = [
        {**record(str(80000 + n)), "objectWriteTraceId": i["objectWriteTraceId"]}
        for n, i in enumerate(call.inputs)
    ]
    return 201, batch(results)


# --- contacts ---------------------------------------------------------------------------


def test_contacts_batch_read_then_phone_search_then_upsert(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    stub.reply(
        "POST", f"{CONTACTS}/batch/read", example_reply("contacts-batch-read-by-unique-property")
    )
    stub.reply("POST", f"{CONTACTS}/search", (200, {"total": 0, "results": []}))
    stub.reply(
        "POST",
        f"{CONTACTS}/batch/upsert",
        example_reply("contacts-batch-upsert-by-unique-property"),
    )

    result = adapter.upsert_contacts(
        [
            ContactRecord(key=ANA, wa_id=ANA, name="Ana Silva"),
            ContactRecord(key=BOB, wa_id=BOB, name="Bob van Dijk"),
            ContactRecord(key="33612345678", wa_id="33612345678", crm_id="60"),  # known: no call
        ]
    )

    assert result == BatchResult(ok={ANA: "51", BOB: "52", "33612345678": "60"})
    read, search, upsert = stub.calls
    assert [c.path for c in stub.calls] == [
        f"{CONTACTS}/batch/read",
        f"{CONTACTS}/search",
        f"{CONTACTS}/batch/upsert",
    ]
    spec_read = example("contacts-batch-read-by-unique-property")["request"]["body"]
    assert read.json == spec_read | {"properties": ["whatsapp_wa_id", "hs_whatsapp_phone_number"]}
    spec_search = example("contacts-search-by-phone")["request"]["body"]
    assert search.json.keys() == spec_search.keys()  # all five fields the spec requires
    assert search.json["filterGroups"] == [
        {"filters": [{"propertyName": p, "operator": "IN", "values": [f"+{BOB}"]}]}
        for p in ("phone", "mobilephone", "hs_whatsapp_phone_number")
    ]
    assert (search.json["sorts"], search.json["after"]) == ([], "0")
    assert upsert.inputs == [
        {
            "idProperty": "whatsapp_wa_id",
            "id": BOB,
            "objectWriteTraceId": BOB,
            "properties": {
                "whatsapp_wa_id": BOB,
                "firstname": "Bob",
                "lastname": "van Dijk",
                "phone": f"+{BOB}",
            },
        }
    ]
    assert {c.headers["Authorization"] for c in stub.calls} == {f"Bearer {TOKEN}"}
    assert (
        limiter.buckets
        == expected_buckets(stub)
        == [
            "hubspot:default",
            "hubspot:search",
            "hubspot:default",
        ]
    )


def test_search_match_already_carrying_the_key_needs_no_stamp(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.reply("POST", f"{CONTACTS}/batch/read", EMPTY_READ)
    stub.reply("POST", f"{CONTACTS}/search", example_reply("contacts-search-by-phone"))

    result = adapter.upsert_contacts([ContactRecord(key=ANA, wa_id=ANA)])

    assert result == BatchResult(ok={ANA: "51"})
    assert [c.path for c in stub.calls] == [f"{CONTACTS}/batch/read", f"{CONTACTS}/search"]
    fixture_groups = example("contacts-search-by-phone")["request"]["body"]["filterGroups"]
    searched = {f["propertyName"] for g in fixture_groups for f in g["filters"]}
    sent = stub.calls[1].json["filterGroups"]
    assert {g["filters"][0]["propertyName"] for g in sent} <= searched | {"mobilephone"}
    assert all(g["filters"][0]["values"] == [f"+{ANA}"] for g in sent)


def test_contact_predating_the_connector_is_matched_once_by_phone_and_stamped(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    not_found = batch_error("Could not get some CONTACT objects", "OBJECT_NOT_FOUND", ids=[ANA])
    stub.reply("POST", f"{CONTACTS}/batch/read", (207, batch([], [not_found])))
    legacy = [
        record("302", mobilephone=f"+{ANA}", whatsapp_wa_id=None)
        | {"createdAt": "2024-02-01T00:00:00Z"},
        record("301", phone=f"+{ANA}", whatsapp_wa_id=None) | {"createdAt": "2021-05-01T00:00:00Z"},
        record("303", phone=f"+{ANA}", whatsapp_wa_id="4900000000")
        | {"createdAt": "2019-01-01T00:00:00Z"},
    ]
    stub.reply("POST", f"{CONTACTS}/search", (200, {"total": 3, "results": legacy}))
    stub.reply(
        "POST", f"{CONTACTS}/batch/update", (200, batch([record("301", whatsapp_wa_id=ANA)]))
    )

    result = adapter.upsert_contacts([ContactRecord(key=ANA, wa_id=ANA, name="Ana")])

    # 303 belongs to another WhatsApp user; 301 is the oldest unclaimed match.
    assert result == BatchResult(ok={ANA: "301"})
    assert stub.to(f"{CONTACTS}/batch/update")[0].json == {
        "inputs": [{"id": "301", "properties": {"whatsapp_wa_id": ANA}}]
    }
    assert not stub.to(f"{CONTACTS}/batch/upsert")
    assert limiter.buckets == expected_buckets(stub)


def _upsert_echo(call: Any) -> tuple[int, Any]:
    return 200, batch(
        {**record(str(n)), "objectWriteTraceId": i["id"]} for n, i in enumerate(call.inputs)
    )


def test_phone_search_packs_many_numbers_per_call(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.reply("POST", f"{CONTACTS}/batch/read", EMPTY_READ)
    stub.reply("POST", f"{CONTACTS}/search", (200, {"total": 0, "results": []}))
    stub.on("POST", f"{CONTACTS}/batch/upsert", _upsert_echo)
    keys = [f"4477009{n:05d}" for n in range(100)]

    result = adapter.upsert_contacts([ContactRecord(key=k, wa_id=k) for k in keys])

    assert set(result.ok) == set(keys)
    searches = stub.to(f"{CONTACTS}/search")
    assert [len(c.json["filterGroups"]) for c in searches] == [3, 3]  # one IN per property
    assert [len(c.json["filterGroups"][0]["filters"][0]["values"]) for c in searches] == [50, 50]


def test_phone_search_falls_back_to_eq_groups_if_in_is_refused(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.reply("POST", f"{CONTACTS}/batch/read", EMPTY_READ)
    refused = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Too many values for IN",
        "correlationId": "c-1",
    }
    stub.on(
        "POST",
        f"{CONTACTS}/search",
        lambda call: (
            (400, refused)
            if call.json["filterGroups"][0]["filters"][0]["operator"] == "IN"
            else (200, {"total": 0, "results": []})
        ),
    )
    stub.on("POST", f"{CONTACTS}/batch/upsert", _upsert_echo)

    result = adapter.upsert_contacts([ContactRecord(key=k, wa_id=k) for k in (ANA, BOB)])

    assert set(result.ok) == {ANA, BOB}
    searches = stub.to(f"{CONTACTS}/search")
    assert [len(c.json["filterGroups"]) for c in searches] == [3, 5, 1]  # IN, then 2 x 3 EQ


def test_bsuid_only_contact_is_upserted_by_the_key_without_phone_search(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.reply("POST", f"{CONTACTS}/batch/read", EMPTY_READ)
    created = {**record("53", whatsapp_wa_id=BSUID), "new": True, "objectWriteTraceId": BSUID}
    stub.reply("POST", f"{CONTACTS}/batch/upsert", (200, batch([created])))

    result = adapter.upsert_contacts(
        [ContactRecord(key=BSUID, wa_id=None, user_id="US.1349", name="Zoë")]
    )

    assert result == BatchResult(ok={BSUID: "53"})
    assert not stub.to(f"{CONTACTS}/search")
    assert stub.to(f"{CONTACTS}/batch/upsert")[0].inputs == [
        {
            "idProperty": "whatsapp_wa_id",
            "id": BSUID,
            "objectWriteTraceId": BSUID,
            "properties": {"whatsapp_wa_id": BSUID, "firstname": "Zoë"},
        }
    ]


def test_contact_upsert_partial_failure_maps_errors_to_keys(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.reply("POST", f"{CONTACTS}/batch/read", EMPTY_READ)
    ok = {**record("53", whatsapp_wa_id=BSUID), "objectWriteTraceId": BSUID}
    bad = batch_error('Property "lastname" is too long', ids=["bsuid:US.2"])
    stub.reply("POST", f"{CONTACTS}/batch/upsert", (207, batch([ok], [bad])))

    result = adapter.upsert_contacts(
        [ContactRecord(key=BSUID, wa_id=None), ContactRecord(key="bsuid:US.2", wa_id=None)]
    )

    assert result == BatchResult(
        ok={BSUID: "53"},
        rejected=(Rejected(key="bsuid:US.2", message=bad["message"], code="VALIDATION_ERROR"),),
    )


# --- messages ---------------------------------------------------------------------------


def test_messages_are_logged_as_whatsapp_communications_like_the_spec_example(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.reply("POST", COMMS_CREATE, example_reply("communications-batch-create-whatsapp"))
    sent = message(
        "wamid-1",
        direction="outbound",
        sender_kind="agent",
        text="Hi Ana, your order has shipped.",
        timestamp=datetime(2026, 11, 25, 16, 40, tzinfo=UTC),
        deal_crm_id="9001",
        owner_crm_id="1234567",
    )

    result = adapter.log_messages([sent, message("wamid-2")])

    assert result == BatchResult(ok={"wamid-1": "77001", "wamid-2": "77002"})
    (call,) = stub.calls
    spec = example("communications-batch-create-whatsapp")["request"]["body"]["inputs"]
    for sent_input, spec_input in zip(call.inputs, spec, strict=True):
        assert sent_input["associations"] == spec_input["associations"]
        assert sent_input["objectWriteTraceId"] == spec_input["objectWriteTraceId"]
    assert call.inputs[0]["properties"] == {
        "hs_communication_channel_type": "WHATS_APP",
        "hs_communication_logged_from": "CRM",
        "hs_communication_body": "→ agent: Hi Ana, your order has shipped.",
        "hs_timestamp": spec[0]["properties"]["hs_timestamp"],
        "hubspot_owner_id": "1234567",
        "whatsapp_message_id": "wamid-1",
    }
    assert call.inputs[1]["properties"]["hs_communication_body"] == "← customer: Thanks!"


def test_thousand_messages_from_known_contacts_take_exactly_ten_calls(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    stub.on("POST", COMMS_CREATE, echo_created)
    messages = [message(f"wamid.{n:04d}", contact_crm_id=str(1000 + n % 37)) for n in range(1000)]

    result = adapter.log_messages(messages)

    assert len(stub.calls) == 10
    assert [len(c.inputs) for c in stub.calls] == [100] * 10
    assert {c.path for c in stub.calls} == {COMMS_CREATE}
    assert len(result.ok) == 1000 and result.rejected == ()
    assert limiter.buckets == ["hubspot:default"] * 10


def test_partial_failure_is_mapped_to_the_right_wamid(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    reply = example_reply("communications-batch-create-207-partial")
    stub.reply("POST", COMMS_CREATE, reply)

    result = adapter.log_messages([message("wamid-1"), message("wamid-2")])

    error = reply[1]["errors"][0]
    assert result == BatchResult(
        ok={"wamid-1": "77001"},
        rejected=(Rejected(key="wamid-2", message=error["message"], code="VALIDATION_ERROR"),),
    )
    assert len(stub.calls) == 1  # a validation error is not a duplicate: no read-back


@pytest.mark.parametrize("mode", ["207", "409"])
def test_retry_after_crash_between_call_and_commit_creates_no_duplicate(
    adapter: HubSpotAdapter, stub: HubSpotStub, mode: str
) -> None:
    fake = CommunicationsFake(stub, "whatsapp_message_id", mode=mode)
    first = adapter.log_messages([message("wamid.A"), message("wamid.B")])
    # ...the worker dies before committing `first`; the outbox sends the batch again.
    retry = adapter.log_messages([message("wamid.A"), message("wamid.B"), message("wamid.C")])

    assert retry.rejected == ()
    assert dict(retry.ok) == {**first.ok, "wamid.C": fake.by_key["wamid.C"]}
    assert sorted(fake.by_key) == ["wamid.A", "wamid.B", "wamid.C"]  # each stored once
    read = stub.to("/crm/v3/objects/communications/batch/read")
    assert read[0].json["idProperty"] == "whatsapp_message_id"
    assert {i["id"] for i in read[0].inputs} >= {"wamid.A", "wamid.B"}


def test_message_body_is_html_escaped_and_names_non_text_types(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.on("POST", COMMS_CREATE, echo_created)
    naive = datetime(2026, 11, 25, 16, 40)  # taken as UTC
    adapter.log_messages(
        [
            message("w1", text="<b>hi</b> & bye\nsee you", timestamp=naive),
            message("w2", type="image", text="look"),
            message("w3", type="template", text=None, direction="outbound", sender_kind="campaign"),
        ]
    )

    props = [i["properties"] for i in stub.calls[0].inputs]
    assert [p["hs_communication_body"] for p in props] == [
        "← customer: &lt;b&gt;hi&lt;/b&gt; &amp; bye<br>see you",
        "← customer [image]: look",
        "→ campaign [template]",
    ]
    assert props[0]["hs_timestamp"] == "2026-11-25T16:40:00.000Z"
    assert "hubspot_owner_id" not in props[0]
    assert [len(i["associations"]) for i in stub.calls[0].inputs] == [1, 1, 1]


# --- field write-back -------------------------------------------------------------------


def test_deal_kpis_are_written_as_hubspot_strings(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    stub.reply(
        "POST", "/crm/v3/objects/deals/batch/update", example_reply("deals-batch-update-kpis")
    )
    values = {
        "wa_messages_30d": 42,
        "wa_median_first_response_minutes": Decimal("7.50"),
        "wa_last_inbound_at": datetime(2026, 11, 25, 16, 43, 20, tzinfo=UTC),
    }

    result = adapter.write_fields("deal", [FieldWrite(crm_id="9001", values=values)])

    assert result == BatchResult(ok={"9001": "9001"})
    assert stub.calls[0].json == example("deals-batch-update-kpis")["request"]["body"]


@pytest.mark.parametrize(("object_type", "hs_type"), [("contact", "contacts"), ("user", "users")])
def test_crm_object_fields_go_out_100_per_call_and_values_are_stringified(
    adapter: HubSpotAdapter, stub: HubSpotStub, object_type: str, hs_type: str
) -> None:
    stub.on(
        "POST",
        f"/crm/v3/objects/{hs_type}/batch/update",
        lambda call: (200, batch(record(i["id"]) for i in call.inputs)),
    )
    rows = [FieldWrite(crm_id=str(n), values={"wa_score": n / 4}) for n in range(250)]
    rows.append(
        FieldWrite(crm_id="7", values={"wa_vip": True, "wa_since": date(2026, 1, 2), "wa_x": None})
    )

    result = adapter.write_fields(object_type, rows)

    assert [len(c.inputs) for c in stub.calls] == [100, 100, 50]  # crm_id 7 merged, not sent twice
    assert len(result.ok) == 250
    seven = next(i for i in stub.calls[0].inputs if i["id"] == "7")
    assert seven["properties"] == {
        "wa_score": "1.75",
        "wa_vip": "true",
        "wa_since": "2026-01-02",
        "wa_x": "",
    }


def test_campaign_fields_use_the_marketing_api_50_per_call(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    path = "/marketing/v3/campaigns/batch/update"
    stub.on(
        "POST",
        path,
        lambda call: (
            200,
            batch({"id": i["id"], "properties": i["properties"]} for i in call.inputs),
        ),
    )
    spec = example("campaigns-batch-update")["request"]["body"]["inputs"][0]
    rows = [FieldWrite(crm_id=spec["id"], values={"wa_messages_total": 530})]
    rows += [FieldWrite(crm_id=f"guid-{n}", values={"wa_messages_total": n}) for n in range(119)]

    result = adapter.write_fields("campaign", rows)

    assert [len(c.inputs) for c in stub.calls] == [50, 50, 20]
    assert stub.calls[0].inputs[0] == spec
    assert len(result.ok) == 120 and result.ok[spec["id"]] == spec["id"]
    assert {c.headers["Authorization"] for c in stub.calls} == {f"Bearer {TOKEN}"}
    assert limiter.buckets == ["hubspot:default"] * 3


def test_field_write_partial_failure_names_the_record(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    bad = batch_error("Property values were not valid", ids=["9002"])
    stub.reply("POST", "/crm/v3/objects/deals/batch/update", (207, batch([record("9001")], [bad])))

    result = adapter.write_fields(
        "deal",
        [FieldWrite(crm_id="9001", values={"a": 1}), FieldWrite(crm_id="9002", values={"a": "x"})],
    )

    assert result.ok == {"9001": "9001"}
    assert result.rejected == (
        Rejected(key="9002", message=bad["message"], code="VALIDATION_ERROR"),
    )


def test_agent_kpis_update_hubspot_users_in_one_batch_and_a_207_refusal_is_rejected(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    ana, bob = "207838823235", "207838823236"  # user record ids (hs_object_id), as documented
    bad = batch_error("Property values were not valid", ids=[bob])
    stub.reply("POST", USERS_UPDATE, (207, batch([record(ana)], [bad])))
    rows = [
        FieldWrite(crm_id=ana, values={"wa_messages_30d": 42}),
        FieldWrite(crm_id=bob, values={"wa_messages_30d": "many"}),
        FieldWrite(crm_id=ana, values={"wa_median_first_response_minutes": Decimal("7.50")}),
    ]

    result = adapter.write_fields("user", rows)

    (call,) = stub.calls
    assert (call.method, call.path) == ("POST", USERS_UPDATE)
    assert call.json == {
        "inputs": [  # one input per id: HubSpot refuses the same id twice in a batch
            {
                "id": ana,
                "properties": {"wa_messages_30d": "42", "wa_median_first_response_minutes": "7.5"},
            },
            {"id": bob, "properties": {"wa_messages_30d": "many"}},
        ]
    }
    assert result == BatchResult(
        ok={ana: ana},
        rejected=(Rejected(key=bob, message=bad["message"], code="VALIDATION_ERROR"),),
    )
    assert limiter.buckets == ["hubspot:default"]


def test_unknown_object_type_is_refused_without_a_call(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    with pytest.raises(Permanent, match="ticket"):
        adapter.write_fields("ticket", [FieldWrite(crm_id="1", values={})])
    assert stub.calls == []


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "burst"),
    [
        ({}, 100),
        ({"HUBSPOT_TIER": "free"}, 100),
        ({"HUBSPOT_TIER": "Professional"}, 190),
        ({"HUBSPOT_TIER": "enterprise"}, 190),
        ({"HUBSPOT_TIER": "enterprise", "WACRM_HUBSPOT_BURST": "250"}, 250),
    ],
)
def test_rate_limits_follow_the_tier(extra: dict[str, str], burst: int) -> None:
    adapter = HubSpotAdapter.from_env(
        {"HUBSPOT_ACCESS_TOKEN": "pat-1", **extra}, limiter=RecordingLimiter()
    )
    assert adapter.rate_limits() == {
        "hubspot:default": Rate(calls=burst, seconds=10),
        "hubspot:search": Rate(calls=5, seconds=1),
    }


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({}, "HUBSPOT_ACCESS_TOKEN.*HUBSPOT_CLIENT_ID.*HUBSPOT_REFRESH_TOKEN"),
        (
            {"HUBSPOT_CLIENT_ID": "c", "HUBSPOT_CLIENT_SECRET": "s"},
            "HUBSPOT_REFRESH_TOKEN: required",
        ),
        ({"HUBSPOT_ACCESS_TOKEN": "t", "HUBSPOT_TIER": "gold"}, "HUBSPOT_TIER: must be one of"),
        ({"HUBSPOT_ACCESS_TOKEN": "t", "WACRM_HUBSPOT_BURST": "fast"}, "WACRM_HUBSPOT_BURST"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HubSpotSettings.from_env(env)


def test_from_env_uses_the_token_and_base_url(stub: HubSpotStub) -> None:
    env = {
        "HUBSPOT_ACCESS_TOKEN": "pat-na1-secret",
        "WACRM_HUBSPOT_BASE_URL": stub.url + "/",
        "HUBSPOT_MESSAGE_ID_PROPERTY": "wa_message_id",
    }
    stub.on("POST", COMMS_CREATE, echo_created)
    adapter = HubSpotAdapter.from_env(env, limiter=RecordingLimiter())

    adapter.log_messages([message("wamid-1")])

    assert stub.calls[0].headers["Authorization"] == "Bearer pat-na1-secret"
    assert stub.calls[0].inputs[0]["properties"]["wa_message_id"] == "wamid-1"
    assert "pat-na1-secret" not in repr(adapter.settings)


def test_oauth_secrets_stay_out_of_repr() -> None:
    env = {
        "HUBSPOT_CLIENT_ID": "cid",
        "HUBSPOT_CLIENT_SECRET": "shh",
        "HUBSPOT_REFRESH_TOKEN": "rt-x",
    }
    settings = HubSpotSettings.from_env(env)
    assert settings.oauth is not None and settings.access_token is None
    assert "shh" not in repr(settings) and "rt-x" not in repr(settings)
