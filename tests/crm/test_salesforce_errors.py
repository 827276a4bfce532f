"""Salesforce errors and limits: classification, the daily share, the limiter."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses

from crm_adapters.base import Rejected
from crm_adapters.errors import AuthExpired, Permanent, RateLimited, Transient
from crm_adapters.salesforce import SalesforceAdapter
from tests.crm.sf_helpers import (
    COMPOSITE,
    CONTACT_UPSERT,
    INSTANCE,
    QUERY_URL,
    FakeClock,
    RecordingLimiter,
    composite_echo,
    contacts,
    example,
    make_sf,
    messages,
    query_page,
)

# The shared fixtures, registered here under their names (rsps, limiter, clock, adapter).
from tests.crm.sf_helpers import adapter_fixture as adapter_fixture
from tests.crm.sf_helpers import clock_fixture as clock_fixture
from tests.crm.sf_helpers import limiter_fixture as limiter_fixture
from tests.crm.sf_helpers import rsps_fixture as rsps_fixture

# -- errors -----------------------------------------------------------------------------


def _replay(example_id: str, error: type[Exception], match: str) -> Any:
    response = example(example_id)["response"]
    return pytest.param(response["status"], response["body"], error, match, id=example_id)


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        _replay(
            "error-403-request-limit-exceeded",
            RateLimited,
            r"^REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded\.$",
        ),
        _replay(
            "error-401-invalid-session",
            AuthExpired,
            "^INVALID_SESSION_ID: Session expired or invalid$",
        ),
        _replay(
            "error-400-malformed-query", Permanent, "^MALFORMED_QUERY: unexpected token: SELEC$"
        ),
        _replay(
            "error-400-invalid-field",
            Permanent,
            "(?s)^INVALID_FIELD: SELECT.*No such column 'WhatsApp_Id__c'",
        ),
        _replay(
            "error-400-duplicate-external-id", Permanent, "^DUPLICATE_VALUE: duplicate value found"
        ),
        _replay(
            "upsert-contact-bad-external-id-field",
            Permanent,
            "^NOT_FOUND: The requested resource does not exist$",
        ),
        _replay(
            "upsert-contact-external-id-ambiguous",
            Permanent,
            "^MULTIPLE_RECORDS: 2 records match the external id$",
        ),
        pytest.param(
            403,
            [{"message": "Insufficient access", "errorCode": "INSUFFICIENT_ACCESS"}],
            Permanent,
            "^INSUFFICIENT_ACCESS: Insufficient access$",
            id="403-access",
        ),
        pytest.param(500, "", Transient, "^HTTP 500$", id="500-empty"),
        pytest.param(
            503,
            [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}],
            Transient,
            "^SERVER_UNAVAILABLE: Server unavailable$",
            id="503",
        ),
        pytest.param(
            None,
            requests.ConnectionError("acme.my.salesforce.com refused"),
            Transient,
            "^Salesforce unreachable: ConnectionError$",
            id="connection-error",
        ),
        pytest.param(
            None,
            requests.ReadTimeout("read timed out"),
            Transient,
            "^Salesforce unreachable: ReadTimeout$",
            id="timeout",
        ),
    ],
)
def test_errors_are_classified_with_salesforces_own_words(
    rsps: responses.RequestsMock,
    adapter: SalesforceAdapter,
    status: int | None,
    body: Any,
    error: type[Exception],
    match: str,
) -> None:
    """Status → error does not depend on the resource, so every body is replayed on a query."""
    if status is None:
        rsps.get(QUERY_URL, body=body)
    elif isinstance(body, str):
        rsps.get(QUERY_URL, status=status, body=body)
    else:
        rsps.get(QUERY_URL, status=status, json=body)
    with pytest.raises(error, match=match) as info:
        adapter.fetch_campaigns(None)
    assert INSTANCE not in str(info.value) and "query" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_request_limit_exceeded_pauses_an_hour(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    response = example("error-403-request-limit-exceeded")["response"]
    rsps.get(QUERY_URL, status=response["status"], json=response["body"])
    with pytest.raises(RateLimited) as info:
        adapter.fetch_campaigns(None)
    assert info.value.retry_after == 3600


def test_usage_over_the_daily_share_stops_calls_before_sending(
    rsps: responses.RequestsMock,
    adapter: SalesforceAdapter,
    limiter: RecordingLimiter,
    clock: FakeClock,
) -> None:
    rsps.get(QUERY_URL, json=query_page([]), headers={"Sforce-Limit-Info": "api-usage=95/100"})
    assert adapter.fetch_campaigns(None) == []
    with pytest.raises(RateLimited, match="95/100") as info:
        adapter.fetch_campaigns(None)
    assert info.value.retry_after == 900
    clock.now += 600
    with pytest.raises(RateLimited) as info:
        adapter.upsert_contacts(contacts(1))
    assert info.value.retry_after == 300
    assert len(rsps.calls) == 1 and len(limiter.calls) == 1
    clock.now += 300  # the pause is over: one call may refresh the reading
    adapter.fetch_campaigns(None)
    assert len(rsps.calls) == 2


def test_usage_under_the_share_does_not_block(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    rsps.get(QUERY_URL, json=query_page([]), headers={"Sforce-Limit-Info": "api-usage=79/100"})
    adapter.fetch_campaigns(None)
    adapter.fetch_campaigns(None)
    assert len(rsps.calls) == 2


def test_expired_bare_session_is_auth_expired_and_cannot_be_refreshed(
    rsps: responses.RequestsMock, adapter: SalesforceAdapter
) -> None:
    response = example("error-401-invalid-session")["response"]
    rsps.patch(CONTACT_UPSERT, status=response["status"], json=response["body"])
    with pytest.raises(AuthExpired, match="INVALID_SESSION_ID"):
        adapter.upsert_contacts(contacts(1))
    with pytest.raises(Permanent, match="bare Salesforce session id"):
        adapter.refresh_auth()


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (
            400,
            [{"errorCode": "INVALID_FIELD", "message": "No such column 'WhatsApp_Id__c'"}],
            "rejected",
        ),
        (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "try later"}], Transient),
    ],
)
def test_a_failed_composite_subrequest(
    rsps: responses.RequestsMock,
    adapter: SalesforceAdapter,
    status: int,
    body: Any,
    outcome: Any,
) -> None:
    rsps.add_callback(
        responses.POST, COMPOSITE, composite_echo(sub_status={"collection1": (status, body)})
    )
    if outcome != "rejected":
        with pytest.raises(outcome, match="SERVER_UNAVAILABLE"):
            adapter.upsert_contacts(contacts(300))
        return
    result = adapter.upsert_contacts(contacts(300))
    assert len(result.ok) == 200 and len(result.rejected) == 100
    assert result.rejected[0] == Rejected(
        key=contacts(300)[200].key, code="INVALID_FIELD", message="No such column 'WhatsApp_Id__c'"
    )


def test_the_limiter_runs_before_the_request(rsps: responses.RequestsMock) -> None:
    class Refusing:
        def acquire(self, bucket: str, weight: int = 1) -> None:
            raise RateLimited(f"{bucket} is full", retry_after=2)

    adapter = SalesforceAdapter(make_sf(), limiter=Refusing())
    with pytest.raises(RateLimited, match="salesforce:api is full"):
        adapter.log_messages(messages(5))
    assert len(rsps.calls) == 0
