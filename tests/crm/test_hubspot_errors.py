"""HubSpot failures become the error type that names the outbox's next action; OAuth refresh."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import hubspot
import pytest
from pytest_httpserver import HTTPServer

from crm_adapters.base import ContactRecord, FieldWrite, MessageRecord
from crm_adapters.errors import AuthExpired, CrmError, Permanent, RateLimited, Transient
from crm_adapters.hubspot import HubSpotAdapter, HubSpotSettings
from tests.crm.hubspot_stub import (
    TOKEN,
    Call,
    HubSpotStub,
    RecordingLimiter,
    batch,
    example,
    example_reply,
    expected_buckets,
    make_adapter,
    record,
)

COMMS_CREATE = "/crm/v3/objects/communications/batch/create"
TOKEN_PATH = "/oauth/v1/token"
MESSAGE = MessageRecord(
    key="wamid-1",
    contact_crm_id="51",
    direction="inbound",
    type="text",
    text="hola",
    timestamp=datetime(2026, 11, 25, 16, 40, tzinfo=UTC),
    sender_kind="customer",
)


@pytest.fixture
def stub(httpserver: HTTPServer) -> HubSpotStub:
    return HubSpotStub(httpserver)


@pytest.fixture
def limiter() -> RecordingLimiter:
    return RecordingLimiter()


def created(call: Call) -> tuple[int, Any]:
    results = [
        {**record("77001"), "objectWriteTraceId": i["objectWriteTraceId"]} for i in call.inputs
    ]
    return 201, batch(results)


# Each kind: the path whose answer is forced, and the adapter call that reaches it.
CALLS: dict[str, tuple[str, Callable[[HubSpotAdapter], object]]] = {
    "messages": (COMMS_CREATE, lambda a: a.log_messages([MESSAGE])),
    "contacts": (
        "/crm/v3/objects/contacts/batch/upsert",
        lambda a: a.upsert_contacts([ContactRecord(key="bsuid:US.1", wa_id=None)]),
    ),
    "search": (
        "/crm/v3/objects/contacts/search",
        lambda a: a.upsert_contacts([ContactRecord(key="4915112345678", wa_id="4915112345678")]),
    ),
    "deal_fields": (
        "/crm/v3/objects/deals/batch/update",
        lambda a: a.write_fields("deal", [FieldWrite(crm_id="9001", values={"x": 1})]),
    ),
    "campaign_fields": (
        "/marketing/v3/campaigns/batch/update",
        lambda a: a.write_fields("campaign", [FieldWrite(crm_id="guid", values={"x": 1})]),
    ),
}


def seconds_to_midnight_utc() -> float:
    now = datetime.now(UTC)
    return (
        (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0) - now
    ).total_seconds()


def error_body(message: str, category: str) -> dict[str, str]:
    return {"status": "error", "message": message, "correlationId": "c0ffee", "category": category}


VALIDATION = example("error-400-validation")["response"]["body"]["message"]

ERROR_CASES = [
    pytest.param(
        "messages",
        example_reply("error-429-ten-secondly", **{"Retry-After": "7"}),
        RateLimited,
        "ten_secondly_rolling limit",
        7.0,
        id="429-retry-after-header",
    ),
    pytest.param(
        "messages",
        example_reply("error-429-ten-secondly"),
        RateLimited,
        "ten_secondly_rolling limit",
        10.0,
        id="429-ten-secondly",
    ),
    pytest.param(
        "contacts",
        example_reply("error-429-daily"),
        RateLimited,
        "daily limit",
        "midnight",
        id="429-daily",
    ),
    pytest.param(
        "search",
        example_reply("error-429-search-secondly"),
        RateLimited,
        "secondly limit",
        1.0,
        id="429-search-secondly",
    ),
    pytest.param(
        "messages",
        example_reply("error-401-expired-oauth"),
        AuthExpired,
        "expired 75 second",
        None,
        id="401-expired",
    ),
    pytest.param(
        "messages",
        example_reply("error-401-invalid-token"),
        AuthExpired,
        "credentials not found",
        None,
        id="401-invalid",
    ),
    pytest.param(
        "deal_fields",
        example_reply("error-403-missing-scopes"),
        Permanent,
        "MISSING_SCOPES: This app hasn't been granted",
        None,
        id="403-scopes",
    ),
    pytest.param(
        "contacts",
        example_reply("error-400-validation"),
        Permanent,
        re.escape(VALIDATION),
        None,
        id="400-validation",
    ),
    pytest.param(
        "campaign_fields",
        (400, error_body("Invalid campaign id", "VALIDATION_ERROR")),
        Permanent,
        "400 VALIDATION_ERROR: Invalid campaign id",
        None,
        id="400-campaigns",
    ),
    pytest.param(
        "messages",
        (423, error_body("Record is locked", "LOCKED")),
        Transient,
        r"Record is locked .*>= 2 s",
        None,
        id="423-locked",
    ),
    pytest.param(
        "messages",
        (477, error_body("Migration in progress", "MIGRATION"), {"Retry-After": "30"}),
        Transient,
        ">= 30 s",
        None,
        id="477-migration",
    ),
    *[
        pytest.param(
            "messages",
            (status, error_body("Upstream trouble", "INTERNAL_ERROR")),
            Transient,
            f"HubSpot {status}",
            None,
            id=f"{status}",
        )
        for status in (500, 502, 503, 504, 524)
    ],
    pytest.param(
        "campaign_fields",
        (503, "<html>Service Unavailable</html>"),
        Transient,
        "HubSpot 503",
        None,
        id="503-campaigns-html",
    ),
]


@pytest.mark.parametrize(("kind", "reply", "error", "match", "retry_after"), ERROR_CASES)
def test_status_is_translated(
    stub: HubSpotStub,
    limiter: RecordingLimiter,
    kind: str,
    reply: Any,
    error: type[CrmError],
    match: str,
    retry_after: float | str | None,
) -> None:
    path, call = CALLS[kind]
    for route in ("/crm/v3/objects/contacts/batch/read", "/crm/v3/objects/contacts/search"):
        stub.reply(
            "POST", route, (200, batch([])) if route.endswith("read") else (200, {"results": []})
        )
    stub.reply("POST", path, reply)
    adapter = make_adapter(stub, limiter)

    with pytest.raises(error, match=match) as caught:
        call(adapter)

    if retry_after == "midnight":
        assert isinstance(caught.value, RateLimited)
        assert caught.value.retry_after == pytest.approx(seconds_to_midnight_utc(), abs=5)
    elif retry_after is not None:
        assert isinstance(caught.value, RateLimited)
        assert caught.value.retry_after == retry_after
    text = str(caught.value)
    assert TOKEN not in text and stub.url not in text and "localhost" not in text
    assert caught.value.__cause__ is None  # the SDK exception (headers, body) is not chained
    assert limiter.buckets == expected_buckets(stub)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["messages", "campaign_fields"])
def test_connection_refused_is_transient(kind: str) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    client = hubspot.Client.create(access_token=TOKEN, host=base)
    adapter = HubSpotAdapter(client, settings=HubSpotSettings(access_token=TOKEN, base_url=base))

    with pytest.raises(Transient, match="HubSpot unreachable") as caught:
        CALLS[kind][1](adapter)
    assert base not in str(caught.value) and TOKEN not in str(caught.value)


# --- OAuth ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def oauth_adapter(stub: HubSpotStub, limiter: RecordingLimiter, clock: FakeClock) -> HubSpotAdapter:
    env = {
        "HUBSPOT_CLIENT_ID": "cid",
        "HUBSPOT_CLIENT_SECRET": "shh",
        "HUBSPOT_REFRESH_TOKEN": "rt-1",
    }
    settings = HubSpotSettings.from_env(env | {"WACRM_HUBSPOT_BASE_URL": stub.url})
    return HubSpotAdapter(stub.client(token=None), settings=settings, limiter=limiter, clock=clock)


def serve_tokens(stub: HubSpotStub) -> None:
    minted = iter(f"at-{n}" for n in range(1, 10))
    body = {"refresh_token": "rt-1", "expires_in": 1800, "token_type": "bearer"}
    stub.on("POST", TOKEN_PATH, lambda _: (200, {"access_token": next(minted), **body}))


def bearer_of_last_call(stub: HubSpotStub) -> str:
    return stub.to(COMMS_CREATE)[-1].headers["Authorization"]


def test_oauth_token_is_minted_then_refreshed_ahead_of_expiry(
    stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    serve_tokens(stub)
    stub.on("POST", COMMS_CREATE, created)
    clock = FakeClock()
    adapter = oauth_adapter(stub, limiter, clock)

    adapter.log_messages([MESSAGE])
    (token_call,) = stub.to(TOKEN_PATH)
    assert token_call.form == {
        "grant_type": "refresh_token",
        "client_id": "cid",
        "client_secret": "shh",
        "refresh_token": "rt-1",
    }
    assert token_call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert bearer_of_last_call(stub) == "Bearer at-1"

    clock.now += 1800 - 300 - 1  # still inside the token's life minus the 5-minute margin
    adapter.log_messages([MESSAGE])
    assert len(stub.to(TOKEN_PATH)) == 1

    clock.now += 1  # 5 minutes before expires_in runs out: refreshed before the call
    adapter.log_messages([MESSAGE])
    assert len(stub.to(TOKEN_PATH)) == 2
    assert bearer_of_last_call(stub) == "Bearer at-2"
    assert limiter.buckets == expected_buckets(stub)


def test_auth_expired_then_refresh_auth_then_retry_succeeds(
    stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    serve_tokens(stub)
    ok = (201, batch([{**record("77001"), "objectWriteTraceId": "wamid-1"}]))
    stub.reply("POST", COMMS_CREATE, example_reply("error-401-expired-oauth"), ok)
    adapter = oauth_adapter(stub, limiter, FakeClock())

    with pytest.raises(AuthExpired):
        adapter.log_messages([MESSAGE])
    adapter.refresh_auth()  # what the outbox does once after AuthExpired
    result = adapter.log_messages([MESSAGE])

    assert result.ok == {"wamid-1": "77001"}
    assert [c.headers["Authorization"] for c in stub.to(COMMS_CREATE)] == [
        "Bearer at-1",
        "Bearer at-2",
    ]


def test_refused_refresh_token_is_permanent(stub: HubSpotStub, limiter: RecordingLimiter) -> None:
    body = {
        "status": "BAD_REFRESH_TOKEN",
        "message": "missing or unknown refresh token",
        "correlationId": "c0ffee",
    }
    stub.reply("POST", TOKEN_PATH, (400, body))
    adapter = oauth_adapter(stub, limiter, FakeClock())

    with pytest.raises(Permanent, match="missing or unknown refresh token") as caught:
        adapter.refresh_auth()
    assert "shh" not in str(caught.value) and "rt-1" not in str(caught.value)


def test_private_app_token_cannot_be_refreshed(
    stub: HubSpotStub, limiter: RecordingLimiter
) -> None:
    with pytest.raises(Permanent, match="cannot be refreshed"):
        make_adapter(stub, limiter).refresh_auth()
    assert stub.calls == []


# --- logging ----------------------------------------------------------------------------------


def test_sdk_debug_logging_of_bodies_is_capped(
    stub: HubSpotStub, limiter: RecordingLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    stub.on("POST", COMMS_CREATE, created)
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter(stub, limiter)

    adapter.log_messages([MESSAGE])

    assert logging.getLogger("hubspot").getEffectiveLevel() >= logging.INFO
    assert not [r for r in caplog.records if r.name.startswith("hubspot")]
    assert "hola" not in caplog.text
