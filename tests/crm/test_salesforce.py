"""Salesforce writes through the real simple-salesforce, with ``responses`` as the org.

Contacts, Tasks and KPI values: request bodies, batch sizes and counted calls. Fixture
examples are replayed unchanged (``tests/fixtures/salesforce``); extra responses are built in
the same documented shapes by ``sf_helpers``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
import responses

from crm_adapters._salesforce_records import SOQL_URL_BUDGET, soql_in_chunks
from crm_adapters.base import (
    BatchResult,
    ContactRecord,
    FieldWrite,
    MessageRecord,
    Rate,
    Rejected,
)
from crm_adapters.salesforce import SalesforceAdapter, SalesforceOptions
from tests.crm.sf_helpers import (
    ALL_EXAMPLES,
    AT,
    BASE,
    COLLECTIONS,
    COMPOSITE,
    CONTACT_UPSERT,
    NOT_REPLAYED,
    QUERY_URL,
    REPLAYED,
    SESSION_ID,
    TASK_UPSERT,
    RecordingLimiter,
    assert_counted,
    collection_echo,
    composite_echo,
    contacts,
    example,
    make_sf,
    messages,
    query_page,
    sent,
    soql,
)

# The shared fixtures, registered here under their names (rsps, limiter, clock, adapter).
from tests.crm.sf_helpers import adapter_fixture as adapter_fixture
from tests.crm.sf_helpers import clock_fixture as clock_fixture
from tests.crm.sf_helpers import limiter_fixture as limiter_fixture
from tests.crm.sf_helpers import rsps_fixture as rsps_fixture

# -- contacts ---------------------------------------------------------------------------


def test_upsert_contacts_sends_the_fixture_collection(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    ex = example("collections-upsert-contacts-by-external-id")
    rsps.patch(CONTACT_UPSERT, json=ex["response"]["body"])
    known = ContactRecord(key="4917000000000", wa_id="4917000000000", crm_id="003Hs00001KnownIAV")
    result = adapter.upsert_contacts(
        [
            ContactRecord(key="4915112345678", wa_id="4915112345678", name="Silva"),
            ContactRecord(key="447700900123", wa_id="447700900123"),
            known,
        ]
    )
    assert sent(rsps) == ex["request"]["body"]
    assert rsps.calls[0].request.method == "PATCH"
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {SESSION_ID}"
    assert result == BatchResult(
        ok={
            "4915112345678": "003Hs00001AbCdEIAV",
            "447700900123": "003Hs00001AbCdFIAV",
            "4917000000000": "003Hs00001KnownIAV",
        }
    )
    assert_counted(limiter, 1)


def test_known_contacts_cost_no_call(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    batch = [ContactRecord(key="4915112345678", wa_id="4915112345678", crm_id="003A")]
    assert adapter.upsert_contacts(batch) == BatchResult(ok={"4915112345678": "003A"})
    assert len(rsps.calls) == 0
    assert_counted(limiter, 0)


def test_leads_get_first_name_and_company(
    rsps: responses.RequestsMock, limiter: RecordingLimiter
) -> None:
    adapter = SalesforceAdapter(
        make_sf(), limiter=limiter, options=SalesforceOptions(contact_object="Lead")
    )
    rsps.add_callback(
        responses.PATCH, f"{BASE}composite/sobjects/Lead/WhatsApp_Id__c", collection_echo()
    )
    record = ContactRecord(key="bsuid:US.13491208655302741918", wa_id=None, name="Ana Maria Silva")
    result = adapter.upsert_contacts([record, record])  # the duplicate is sent once
    assert sent(rsps)["records"] == [
        {
            "attributes": {"type": "Lead"},
            "WhatsApp_Id__c": "bsuid:US.13491208655302741918",
            "LastName": "Silva",
            "FirstName": "Ana Maria",
            "Company": "[not provided]",
        }
    ]
    assert list(result.ok) == ["bsuid:US.13491208655302741918"]


def test_contacts_over_200_are_wrapped_in_one_composite_call(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    rsps.add_callback(responses.POST, COMPOSITE, composite_echo())
    result = adapter.upsert_contacts(contacts(450))
    request = sent(rsps)
    subs = request["compositeRequest"]
    assert request["allOrNone"] is False
    assert [(s["method"], s["url"]) for s in subs] == [
        ("PATCH", "/services/data/v62.0/composite/sobjects/Contact/WhatsApp_Id__c")
    ] * 3
    assert [len(s["body"]["records"]) for s in subs] == [200, 200, 50]
    assert len(result.ok) == 450 and not result.rejected
    assert_counted(limiter, 1)


def test_echoed_composite_responses_have_the_fixture_shape() -> None:
    fixture_sub = example("composite-wrapping-collections")["response"]["body"]["compositeResponse"]
    request = requests.Request(
        "POST",
        COMPOSITE,
        json={
            "compositeRequest": [
                {
                    "referenceId": "c0",
                    "body": {
                        "records": [{"attributes": {"type": "Contact"}, "WhatsApp_Id__c": "1"}]
                    },
                }
            ]
        },
    ).prepare()
    _, _, body = composite_echo()(request)
    echoed = json.loads(body)["compositeResponse"]
    assert set(echoed[0]) == set(fixture_sub[0])
    assert set(echoed[0]["body"][0]) == set(fixture_sub[0]["body"][0])


# -- messages ---------------------------------------------------------------------------


def test_tasks_follow_the_fixture_and_a_refused_one_maps_to_its_wamid(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    ex = example("collections-create-tasks")
    rsps.patch(TASK_UPSERT, json=ex["response"]["body"])
    base: dict[str, Any] = {
        "contact_crm_id": "003Hs00001AbCdEIAV",
        "type": "text",
        "deal_crm_id": "006Hs00000XyZ12IAB",
    }
    result = adapter.log_messages(
        [
            MessageRecord(
                key="wamid.AAA1",
                direction="outbound",
                sender_kind="agent",
                text="Hi Ana, your order has shipped.",
                timestamp=AT,
                **base,
            ),
            MessageRecord(
                key="wamid.AAA2",
                direction="inbound",
                sender_kind="customer",
                text="Thanks!",
                timestamp=datetime(2026, 11, 25, 16, 43, 20, tzinfo=UTC),
                **base,
            ),
        ]
    )
    shared = (
        "attributes",
        "WhoId",
        "WhatId",
        "ActivityDate",
        "Status",
        "TaskSubtype",
        "Description",
        "WhatsApp_Message_Id__c",
    )
    for mine, theirs in zip(sent(rsps)["records"], ex["request"]["body"]["records"], strict=True):
        assert {k: mine[k] for k in shared} == {k: theirs[k] for k in shared}
    assert [r["Subject"] for r in sent(rsps)["records"]] == [
        "WhatsApp → agent",
        "WhatsApp ← customer",
    ]
    assert result == BatchResult(
        ok={"wamid.AAA1": "00THs00000Lm567IAD"},
        rejected=(
            Rejected(
                key="wamid.AAA2",
                message="Related To ID: id value of incorrect type: 006Hs00000XyZ12IAB",
                code="INVALID_CROSS_REFERENCE_KEY",
            ),
        ),
    )
    assert_counted(limiter, 1)


def test_task_for_media_with_owner(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    rsps.add_callback(responses.PATCH, TASK_UPSERT, collection_echo())
    message = MessageRecord(
        key="wamid.IMG",
        contact_crm_id="003A",
        direction="inbound",
        type="image",
        text=None,
        timestamp=datetime(2026, 11, 25, 23, 30),
        sender_kind="customer",
        owner_crm_id="005Hs000001AbcDIAS",
    )
    adapter.log_messages([message])
    record = sent(rsps)["records"][0]
    assert record["Subject"] == "WhatsApp ← customer (image)"
    assert record["Description"] == "[image]"
    assert record["OwnerId"] == "005Hs000001AbcDIAS"
    assert record["ActivityDate"] == "2026-11-25"  # naive timestamps are UTC
    assert "WhatId" not in record


def test_1000_tasks_are_one_counted_call_and_failures_keep_their_wamid(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    rsps.add_callback(
        responses.POST,
        COMPOSITE,
        composite_echo(fail={"wamid.0437": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}),
    )
    result = adapter.log_messages(messages(1000))
    subs = sent(rsps)["compositeRequest"]
    assert len(rsps.calls) == 1
    assert [(s["method"], s["url"], len(s["body"]["records"])) for s in subs] == [
        ("PATCH", "/services/data/v62.0/composite/sobjects/Task/WhatsApp_Message_Id__c", 200)
    ] * 5
    assert result.rejected == (
        Rejected(
            key="wamid.0437", message="refused wamid.0437", code="FIELD_CUSTOM_VALIDATION_EXCEPTION"
        ),
    )
    assert len(result.ok) == 999 and "wamid.0438" in result.ok
    assert_counted(limiter, 1)


@pytest.mark.parametrize(
    ("count", "shapes"),
    [(200, [200]), (201, [[200, 1]]), (1000, [[200] * 5]), (1001, [[200] * 5, 1])],
)
def test_counted_calls_per_batch_size(
    rsps: responses.RequestsMock,
    adapter: SalesforceAdapter,
    limiter: RecordingLimiter,
    count: int,
    shapes: list[Any],
) -> None:
    if any(isinstance(s, list) for s in shapes):
        rsps.add_callback(responses.POST, COMPOSITE, composite_echo())
    if any(isinstance(s, int) for s in shapes):
        rsps.add_callback(responses.PATCH, TASK_UPSERT, collection_echo())
    assert len(adapter.log_messages(messages(count)).ok) == count
    bodies = [sent(rsps, i) for i in range(len(rsps.calls))]
    assert [
        [len(s["body"]["records"]) for s in b["compositeRequest"]]
        if "compositeRequest" in b
        else len(b["records"])
        for b in bodies
    ] == shapes
    assert_counted(limiter, len(shapes))


def test_retrying_an_upsert_returns_the_same_ids(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    created = example("upsert-contact-by-external-id-created")["response"]["body"]
    updated = example("upsert-contact-by-external-id-updated")["response"]["body"]
    rsps.patch(CONTACT_UPSERT, json=[created])
    rsps.patch(CONTACT_UPSERT, json=[updated])
    record = ContactRecord(key="4915112345678", wa_id="4915112345678", name="Ana Silva")
    first, second = adapter.upsert_contacts([record]), adapter.upsert_contacts([record])
    assert first == second == BatchResult(ok={"4915112345678": "003Hs00001AbCdEIAV"})
    assert sent(rsps, 0) == sent(rsps, 1)
    assert [created["created"], updated["created"]] == [True, False]
    assert_counted(limiter, 2)


def test_retrying_a_task_batch_updates_the_same_tasks(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    rsps.add_callback(responses.PATCH, TASK_UPSERT, collection_echo(created=True))
    first = adapter.log_messages(messages(3))
    rsps.replace(
        responses.PATCH,
        TASK_UPSERT,
        json=[
            {"id": first.ok[f"wamid.{i:04d}"], "success": True, "errors": [], "created": False}
            for i in range(3)
        ],
    )
    assert adapter.log_messages(messages(3)) == first
    assert sent(rsps, 0) == sent(rsps, 1)


def test_query_before_create_creates_only_the_missing_tasks(
    rsps: responses.RequestsMock, limiter: RecordingLimiter
) -> None:
    adapter = SalesforceAdapter(
        make_sf(), limiter=limiter, options=SalesforceOptions(task_upsert=False)
    )
    rsps.get(
        QUERY_URL,
        json=query_page(
            [
                {
                    "attributes": {"type": "Task"},
                    "Id": "00THs00000Existing",
                    "WhatsApp_Message_Id__c": "wamid.0001",
                }
            ]
        ),
    )
    rsps.add_callback(responses.POST, COLLECTIONS, collection_echo())
    result = adapter.log_messages(messages(3))
    assert soql(rsps.calls[0].request) == (
        "SELECT Id, WhatsApp_Message_Id__c FROM Task WHERE WhatsApp_Message_Id__c IN "
        "('wamid.0000','wamid.0001','wamid.0002')"
    )
    created = sent(rsps, 1)
    assert rsps.calls[1].request.method == "POST"
    assert [r["WhatsApp_Message_Id__c"] for r in created["records"]] == ["wamid.0000", "wamid.0002"]
    assert result.ok["wamid.0001"] == "00THs00000Existing" and len(result.ok) == 3
    assert_counted(limiter, 2)


def test_existence_queries_stay_under_the_url_limit() -> None:
    wamids = [
        f"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTg5RjY0RjM2QjQ3MEY5MjA0{i:06d}=" for i in range(1000)
    ]
    template = "SELECT Id, {field:literal} FROM Task WHERE {field:literal} IN {ids}"
    statements = soql_in_chunks(template, wamids, field="WhatsApp_Message_Id__c")
    assert 1 < len(statements) < 10
    assert all(len(quote_plus(s)) <= SOQL_URL_BUDGET for s in statements)
    assert re.findall(r"'([^']+)'", " ".join(statements)) == wamids


# -- KPI write-back ---------------------------------------------------------------------


def _typed(value: Any) -> Any:
    if isinstance(value, str) and value.endswith("Z"):
        return datetime.fromisoformat(value)
    return Decimal(str(value)) if isinstance(value, float) else value


@pytest.mark.parametrize(
    ("object_type", "sobject"),
    [("contact", "Contact"), ("deal", "Opportunity"), ("campaign", "Campaign")],
)
def test_write_fields_matches_the_fixture(
    rsps: responses.RequestsMock,
    adapter: SalesforceAdapter,
    limiter: RecordingLimiter,
    object_type: str,
    sobject: str,
) -> None:
    ex = example("collections-update-kpis-mixed-types")
    record = next(r for r in ex["request"]["body"]["records"] if r["attributes"]["type"] == sobject)
    answer = next(r for r in ex["response"]["body"] if r["id"] == record["Id"])
    rsps.patch(COLLECTIONS, json=[answer])
    values = {k: _typed(v) for k, v in record.items() if k not in ("attributes", "Id")}
    result = adapter.write_fields(object_type, [FieldWrite(crm_id=record["Id"], values=values)])
    assert sent(rsps) == {"allOrNone": False, "records": [record]}
    assert result == BatchResult(ok={record["Id"]: record["Id"]})
    assert_counted(limiter, 1)


def test_agent_kpis_update_user_records_and_a_refused_one_is_rejected(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    ana, bob = "005Hs00000AbCdEIAV", "005Hs00000FgHiJIAV"
    rsps.add_callback(
        responses.PATCH,
        COLLECTIONS,
        callback=collection_echo(fail={bob: "INSUFFICIENT_ACCESS_OR_READONLY"}),
    )
    rows = [
        FieldWrite(crm_id=ana, values={"WA_Messages_30d__c": 42}),
        FieldWrite(crm_id=bob, values={"WA_Messages_30d__c": 7}),
        FieldWrite(crm_id=ana, values={"WA_Last_Reply_At__c": AT}),
    ]

    result = adapter.write_fields("user", rows)

    assert sent(rsps) == {
        "allOrNone": False,
        "records": [  # one record per id: the rows for ana are merged
            {
                "attributes": {"type": "User"},
                "Id": ana,
                "WA_Messages_30d__c": 42,
                "WA_Last_Reply_At__c": "2026-11-25T16:40:00.000Z",
            },
            {"attributes": {"type": "User"}, "Id": bob, "WA_Messages_30d__c": 7},
        ],
    }
    assert result == BatchResult(
        ok={ana: ana},
        rejected=(
            Rejected(key=bob, message=f"refused {bob}", code="INSUFFICIENT_ACCESS_OR_READONLY"),
        ),
    )
    assert_counted(limiter, 1)


def test_write_fields_for_an_unknown_object_is_rejected_without_a_call(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    result = adapter.write_fields("ticket", [FieldWrite(crm_id="500A", values={"X__c": 1})])
    assert result.rejected == (
        Rejected(key="500A", message="no Salesforce object for 'ticket'", code="INVALID_TYPE"),
    )


# -- contract ---------------------------------------------------------------------------


def test_adapter_constants() -> None:
    adapter = SalesforceAdapter(make_sf())
    assert (adapter.name, adapter.MAX_BATCH, adapter.RECORDS_PER_CALL) == ("salesforce", 200, 1000)
    assert adapter.rate_limits() == {"salesforce:api": Rate(calls=25, seconds=1.0)}


def test_every_fixture_example_is_replayed_or_excused() -> None:
    assert not REPLAYED & NOT_REPLAYED.keys()
    assert REPLAYED | NOT_REPLAYED.keys() == ALL_EXAMPLES.keys()
    source = "".join(p.read_text() for p in Path(__file__).parent.glob("test_salesforce*.py"))
    assert [e for e in sorted(REPLAYED) if f'"{e}"' not in source] == []
