"""HubSpotAdapter reads and schema work: deals, campaigns, properties; fixture coverage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from crm_adapters.base import CampaignRecord, DealRecord, FieldInfo, FieldSpec
from crm_adapters.errors import Permanent
from crm_adapters.hubspot import HubSpotAdapter
from tests.crm.hubspot_stub import (
    EXAMPLES,
    Call,
    HubSpotStub,
    RecordingLimiter,
    batch,
    example,
    expected_buckets,
    make_adapter,
    record,
)

DEAL_SEARCH = "/crm/v3/objects/deals/search"
DEAL_CONTACTS = "/crm/v4/associations/deals/contacts/batch/read"
CAMPAIGNS = "/marketing/v3/campaigns"
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def stub(httpserver: HTTPServer) -> HubSpotStub:
    return HubSpotStub(httpserver)


@pytest.fixture
def limiter() -> RecordingLimiter:
    return RecordingLimiter()


@pytest.fixture
def adapter(stub: HubSpotStub, limiter: RecordingLimiter) -> HubSpotAdapter:
    return make_adapter(stub, limiter)


def millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def deal(deal_id: str, modified: str, **props: Any) -> dict[str, Any]:
    return record(deal_id, hs_lastmodifieddate=modified, **props)


def associations(call: Call) -> tuple[int, Any]:
    """Deal 9001 has two contacts; the others have none (reported as errors, 207)."""
    ids = [i["id"] for i in call.inputs]
    to = [
        {
            "toObjectId": cid,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}],
        }
        for cid in (51, 52)
    ]
    results = [{"from": {"id": "9001"}, "to": to}] if "9001" in ids else []
    errors = [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"No contacts for deal {i}",
            "context": {"fromObjectId": [i]},
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        }
        for i in ids
        if i != "9001"
    ]
    return (207 if errors else 200), batch(results, errors)


def test_fetch_deals_pages_the_search_and_reads_contacts(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    won = deal(
        "9001",
        "2026-11-25T16:40:00.000Z",
        dealname="Acme renewal",
        amount="1200.50",
        deal_currency_code="EUR",
        dealstage="closedwon",
        hs_is_closed="true",
        hs_is_closed_won="true",
        closedate="2026-11-20T00:00:00Z",
    )
    open_deal = deal(
        "9002",
        "2026-11-26T08:00:00Z",
        dealname="Beta",
        amount=None,
        dealstage="appointmentscheduled",
        hs_is_closed="false",
        hs_is_closed_won="false",
        closedate=None,
    )
    stub.reply(
        "POST",
        DEAL_SEARCH,
        (200, {"total": 2, "results": [won], "paging": {"next": {"after": "1"}}}),
        (200, {"total": 2, "results": [open_deal]}),
    )
    stub.on("POST", DEAL_CONTACTS, associations)

    deals = adapter.fetch_deals(SINCE)

    assert deals == [
        DealRecord(
            crm_id="9001",
            name="Acme renewal",
            amount=Decimal("1200.50"),
            currency="EUR",
            stage="closedwon",
            is_closed=True,
            is_won=True,
            close_date=datetime(2026, 11, 20, tzinfo=UTC),
            updated_at=datetime(2026, 11, 25, 16, 40, tzinfo=UTC),
            contact_crm_ids=("51", "52"),
        ),
        DealRecord(
            crm_id="9002",
            name="Beta",
            stage="appointmentscheduled",
            updated_at=datetime(2026, 11, 26, 8, tzinfo=UTC),
        ),
    ]
    first, second = stub.to(DEAL_SEARCH)
    assert first.json == {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": millis(SINCE),
                    }
                ]
            }
        ],
        "properties": [
            "amount",
            "deal_currency_code",
            "dealstage",
            "hs_is_closed",
            "hs_is_closed_won",
            "closedate",
            "dealname",
            "hs_lastmodifieddate",
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 100,
        "after": "0",
    }
    assert second.json["after"] == "1"
    assert stub.to(DEAL_CONTACTS)[0].json == {"inputs": [{"id": "9001"}, {"id": "9002"}]}
    assert (
        limiter.buckets
        == expected_buckets(stub)
        == ["hubspot:search", "hubspot:search", "hubspot:default"]
    )


def test_fetch_deals_resumes_past_the_search_window(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    adapter.SEARCH_WINDOW = 3  # HubSpot's is 10 000 results per query
    t1, t2, t3 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z"
    stub.reply(
        "POST",
        DEAL_SEARCH,
        (200, {"results": [deal("1", t1), deal("2", t2)], "paging": {"next": {"after": "2"}}}),
        (200, {"results": [deal("2", t2), deal("3", t3)]}),
    )
    stub.on("POST", DEAL_CONTACTS, associations)

    deals = adapter.fetch_deals(datetime(2026, 11, 1))  # naive: taken as UTC

    assert [d.crm_id for d in deals] == ["1", "2", "3"]
    first, second = stub.to(DEAL_SEARCH)
    assert first.json["filterGroups"][0]["filters"][0]["value"] == millis(SINCE)
    assert second.json["filterGroups"][0]["filters"][0]["value"] == millis(
        datetime(2026, 11, 3, tzinfo=UTC)
    )
    assert second.json["after"] == "0"


def test_fetch_all_deals_sends_no_filter(adapter: HubSpotAdapter, stub: HubSpotStub) -> None:
    stub.reply("POST", DEAL_SEARCH, (200, {"total": 0, "results": []}))

    assert adapter.fetch_deals(None) == []
    assert stub.calls[0].json["filterGroups"] == []
    assert not stub.to(DEAL_CONTACTS)


def campaign(guid: str, updated: str, name: str, **props: Any) -> dict[str, Any]:
    return {
        "id": guid,
        "properties": {"hs_name": name, **props},
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": updated,
    }


def test_fetch_campaigns_pages_and_filters_by_updated_at(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    page1 = [
        campaign(
            "c-1",
            "2026-11-20T10:00:00Z",
            "Spring promo",
            hs_campaign_status="active",
            hs_currency_code="EUR",
            hs_spend_items_sum_amount="250.5",
        ),
        campaign("c-2", "2026-10-01T10:00:00Z", "Old"),
    ]
    stub.reply(
        "GET",
        CAMPAIGNS,
        (200, {"results": page1, "paging": {"next": {"after": "NTI1Cg%3D%3D"}}}),
        (200, {"results": [campaign("c-3", "2026-11-24T10:00:00.000Z", "Black Friday")]}),
    )

    campaigns = adapter.fetch_campaigns(SINCE)

    assert campaigns == [
        CampaignRecord(
            crm_id="c-1",
            name="Spring promo",
            status="active",
            spend=Decimal("250.5"),
            currency="EUR",
            updated_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        ),
        CampaignRecord(
            crm_id="c-3", name="Black Friday", updated_at=datetime(2026, 11, 24, 10, tzinfo=UTC)
        ),
    ]
    first, second = stub.calls
    assert first.query == {
        "limit": ["100"],
        "properties": [
            "hs_name",
            "hs_campaign_status",
            "hs_currency_code",
            "hs_spend_items_sum_amount",
        ],
    }
    assert second.query["after"] == ["NTI1Cg%3D%3D"]
    assert {c.headers["Authorization"] for c in stub.calls} == {"Bearer test-token"}
    assert limiter.buckets == ["hubspot:default", "hubspot:default"]


# --- properties ----------------------------------------------------------------------------


class PropertiesFake:
    """Properties and groups per object type, created through the API like HubSpot does."""

    def __init__(self, stub: HubSpotStub, existing: dict[str, list[dict[str, Any]]]) -> None:
        self.props = existing
        self.groups: dict[str, list[str]] = {t: ["contactinformation"] for t in existing}
        for hs_type in existing:
            base = f"/crm/v3/properties/{hs_type}"
            stub.on("GET", base, lambda _, t=hs_type: (200, {"results": self.props[t]}))
            stub.on(
                "GET",
                f"{base}/groups",
                lambda _, t=hs_type: (
                    200,
                    {
                        "results": [
                            {"name": g, "label": g, "displayOrder": -1, "archived": False}
                            for g in self.groups[t]
                        ]
                    },
                ),
            )
            stub.on("POST", f"{base}/groups", lambda c, t=hs_type: self._group(t, c))
            stub.on("POST", f"{base}/batch/create", lambda c, t=hs_type: self._create(t, c))

    def _group(self, hs_type: str, call: Call) -> tuple[int, Any]:
        self.groups[hs_type].append(call.json["name"])
        return 201, call.json | {"archived": False}

    def _create(self, hs_type: str, call: Call) -> tuple[int, Any]:
        created = [
            i | {"hidden": False, "formField": False, "calculated": False} for i in call.inputs
        ]
        self.props[hs_type].extend(created)
        return 201, batch(created)


WA_ID_PROPERTY = example("properties-create-unique-id-property")["response"]["body"]
KPI_SPECS = {
    i["name"]: i for i in example("properties-batch-create-kpis")["request"]["body"]["inputs"]
}


def test_describe_fields_reports_types_and_uniqueness(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    phone = {
        "name": "phone",
        "label": "Phone",
        "type": "string",
        "fieldType": "phonenumber",
        "groupName": "contactinformation",
        "hasUniqueValue": False,
    }
    PropertiesFake(stub, {"contacts": [WA_ID_PROPERTY, phone]})

    assert adapter.describe_fields("contact") == {
        "whatsapp_wa_id": FieldInfo(name="whatsapp_wa_id", type="string", unique=True),
        "phone": FieldInfo(name="phone", type="string", unique=False),
    }
    with pytest.raises(Permanent, match="campaign"):
        adapter.describe_fields("campaign")


def test_provision_creates_group_and_missing_properties_once(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    PropertiesFake(stub, {"contacts": [WA_ID_PROPERTY], "communications": [], "deals": []})
    kpi = KPI_SPECS["wa_messages_30d"], KPI_SPECS["wa_last_inbound_at"]
    specs = [
        FieldSpec(
            object_type="contact",
            name="whatsapp_wa_id",
            label="WhatsApp ID",
            type="string",
            unique=True,
        ),
        FieldSpec(
            object_type="message",
            name="whatsapp_message_id",
            label="WhatsApp message id",
            type="string",
            unique=True,
        ),
        FieldSpec(object_type="deal", name=kpi[0]["name"], label=kpi[0]["label"], type="number"),
        FieldSpec(object_type="deal", name=kpi[1]["name"], label=kpi[1]["label"], type="datetime"),
        FieldSpec(object_type="deal", name="wa_opted_in", label="WhatsApp opt-in", type="bool"),
        FieldSpec(
            object_type="campaign",
            name="wa_messages_total",
            label="WhatsApp messages",
            type="number",
        ),
    ]

    created = adapter.provision_fields(specs)

    assert created == [
        "whatsapp_message_id",
        "wa_messages_30d",
        "wa_last_inbound_at",
        "wa_opted_in",
    ]
    group_posts = [c for c in stub.calls if c.method == "POST" and c.path.endswith("/groups")]
    assert [c.path for c in group_posts] == [
        "/crm/v3/properties/communications/groups",
        "/crm/v3/properties/deals/groups",
    ]
    assert (
        group_posts[0].json.keys() == example("properties-create-group")["request"]["body"].keys()
    )
    assert group_posts[0].json["name"] == "wacrm"
    (deals_create,) = stub.to("/crm/v3/properties/deals/batch/create")
    sent = {i["name"]: i for i in deals_create.inputs}
    for name, spec in KPI_SPECS.items():
        if name in sent:  # same (name, label, type, fieldType) as the validated example
            assert {k: sent[name][k] for k in spec if k != "groupName"} == {
                k: v for k, v in spec.items() if k != "groupName"
            }
            assert sent[name]["groupName"] == "wacrm"
    assert (
        sent["wa_opted_in"]["type"] == "bool"
        and sent["wa_opted_in"]["fieldType"] == "booleancheckbox"
    )
    assert [o["value"] for o in sent["wa_opted_in"]["options"]] == ["true", "false"]
    (message_create,) = stub.to("/crm/v3/properties/communications/batch/create")
    assert message_create.inputs[0]["hasUniqueValue"] is True
    assert limiter.buckets == expected_buckets(stub)

    stub.calls.clear()
    assert adapter.provision_fields(specs) == []  # idempotent
    assert {c.method for c in stub.calls} == {"GET"}


JOB_TITLE = {  # a default Users property (the Users guide names job title as updatable)
    "name": "hs_job_title",
    "label": "Job title",
    "type": "string",
    "fieldType": "text",
    "groupName": "userinformation",
    "hasUniqueValue": False,
}


def test_describe_user_fields_reads_the_users_properties(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    PropertiesFake(stub, {"users": [JOB_TITLE]})

    assert adapter.describe_fields("user") == {
        "hs_job_title": FieldInfo(name="hs_job_title", type="string", unique=False)
    }
    assert [(c.method, c.path) for c in stub.calls] == [("GET", "/crm/v3/properties/users")]


def test_provision_user_fields_creates_them_on_the_users_object(
    adapter: HubSpotAdapter, stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    fake = PropertiesFake(stub, {"users": [JOB_TITLE]})
    kpi = KPI_SPECS["wa_messages_30d"]
    specs = [
        FieldSpec(object_type="user", name=kpi["name"], label=kpi["label"], type="number"),
        FieldSpec(object_type="user", name="hs_job_title", label="Job title", type="string"),
    ]

    assert adapter.provision_fields(specs) == ["wa_messages_30d"]

    assert fake.groups["users"][-1] == "wacrm"
    (create,) = stub.to("/crm/v3/properties/users/batch/create")
    assert [i["name"] for i in create.inputs] == ["wa_messages_30d"]  # hs_job_title exists
    assert (create.inputs[0]["type"], create.inputs[0]["groupName"]) == ("number", "wacrm")
    assert limiter.buckets == expected_buckets(stub)


def test_provision_refuses_unknown_field_types_before_any_call(
    adapter: HubSpotAdapter, stub: HubSpotStub
) -> None:
    with pytest.raises(Permanent, match="wa_blob"):
        adapter.provision_fields(
            [FieldSpec(object_type="deal", name="wa_blob", label="x", type="json")]
        )
    assert stub.calls == []


# --- fixture coverage ---------------------------------------------------------------------

NOT_USED = {
    "contacts-batch-upsert-by-email": "contacts are keyed by the unique wa_id property",
    "notes-batch-create-fallback": "messages are logged as communications",
    "associations-v4-batch-create-labelled": "associations are created inline",
    "associations-v4-batch-associate-default": "associations are created inline",
    "deals-batch-read": "deals are pulled through search",
}


def test_every_fixture_example_is_replayed_or_deliberately_unused() -> None:
    sources = "".join(
        p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_hubspot*.py")
    )
    unused = {i for i in EXAMPLES if f'"{i}"' not in sources} - set(NOT_USED)
    assert unused == set()
    assert set(NOT_USED) <= set(EXAMPLES)
