"""Salesforce test helpers: the fixture examples, fake ids, echoing collection/composite mocks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import requests
import responses
from requests import PreparedRequest
from simple_salesforce.api import Salesforce

from crm_adapters.base import ContactRecord, MessageRecord
from crm_adapters.salesforce import SalesforceAdapter
from tests.conftest import load_fixture

INSTANCE = "https://acme.my.salesforce.com"
BASE = f"{INSTANCE}/services/data/v62.0/"
QUERY_URL = f"{BASE}query/"
METADATA_URL = f"{INSTANCE}/services/Soap/m/62.0/"
SESSION_ID = "00DHs0000000001!x"
CONTACT_UPSERT = f"{BASE}composite/sobjects/Contact/WhatsApp_Id__c"
TASK_UPSERT = f"{BASE}composite/sobjects/Task/WhatsApp_Message_Id__c"
COLLECTIONS = f"{BASE}composite/sobjects"
COMPOSITE = f"{BASE}composite"
AT = datetime(2026, 11, 25, 16, 40, tzinfo=UTC)
MD_NS = "http://soap.sforce.com/2006/04/metadata"

_DOCUMENT = json.loads(load_fixture("salesforce", "salesforce-rest-examples"))
ALL_EXAMPLES: dict[str, dict[str, Any]] = {e["id"]: e for e in _DOCUMENT["examples"]}
METADATA_FIELDS: list[dict[str, Any]] = _DOCUMENT["metadata_custom_fields"]["fields"]

# Every example is either replayed by a test or listed in NOT_REPLAYED with the reason.
REPLAYED = frozenset(
    {
        "oauth-jwt-bearer-token",
        "upsert-contact-by-external-id-created",
        "upsert-contact-by-external-id-updated",
        "upsert-contact-external-id-ambiguous",
        "upsert-contact-bad-external-id-field",
        "collections-create-tasks",
        "collections-upsert-contacts-by-external-id",
        "collections-update-kpis-mixed-types",
        "composite-wrapping-collections",
        "error-401-invalid-session",
        "error-403-request-limit-exceeded",
        "error-400-malformed-query",
        "error-400-invalid-field",
        "error-400-duplicate-external-id",
    }
)
NOT_REPLAYED = {
    "soql-contacts-by-external-id": "contacts are upserted by external id, never looked up",
    "soql-phone-exact-match-pitfall": "the adapter never matches phone strings",
    "sosl-find-in-phone-fields": "the adapter never searches phone fields",
    "campaign-member-create": "the adapter does not write CampaignMember",
    "campaign-member-duplicate": "the adapter does not write CampaignMember",
    "bulk2-ingest-create-job": "Bulk API 2.0 unused: /composite writes 1,000 per call",
    "bulk2-ingest-upload-close-poll": "Bulk API 2.0 unused: /composite writes 1,000 per call",
    "limits-resource": "the adapter reads Sforce-Limit-Info instead of spending a call",
}


def example(example_id: str) -> dict[str, Any]:
    """A fixture example; KeyError unless it is declared in REPLAYED (pywa TESTS table)."""
    if example_id not in REPLAYED:
        raise KeyError(f"{example_id} is not declared in REPLAYED")
    return ALL_EXAMPLES[example_id]


class RecordingLimiter:
    """A CallLimiter that never waits and records every acquire."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def acquire(self, bucket: str, weight: int = 1) -> None:
        self.calls.append((bucket, weight))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_id(prefix: str, key: str) -> str:
    """An 18-character Salesforce-looking id derived from ``key``."""
    return prefix + hashlib.sha1(key.encode()).hexdigest()[:15]


_PREFIXES = {"Contact": "003", "Lead": "00Q", "Task": "00T", "Opportunity": "006"}
_KEY_FIELDS = ("WhatsApp_Id__c", "WhatsApp_Message_Id__c", "Id")


def record_key(record: Mapping[str, Any]) -> str:
    return str(next(record[f] for f in _KEY_FIELDS if f in record))


def body_bytes(request: Any) -> bytes:
    """A sent request body as bytes (requests keeps str or bytes)."""
    body = request.body
    return body.encode() if isinstance(body, str) else bytes(body or b"")


def collection_results(
    records: list[dict[str, Any]], *, created: bool = True, fail: Mapping[str, str] = {}
) -> list[dict[str, Any]]:
    """Collections results in request order; ``fail`` maps a key to an error code."""
    results = []
    for record in records:
        key = record_key(record)
        if key in fail:
            error = {"statusCode": fail[key], "message": f"refused {key}", "fields": []}
            results.append({"success": False, "errors": [error]})
            continue
        record_id = record.get("Id") or fake_id(_PREFIXES[record["attributes"]["type"]], key)
        results.append({"id": record_id, "success": True, "errors": [], "created": created})
    return results


Callback = Callable[[PreparedRequest], tuple[int, dict[str, str], str]]


def collection_echo(**kwargs: Any) -> Callback:
    """A ``responses`` callback answering one collections request."""

    def reply(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        records = json.loads(body_bytes(request) or b"{}")["records"]
        return 200, {}, json.dumps(collection_results(records, **kwargs))

    return reply


def composite_echo(sub_status: Mapping[str, tuple[int, Any]] = {}, **kwargs: Any) -> Callback:
    """A ``/composite`` callback in the fixture's shape; ``sub_status`` overrides one subrequest."""

    def reply(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        subs = []
        for sub in json.loads(body_bytes(request) or b"{}")["compositeRequest"]:
            ref = sub["referenceId"]
            status, body = sub_status.get(ref) or (
                200,
                collection_results(sub["body"]["records"], **kwargs),
            )
            subs.append(
                {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": ref}
            )
        return 200, {}, json.dumps({"compositeResponse": subs})

    return reply


def soql(request: PreparedRequest) -> str:
    """The SOQL statement of a query request."""
    return parse_qs(urlsplit(request.url or "").query)["q"][0]


def query_page(records: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    """A query response page in the documented shape."""
    page: dict[str, Any] = {"totalSize": len(records), "done": next_url is None, "records": records}
    if next_url:
        page["nextRecordsUrl"] = next_url
    return page


def metadata_echo(fail: Mapping[str, tuple[str, str]] = {}) -> Callback:
    """A Metadata API ``createMetadata`` SOAP reply: one SaveResult per component sent."""

    def reply(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        results = []
        for component in sent_components(request):
            name = component["fullName"]
            if name in fail:
                code, message = fail[name]
                results.append(
                    f"<result><errors><message>{message}</message><statusCode>{code}"
                    f"</statusCode></errors><fullName>{name}</fullName>"
                    "<success>false</success></result>"
                )
            else:
                results.append(
                    f"<result><fullName>{name}</fullName><success>true</success></result>"
                )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
            f'"http://schemas.xmlsoap.org/soap/envelope/" xmlns="{MD_NS}"><soapenv:Body>'
            f"<createMetadataResponse>{''.join(results)}</createMetadataResponse>"
            "</soapenv:Body></soapenv:Envelope>"
        )
        return 200, {"Content-Type": "text/xml"}, body

    return reply


def sent_components(request: PreparedRequest) -> list[dict[str, str]]:
    """The ``metadata`` components of a createMetadata request, as tag → text."""
    root = ElementTree.fromstring(body_bytes(request))
    return [
        {child.tag.rpartition("}")[2]: child.text or "" for child in element}
        for element in root.iter(f"{{{MD_NS}}}metadata")
    ]


# -- fixtures: imported by the test modules under their ``name`` --------------------------


@pytest.fixture(name="rsps")
def rsps_fixture() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture(name="limiter")
def limiter_fixture() -> RecordingLimiter:
    return RecordingLimiter()


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="adapter")
def adapter_fixture(limiter: RecordingLimiter, clock: FakeClock) -> SalesforceAdapter:
    return SalesforceAdapter(make_sf(), limiter=limiter, clock=clock)


def make_sf() -> Salesforce:
    """A bare-session client, as a test would inject one."""
    return Salesforce(
        instance_url=INSTANCE, session_id=SESSION_ID, version="62.0", session=requests.Session()
    )


def contacts(count: int) -> list[ContactRecord]:
    return [
        ContactRecord(key=f"49151{i:08d}", wa_id=f"49151{i:08d}", name=f"Person {i}")
        for i in range(count)
    ]


def messages(count: int, **extra: Any) -> list[MessageRecord]:
    return [
        MessageRecord(
            key=f"wamid.{i:04d}",
            contact_crm_id="003Hs00001AbCdEIAV",
            direction="inbound",
            type="text",
            text=f"hello {i}",
            timestamp=AT,
            sender_kind="customer",
            **extra,
        )
        for i in range(count)
    ]


def sent(rsps: responses.RequestsMock, index: int = 0) -> Any:
    """The JSON body of the ``index``-th request."""
    return json.loads(body_bytes(rsps.calls[index].request) or b"null")


def assert_counted(limiter: RecordingLimiter, calls: int) -> None:
    """The limiter saw exactly ``calls`` acquires, all of weight 1 on the API bucket."""
    assert limiter.calls == [("salesforce:api", 1)] * calls
