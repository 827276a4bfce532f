"""Verify (and, for tests and demos, compute) webhook signatures from Meta and Twilio.

Both checks work on what was received on the wire: Meta signs the raw body bytes (never
a re-serialised dict), Twilio signs the full URL plus the POST parameters.

References:
    https://developers.facebook.com/docs/graph-api/webhooks/getting-started
    https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from whatsapp.errors import InvalidSignature, MissingSignature

META_PREFIX = "sha256="
_DEFAULT_PORTS = {"https": 443, "http": 80}


def meta_signature(app_secret: str, body: bytes) -> str:
    """Compute the ``X-Hub-Signature-256`` header value Meta would send for ``body``.

    Args:
        app_secret: The Meta app secret.
        body: The raw request body.

    Returns:
        ``"sha256=<lowercase hex HMAC-SHA256>"``.
    """
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"{META_PREFIX}{digest}"


def verify_meta_signature(app_secret: str, body: bytes, header: str | None) -> None:
    """Check Meta's ``X-Hub-Signature-256`` header against the raw body.

    Args:
        app_secret: The Meta app secret (must not be empty).
        body: The raw request body, exactly as received.
        header: The ``X-Hub-Signature-256`` header value, or ``None`` when absent.

    Raises:
        ValueError: ``app_secret`` is empty (a configuration bug, not a bad request).
        MissingSignature: The header is absent or empty.
        InvalidSignature: The header does not start with ``sha256=`` or does not match.
    """
    if not app_secret:
        raise ValueError("app_secret must not be empty")
    if header is None or not header.strip():
        raise MissingSignature("X-Hub-Signature-256 header is missing")
    value = header.strip()
    if value[: len(META_PREFIX)].lower() != META_PREFIX:
        raise InvalidSignature("X-Hub-Signature-256 must start with 'sha256='")
    received = value[len(META_PREFIX) :].lower()
    expected = meta_signature(app_secret, body)[len(META_PREFIX) :]
    if not _same(expected, received):
        raise InvalidSignature("X-Hub-Signature-256 does not match the body")


def twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str | list[str]] | None = None
) -> str:
    """Compute the ``X-Twilio-Signature`` header value for a request.

    Args:
        auth_token: The Twilio auth token.
        url: The full request URL, including the query string (and port, if any).
        params: The POST parameters; a list value means a repeated parameter. A
            ``werkzeug`` ``MultiDict`` works too (all values of a name are signed).

    Returns:
        Base64 of HMAC-SHA1 over the URL followed by every name+value, sorted by name
        and, for repeated names, by value.
    """
    signed = url + "".join(f"{name}{value}" for name, value in _sorted_pairs(params or {}))
    mac = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def verify_twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str | list[str]],
    header: str | None,
    *,
    body: bytes | None = None,
) -> None:
    """Check Twilio's ``X-Twilio-Signature`` header.

    The URL is tried as given, then with the default port added or removed, because
    Twilio keeps the port for messaging callbacks (its own libraries do the same).
    For ``application/json`` callbacks Twilio adds ``bodySHA256`` to the query string and
    signs the URL alone: pass the raw ``body`` and that hash is checked as well.

    Args:
        auth_token: The Twilio auth token (must not be empty).
        url: The full public URL Twilio posted to, including the query string.
        params: The form parameters (ignored for the ``bodySHA256`` variant).
        header: The ``X-Twilio-Signature`` header value, or ``None`` when absent.
        body: The raw body, needed only for the ``bodySHA256`` variant.

    Raises:
        ValueError: ``auth_token`` is empty.
        MissingSignature: The header is absent or empty.
        InvalidSignature: The signature (or the body hash) does not match.
    """
    if not auth_token:
        raise ValueError("auth_token must not be empty")
    if header is None or not header.strip():
        raise MissingSignature("X-Twilio-Signature header is missing")
    body_hash = parse_qs(urlsplit(url).query).get("bodySHA256")
    if body_hash and body is not None:
        if not _same(hashlib.sha256(body).hexdigest(), body_hash[0].lower()):
            raise InvalidSignature("bodySHA256 does not match the body")
        params = {}
    received = header.strip()
    for candidate in _url_variants(url):
        if _same(twilio_signature(auth_token, candidate, params), received):
            return
    raise InvalidSignature("X-Twilio-Signature does not match the request")


def _same(expected: str, received: str) -> bool:
    # Compare bytes: compare_digest refuses non-ASCII str, and headers are untrusted.
    return hmac.compare_digest(
        expected.encode("utf-8"), received.encode("utf-8", errors="surrogateescape")
    )


def _sorted_pairs(params: Mapping[str, str | list[str]]) -> Iterable[tuple[str, str]]:
    for name in sorted(set(params)):
        getlist = getattr(params, "getlist", None)
        raw = getlist(name) if callable(getlist) else params[name]
        values = [raw] if isinstance(raw, str) else list(raw)
        # Twilio's helper libraries sign each distinct value once, in sorted order.
        for value in sorted(set(values)):
            yield name, value


def _url_variants(url: str) -> list[str]:
    """The URL as given, then with the scheme's default port added or removed."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None:
        return [url]
    if port is None:
        return [url, parts._replace(netloc=f"{parts.netloc}:{default}").geturl()]
    if port == default:
        host = parts.netloc.rpartition(":")[0]
        return [url, parts._replace(netloc=host).geturl()]
    return [url]
