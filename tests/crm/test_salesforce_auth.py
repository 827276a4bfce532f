"""Salesforce settings and logins from the environment (JWT bearer, client credentials, SOAP)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from crm_adapters.base import NoLimit
from crm_adapters.errors import Permanent
from crm_adapters.salesforce import SalesforceAdapter, SalesforceOptions
from tests.crm.sf_helpers import (
    INSTANCE,
    QUERY_URL,
    RecordingLimiter,
    assert_counted,
    body_bytes,
    example,
    query_page,
)

# The shared fixtures, registered here under their names (rsps, limiter, clock, adapter).
from tests.crm.sf_helpers import adapter_fixture as adapter_fixture
from tests.crm.sf_helpers import clock_fixture as clock_fixture
from tests.crm.sf_helpers import limiter_fixture as limiter_fixture
from tests.crm.sf_helpers import rsps_fixture as rsps_fixture

# -- auth -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _jwt_env(key: rsa.RSAPrivateKey, **extra: str) -> dict[str, str]:
    return {
        "SALESFORCE_USERNAME": "integration@acme.example",
        "SALESFORCE_CONSUMER_KEY": "3MVG9-consumer-key",
        "SALESFORCE_PRIVATE_KEY": _pem(key),
        **extra,
    }


def _token_response(rsps: responses.RequestsMock, url: str, **changes: str) -> None:
    body = {**example("oauth-jwt-bearer-token")["response"]["body"], **changes}
    rsps.post(url, json=body)


@pytest.mark.parametrize(
    ("env", "login_host"),
    [
        ({}, "https://login.salesforce.com"),
        ({"SALESFORCE_DOMAIN": "test"}, "https://test.salesforce.com"),
        ({"SALESFORCE_DOMAIN": "acme.my"}, "https://acme.my.salesforce.com"),
        (
            {
                "WACRM_SALESFORCE_LOGIN_URL": "https://acme--uat.sandbox.my.salesforce.com",
                "SALESFORCE_DOMAIN": "ignored",
            },
            "https://acme--uat.sandbox.my.salesforce.com",
        ),
    ],
)
def test_jwt_bearer_login_from_env(
    rsps: responses.RequestsMock,
    limiter: RecordingLimiter,
    rsa_key: rsa.RSAPrivateKey,
    env: dict[str, str],
    login_host: str,
) -> None:
    _token_response(rsps, f"{login_host}/services/oauth2/token")
    rsps.get(QUERY_URL, json=query_page([]))
    adapter = SalesforceAdapter.from_env(_jwt_env(rsa_key, **env), limiter=limiter)
    adapter.fetch_campaigns(None)
    form = parse_qs(body_bytes(rsps.calls[0].request).decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(
        form["assertion"][0],
        rsa_key.public_key(),
        algorithms=["RS256"],
        audience=login_host,
        options={"verify_exp": False},
    )
    assert (claims["iss"], claims["sub"]) == ("3MVG9-consumer-key", "integration@acme.example")
    query = rsps.calls[1].request
    assert query.url and query.url.startswith(QUERY_URL)
    assert query.headers["Authorization"] == "Bearer 00DHs0000000001!AQ0AQ.example"
    assert_counted(limiter, 1)  # the token request is not a counted call


def test_jwt_sessions_are_renewed(
    rsps: responses.RequestsMock, limiter: RecordingLimiter, rsa_key: rsa.RSAPrivateKey
) -> None:
    token_url = "https://login.salesforce.com/services/oauth2/token"
    _token_response(rsps, token_url)
    _token_response(rsps, token_url, access_token="00DHs0000000001!second")
    _token_response(rsps, token_url, access_token="00DHs0000000001!third")
    expired = example("error-401-invalid-session")["response"]
    rsps.get(QUERY_URL, status=expired["status"], json=expired["body"])
    rsps.get(QUERY_URL, json=query_page([]))
    adapter = SalesforceAdapter.from_env(_jwt_env(rsa_key), limiter=limiter)
    adapter.fetch_campaigns(None)  # simple-salesforce re-signs a JWT on INVALID_SESSION_ID
    adapter.refresh_auth()
    adapter.fetch_campaigns(None)
    auth = [c.request.headers.get("Authorization") for c in rsps.calls]
    assert auth == [
        None,
        "Bearer 00DHs0000000001!AQ0AQ.example",  # login, then 401 INVALID_SESSION_ID
        None,
        "Bearer 00DHs0000000001!second",  # simple-salesforce's re-login and retry
        None,
        "Bearer 00DHs0000000001!third",  # refresh_auth()
    ]
    assert_counted(limiter, 2)


def test_instance_url_override_pins_rest_calls(
    rsps: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey
) -> None:
    sandbox = "https://acme--uat.sandbox.my.salesforce.com"
    _token_response(rsps, "https://login.salesforce.com/services/oauth2/token")
    rsps.get(f"{sandbox}/services/data/v61.0/query/", json=query_page([]))
    env = _jwt_env(rsa_key, WACRM_SALESFORCE_INSTANCE_URL=sandbox, SALESFORCE_API_VERSION="61.0")
    SalesforceAdapter.from_env(env, limiter=NoLimit()).fetch_campaigns(None)


def test_client_credentials_login(rsps: responses.RequestsMock) -> None:
    _token_response(rsps, "https://acme.my.salesforce.com/services/oauth2/token")
    env = {
        "SALESFORCE_CONSUMER_KEY": "key",
        "SALESFORCE_CONSUMER_SECRET": "secret",
        "SALESFORCE_DOMAIN": "acme.my",
    }
    adapter = SalesforceAdapter.from_env(env, limiter=NoLimit())
    token = rsps.calls[0].request
    assert parse_qs(body_bytes(token).decode())["grant_type"] == ["client_credentials"]
    assert token.headers["Authorization"] == "Basic " + base64.b64encode(b"key:secret").decode()
    assert adapter.sf.session_id == "00DHs0000000001!AQ0AQ.example"
    assert "secret" not in repr(adapter._auth)


def test_soap_login_works_but_warns(rsps: responses.RequestsMock) -> None:
    rsps.post(
        "https://login.salesforce.com/services/Soap/u/62.0",
        body=(
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>{INSTANCE}/services/Soap/u/62.0/00DHs0000000001</serverUrl>"
            "<sessionId>00DHs0000000001!soap</sessionId></result></loginResponse>"
            "</soapenv:Body></soapenv:Envelope>"
        ),
    )
    env = {
        "SALESFORCE_USERNAME": "u@acme.example",
        "SALESFORCE_PASSWORD": "pw",
        "SALESFORCE_SECURITY_TOKEN": "tok",
    }
    with capture_logs() as logs:
        adapter = SalesforceAdapter.from_env(env, limiter=NoLimit())
    assert adapter.sf.session_id == "00DHs0000000001!soap"
    assert [(e["event"], e["log_level"]) for e in logs] == [("salesforce.soap_login", "warning")]
    assert "retiring" in logs[0]["detail"]


def test_refused_login_is_permanent(rsps: responses.RequestsMock) -> None:
    rsps.post(
        "https://acme.my.salesforce.com/services/oauth2/token",
        status=400,
        json={"error": "invalid_client", "error_description": "invalid client credentials"},
    )
    env = {
        "SALESFORCE_CONSUMER_KEY": "key",
        "SALESFORCE_CONSUMER_SECRET": "wrong",
        "SALESFORCE_DOMAIN": "acme.my",
    }
    with pytest.raises(Permanent, match="invalid_client: invalid client credentials"):
        SalesforceAdapter.from_env(env, limiter=NoLimit())


def test_access_token_from_env_cannot_be_refreshed(rsps: responses.RequestsMock) -> None:
    env = {"SALESFORCE_ACCESS_TOKEN": "00D!tok", "WACRM_SALESFORCE_INSTANCE_URL": INSTANCE}
    adapter = SalesforceAdapter.from_env(env, limiter=NoLimit())
    assert adapter.sf.session_id == "00D!tok"
    with pytest.raises(Permanent, match="cannot be refreshed"):
        adapter.refresh_auth()


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(ValueError, match="SALESFORCE_CONSUMER_KEY") as info:
        SalesforceAdapter.from_env({"SALESFORCE_USERNAME": "u"}, limiter=NoLimit())
    for name in ("SALESFORCE_PRIVATE_KEY", "SALESFORCE_CONSUMER_SECRET", "SALESFORCE_PASSWORD"):
        assert name in str(info.value)


def test_every_bad_setting_is_reported_at_once() -> None:
    env = {
        "SALESFORCE_CONSUMER_KEY": "k",
        "SALESFORCE_CONSUMER_SECRET": "s",
        "SALESFORCE_CONTACT_OBJECT": "Account",
        "SALESFORCE_DAILY_SHARE": "1.5",
        "SALESFORCE_TASK_UPSERT": "maybe",
        "SALESFORCE_MESSAGE_ID_FIELD": "Id) OR (Id",
        "SALESFORCE_API_VERSION": "latest",
        "WACRM_SALESFORCE_LOGIN_URL": "http://localhost:8080",
    }
    with pytest.raises(ValueError) as info:
        SalesforceAdapter.from_env(env, limiter=NoLimit())
    assert [line.split(":")[0] for line in str(info.value).splitlines()] == [
        "SALESFORCE_CONTACT_OBJECT",
        "SALESFORCE_TASK_UPSERT",
        "SALESFORCE_DAILY_SHARE",
        "SALESFORCE_MESSAGE_ID_FIELD",
        "SALESFORCE_API_VERSION",
        "WACRM_SALESFORCE_LOGIN_URL",
    ]


def test_options_from_env(rsps: responses.RequestsMock) -> None:
    env = {
        "SALESFORCE_ACCESS_TOKEN": "00D!tok",
        "WACRM_SALESFORCE_INSTANCE_URL": INSTANCE,
        "SALESFORCE_CONTACT_OBJECT": "Lead",
        "SALESFORCE_CONTACT_ID_FIELD": "WA__c",
        "SALESFORCE_MESSAGE_ID_FIELD": "WAM__c",
        "SALESFORCE_TASK_UPSERT": "0",
        "SALESFORCE_DAILY_SHARE": "0.5",
    }
    adapter = SalesforceAdapter.from_env(env, limiter=NoLimit())
    assert adapter.options == SalesforceOptions(
        contact_object="Lead",
        contact_id_field="WA__c",
        message_id_field="WAM__c",
        task_upsert=False,
        daily_share=0.5,
    )
