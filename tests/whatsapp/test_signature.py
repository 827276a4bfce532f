"""Meta and Twilio webhook signatures."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from whatsapp import (
    InvalidSignature,
    MissingSignature,
    meta_signature,
    twilio_signature,
    verify_meta_signature,
    verify_twilio_signature,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
SECRET = "test-app-secret"
BODY = (FIXTURES / "meta_text.json").read_bytes()

# Worked example from https://www.twilio.com/docs/usage/webhooks/webhooks-security
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://example.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}
TWILIO_EXPECTED = "L/OH5YylLD5NRKLltdqwSvS0BnU="


# --- Meta ---------------------------------------------------------------------------


def test_meta_signature_is_hmac_sha256_hex() -> None:
    header = meta_signature(SECRET, BODY)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    verify_meta_signature(SECRET, BODY, header)


def test_meta_signature_known_value() -> None:
    expected = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert meta_signature("key", b"The quick brown fox jumps over the lazy dog") == expected


@pytest.mark.parametrize("transform", [str.upper, str.lower])
def test_meta_accepts_either_hex_case(transform: Callable[[str], str]) -> None:
    header = meta_signature(SECRET, BODY)
    verify_meta_signature(SECRET, BODY, "sha256=" + transform(header[7:]))


def test_meta_ignores_surrounding_whitespace() -> None:
    verify_meta_signature(SECRET, BODY, f"  {meta_signature(SECRET, BODY)}\n")


@pytest.mark.parametrize("header", [None, "", "   "])
def test_meta_missing_header(header: str | None) -> None:
    with pytest.raises(MissingSignature):
        verify_meta_signature(SECRET, BODY, header)


@pytest.mark.parametrize(
    "header",
    [
        "sha1=" + hashlib.sha1(BODY).hexdigest(),
        meta_signature(SECRET, BODY)[7:],
        "sha256=",
        "sha256=deadbeef",
        "sha256=" + "é" * 64,
        meta_signature("other-secret", BODY),
    ],
)
def test_meta_wrong_prefix_or_mismatch(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_meta_signature(SECRET, BODY, header)


def test_meta_tampered_body_is_rejected() -> None:
    header = meta_signature(SECRET, BODY)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_meta_signature(SECRET, BODY.replace(b"color", b"colour"), header)


def test_meta_signs_raw_bytes_not_reserialised_json() -> None:
    escaped = b'{"text": "\\u00e4\\u00f6\\u00e5"}'
    header = meta_signature(SECRET, escaped)
    verify_meta_signature(SECRET, escaped, header)
    with pytest.raises(InvalidSignature):
        verify_meta_signature(SECRET, '{"text": "äöå"}'.encode(), header)


def test_meta_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="app_secret"):
        verify_meta_signature("", BODY, meta_signature("", BODY))


# --- Twilio -------------------------------------------------------------------------


def test_twilio_worked_vector() -> None:
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_EXPECTED
    verify_twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED)


def test_twilio_parameter_order_does_not_matter() -> None:
    shuffled = dict(reversed(list(TWILIO_PARAMS.items())))
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, shuffled) == TWILIO_EXPECTED


@pytest.mark.parametrize("header", [None, "", "  "])
def test_twilio_missing_header(header: str | None) -> None:
    with pytest.raises(MissingSignature):
        verify_twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, header)


@pytest.mark.parametrize(
    ("url", "params", "header"),
    [
        (TWILIO_URL, {**TWILIO_PARAMS, "Digits": "9999"}, TWILIO_EXPECTED),
        (TWILIO_URL + "&baz=3", TWILIO_PARAMS, TWILIO_EXPECTED),
        (TWILIO_URL.replace("myapp.php", "myapp.php/"), TWILIO_PARAMS, TWILIO_EXPECTED),
        (TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED.lower()),
        (TWILIO_URL, TWILIO_PARAMS, "ü" * 28),
    ],
)
def test_twilio_mismatch(url: str, params: dict[str, str], header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_twilio_signature(TWILIO_TOKEN, url, params, header)


@pytest.mark.parametrize(
    ("signed_url", "checked_url"),
    [
        ("https://example.com:443/hook?x=1", "https://example.com/hook?x=1"),
        ("https://example.com/hook?x=1", "https://example.com:443/hook?x=1"),
        ("http://example.com:80/hook", "http://example.com/hook"),
        ("http://example.com/hook", "http://example.com:80/hook"),
    ],
)
def test_twilio_default_port_is_tried_both_ways(signed_url: str, checked_url: str) -> None:
    header = twilio_signature(TWILIO_TOKEN, signed_url, TWILIO_PARAMS)
    verify_twilio_signature(TWILIO_TOKEN, checked_url, TWILIO_PARAMS, header)


def test_twilio_non_default_port_is_not_dropped() -> None:
    header = twilio_signature(TWILIO_TOKEN, "https://example.com:8443/hook", TWILIO_PARAMS)
    with pytest.raises(InvalidSignature):
        verify_twilio_signature(TWILIO_TOKEN, "https://example.com/hook", TWILIO_PARAMS, header)


def test_twilio_repeated_parameters_sign_each_value_sorted() -> None:
    params = {"MediaUrl": ["b", "a"], "Body": "x"}
    header = twilio_signature(TWILIO_TOKEN, TWILIO_URL, params)
    manual = twilio_signature(TWILIO_TOKEN, TWILIO_URL + "BodyxMediaUrlaMediaUrlb", {})
    assert header == manual
    multi = MultiDict([("MediaUrl", "a"), ("Body", "x"), ("MediaUrl", "b")])
    verify_twilio_signature(TWILIO_TOKEN, TWILIO_URL, multi, header)


def test_twilio_body_sha256_variant() -> None:
    body = b'{"MessageSid": "SM1", "MessageStatus": "sent"}'
    url = f"https://example.com/hook?bodySHA256={hashlib.sha256(body).hexdigest()}"
    header = twilio_signature(TWILIO_TOKEN, url, {})
    verify_twilio_signature(TWILIO_TOKEN, url, {}, header, body=body)
    with pytest.raises(InvalidSignature, match="bodySHA256"):
        verify_twilio_signature(TWILIO_TOKEN, url, {}, header, body=body + b" ")


def test_twilio_empty_token_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="auth_token"):
        verify_twilio_signature("", TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED)
