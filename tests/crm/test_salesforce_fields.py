"""Salesforce reads and schema: deals, campaigns, describe and Metadata API provisioning."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import responses

from crm_adapters.base import (
    CampaignRecord,
    DealRecord,
    FieldInfo,
    FieldSpec,
)
from crm_adapters.errors import Permanent
from crm_adapters.salesforce import SalesforceAdapter
from tests.crm.sf_helpers import (
    BASE,
    INSTANCE,
    METADATA_FIELDS,
    METADATA_URL,
    QUERY_URL,
    RecordingLimiter,
    assert_counted,
    metadata_echo,
    query_page,
    sent_components,
    soql,
)

# The shared fixtures, registered here under their names (rsps, limiter, clock, adapter).
from tests.crm.sf_helpers import adapter_fixture as adapter_fixture
from tests.crm.sf_helpers import clock_fixture as clock_fixture
from tests.crm.sf_helpers import limiter_fixture as limiter_fixture
from tests.crm.sf_helpers import rsps_fixture as rsps_fixture

# -- deals, campaigns -------------------------------------------------------------------

OPPORTUNITY = {
    "attributes": {
        "type": "Opportunity",
        "url": "/services/data/v62.0/sobjects/Opportunity/006Hs00000XyZ12IAB",
    },
    "Id": "006Hs00000XyZ12IAB",
    "Name": "Acme - 20 units",
    "Amount": 1234.1,
    "StageName": "Closed Won",
    "IsClosed": True,
    "IsWon": True,
    "CloseDate": "2026-11-25",
    "LastModifiedDate": "2026-11-25T16:45:00.000+0000",
    "CampaignId": "701Hs00000PqR34IAC",
}
ROLE = {"attributes": {"type": "OpportunityContactRole"}, "OpportunityId": "006Hs00000XyZ12IAB"}


def test_fetch_deals_pages_and_adds_contact_roles(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    next_url = "/services/data/v62.0/query/01gHs00000AbCdE-2000"
    other = {
        **OPPORTUNITY,
        "Id": "006Hs00000Other",
        "Amount": None,
        "IsClosed": False,
        "IsWon": False,
        "CampaignId": None,
        "CurrencyIsoCode": "USD",
    }
    rsps.get(QUERY_URL, json=query_page([{**OPPORTUNITY, "CurrencyIsoCode": "EUR"}], next_url))
    rsps.get(f"{INSTANCE}{next_url}", json=query_page([other]))
    rsps.get(
        QUERY_URL,
        json=query_page([{**ROLE, "ContactId": "003Primary"}, {**ROLE, "ContactId": "003Second"}]),
    )
    deals = adapter.fetch_deals(datetime(2026, 11, 1, tzinfo=UTC))
    assert deals[0] == DealRecord(
        crm_id="006Hs00000XyZ12IAB",
        name="Acme - 20 units",
        amount=Decimal("1234.1"),
        currency="EUR",
        stage="Closed Won",
        is_closed=True,
        is_won=True,
        close_date=datetime(2026, 11, 25, tzinfo=UTC),
        updated_at=datetime(2026, 11, 25, 16, 45, tzinfo=UTC),
        contact_crm_ids=("003Primary", "003Second"),
        campaign_crm_id="701Hs00000PqR34IAC",
    )
    assert (deals[1].amount, deals[1].contact_crm_ids, deals[1].currency) == (None, (), "USD")
    assert soql(rsps.calls[0].request) == (
        "SELECT Id, Name, Amount, StageName, IsClosed, IsWon, CloseDate, LastModifiedDate, "
        "CampaignId, CurrencyIsoCode FROM Opportunity WHERE LastModifiedDate >= "
        "2026-11-01T00:00:00+00:00 ORDER BY LastModifiedDate, Id"
    )
    assert soql(rsps.calls[2].request) == (
        "SELECT OpportunityId, ContactId FROM OpportunityContactRole WHERE OpportunityId IN "
        "(SELECT Id FROM Opportunity WHERE LastModifiedDate >= 2026-11-01T00:00:00+00:00) "
        "ORDER BY IsPrimary DESC, CreatedDate"
    )
    assert_counted(limiter, 3)  # every page is a counted call


def test_single_currency_orgs_are_queried_without_currency(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    no_column = [
        {
            "errorCode": "INVALID_FIELD",
            "message": "No such column 'CurrencyIsoCode' on entity 'Opportunity'.",
        }
    ]
    rsps.get(QUERY_URL, status=400, json=no_column)
    rsps.get(QUERY_URL, json=query_page([]))
    rsps.get(
        QUERY_URL,
        json=query_page(
            [
                {
                    "attributes": {"type": "Campaign"},
                    "Id": "701Hs00000PqR34IAC",
                    "Name": "Black Friday",
                    "Status": "In Progress",
                    "ActualCost": 530.25,
                    "LastModifiedDate": "2026-11-25T16:45:00.000+0000",
                }
            ]
        ),
    )
    assert adapter.fetch_deals(None) == []  # no deals: no contact-role query
    campaigns = adapter.fetch_campaigns(None)
    assert campaigns == [
        CampaignRecord(
            crm_id="701Hs00000PqR34IAC",
            name="Black Friday",
            status="In Progress",
            spend=Decimal("530.25"),
            updated_at=datetime(2026, 11, 25, 16, 45, tzinfo=UTC),
        )
    ]
    assert "CurrencyIsoCode" not in soql(rsps.calls[1].request)
    assert soql(rsps.calls[2].request) == (
        "SELECT Id, Name, Status, ActualCost, LastModifiedDate FROM Campaign "
        "ORDER BY LastModifiedDate, Id"
    )
    assert_counted(limiter, 3)


# -- fields -----------------------------------------------------------------------------


def _describe(rsps: responses.RequestsMock, sobject: str, *fields: dict[str, Any]) -> None:
    base = [{"name": "Id", "type": "id", "unique": False, "externalId": False}]
    rsps.get(
        f"{BASE}sobjects/{sobject}/describe", json={"name": sobject, "fields": [*base, *fields]}
    )


@pytest.mark.parametrize(
    ("object_type", "sobject", "field", "info"),
    [
        (
            "message",
            "Task",
            {"name": "WhatsApp_Message_Id__c", "type": "string", "externalId": True},
            FieldInfo(name="WhatsApp_Message_Id__c", type="string", unique=True),
        ),
        (
            "user",
            "User",
            {"name": "WA_Messages_30d__c", "type": "double", "externalId": False},
            FieldInfo(name="WA_Messages_30d__c", type="double"),
        ),
    ],
)
def test_describe_fields(
    rsps: responses.RequestsMock,
    adapter: SalesforceAdapter,
    object_type: str,
    sobject: str,
    field: dict[str, Any],
    info: FieldInfo,
) -> None:
    _describe(rsps, sobject, {**field, "unique": False})
    assert adapter.describe_fields(object_type) == {
        "Id": FieldInfo(name="Id", type="id"),
        info.name: info,
    }
    assert rsps.calls[0].request.url == f"{BASE}sobjects/{sobject}/describe"


def test_provision_user_fields_go_on_user(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    _describe(rsps, "User")
    rsps.add_callback(responses.POST, METADATA_URL, metadata_echo())
    spec = FieldSpec(object_type="user", name="WA_Messages_30d", label="Messages", type="number")
    assert adapter.provision_fields([spec]) == ["WA_Messages_30d"]
    (component,) = sent_components(rsps.calls[1].request)
    assert (component["fullName"], component["type"]) == ("User.WA_Messages_30d__c", "Number")


_FIXTURE_TYPES = {"Text": "string", "Number": "number", "DateTime": "datetime"}
_OBJECT_TYPES = {
    "Contact": "contact",
    "Activity": "message",
    "Opportunity": "deal",
    "Campaign": "campaign",
}


def _fixture_specs() -> list[FieldSpec]:
    return [
        FieldSpec(
            object_type=_OBJECT_TYPES[f["fullName"].split(".")[0]],
            name=f["fullName"].split(".")[1],
            label=f["label"],
            type=_FIXTURE_TYPES[f["type"]],
            unique=bool(f.get("externalId")),
        )
        for f in METADATA_FIELDS
        if f["fullName"].split(".")[0] in _OBJECT_TYPES
    ]


def _xml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_provision_creates_only_missing_fields_ten_per_call(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter, limiter: RecordingLimiter
) -> None:
    extra = [
        FieldSpec(object_type="contact", name=f"WA_Extra_{i}", label=f"Extra {i}", type="bool")
        for i in range(4)
    ]
    specs = [*_fixture_specs(), *extra]
    _describe(
        rsps,
        "Contact",
        {"name": "WhatsApp_Id__c", "type": "string", "unique": True, "externalId": True},
    )
    for sobject in ("Task", "Opportunity", "Campaign"):
        _describe(rsps, sobject)
    rsps.add_callback(responses.POST, METADATA_URL, metadata_echo())
    created = adapter.provision_fields(specs)
    assert created == [s.name for s in specs if s.name != "WhatsApp_Id__c"]
    sent_fields = [c for call in rsps.calls[4:] for c in sent_components(call.request)]
    assert [len(sent_components(call.request)) for call in rsps.calls[4:]] == [10, 1]
    by_name = {f["fullName"]: f for f in sent_fields}
    compared = 0
    for definition in METADATA_FIELDS:  # what we send agrees with the fixture's definitions
        mine = by_name.get(definition["fullName"])
        if mine is not None:
            keys = [k for k in ("label", "type", "length", "externalId") if k in definition]
            assert {k: mine[k] for k in keys} == {k: _xml(definition[k]) for k in keys}
            compared += 1
    assert compared == 7  # all but Lead.* (Contact adapter) and the existing WhatsApp_Id__c
    assert by_name["Contact.WA_Extra_0__c"]["defaultValue"] == "false"
    assert by_name["Opportunity.WA_Messages_30d__c"]["precision"] == "18"
    assert_counted(limiter, 6)


def test_provision_is_idempotent(rsps: responses.RequestsMock, adapter: SalesforceAdapter) -> None:
    _describe(
        rsps,
        "Campaign",
        {"name": "WA_Messages_Total__c", "type": "double", "unique": False, "externalId": False},
    )
    spec = FieldSpec(
        object_type="campaign", name="WA_Messages_Total__c", label="Total", type="number"
    )
    assert adapter.provision_fields([spec]) == []


def test_provision_failures_carry_the_metadata_api_words(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    _describe(rsps, "Campaign")
    rsps.add_callback(
        responses.POST,
        METADATA_URL,
        metadata_echo(
            fail={"Campaign.WA_Total__c": ("DUPLICATE_DEVELOPER_NAME", "There is already a field")}
        ),
    )
    spec = FieldSpec(object_type="campaign", name="WA_Total", label="Total", type="number")
    with pytest.raises(
        Permanent,
        match=r"Campaign\.WA_Total__c: \(DUPLICATE_DEVELOPER_NAME, "
        "There is already a field\\)",
    ):
        adapter.provision_fields([spec])
