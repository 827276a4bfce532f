"""The one place Salesforce, requests and zeep exceptions become ``crm_adapters.errors`` types.

Messages are built from Salesforce's own ``errorCode``/``message``, never from
``str(SalesforceError)``: that includes the URL (SOQL with phone numbers) and the raw body.
Error codes: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
import zeep.exceptions
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from crm_adapters.errors import AuthExpired, CrmError, Permanent, RateLimited, Transient

# REQUEST_LIMIT_EXCEEDED comes as a 403 without Retry-After. "TotalRequests" means the rolling
# 24 h allocation is spent: it frees up gradually, so waiting an hour is the shortest pause
# that is likely to find headroom. Otherwise it is the cap of 25 concurrent long-running
# requests, which clears as soon as one finishes.
REQUEST_LIMIT_PAUSE = 3600.0
CONCURRENCY_PAUSE = 60.0
TRANSIENT_CODES = frozenset({"SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "QUERY_TIMEOUT"})
VENDOR_ERRORS = (SalesforceError, requests.RequestException, zeep.exceptions.Error)
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.JSONDecodeError,  # a proxy's HTML page instead of JSON
)


def is_vendor_error(exc: Exception) -> bool:
    """True for exceptions raised by Salesforce calls (ours would be bugs, left to surface).

    simple-salesforce's Metadata API wrapper raises a bare ``Exception`` listing each
    component it could not save, so that exact type counts too.
    """
    return isinstance(exc, VENDOR_ERRORS) or type(exc) is Exception


def error_detail(content: Any) -> tuple[str | None, str]:
    """``(errorCode, message)`` from a REST error list, a collections item or an OAuth body."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        code = first.get("errorCode") or first.get("statusCode") or first.get("error")
        message = first.get("message") or first.get("error_description") or ""
        return (str(code) if code else None), str(message).strip()
    if isinstance(content, list):  # 300: the URLs of every record matching the external id
        return "MULTIPLE_RECORDS", f"{len(content)} records match the external id"
    return None, ""


def classify(status: int, content: Any) -> CrmError:
    """The error for an HTTP status and Salesforce error body (also composite subrequests)."""
    code, message = error_detail(content)
    text = f"{code}: {message}" if code else (message or f"HTTP {status}")
    if code == "REQUEST_LIMIT_EXCEEDED":
        pause = REQUEST_LIMIT_PAUSE if "TotalRequests" in message else CONCURRENCY_PAUSE
        return RateLimited(text, retry_after=pause)
    if status == 401 or code == "INVALID_SESSION_ID":
        return AuthExpired(text)
    if status >= 500 or code in TRANSIENT_CODES:
        return Transient(text)
    return Permanent(text)


def translate(exc: Exception) -> CrmError:
    """Classify a vendor exception by what the outbox should do next.

    Args:
        exc: An exception for which ``is_vendor_error`` is true.

    Returns:
        ``RateLimited``, ``AuthExpired``, ``Transient`` or ``Permanent``.
    """
    if type(exc) is Exception:  # simple-salesforce mdapi: components it could not save
        return Permanent("Metadata API refused: " + str(exc).strip().rstrip(","))
    for exc_types, handler in _HANDLERS:
        if isinstance(exc, exc_types):
            return handler(exc)
    return Permanent(f"Salesforce client error: {type(exc).__name__}")


def _login_failed(exc: SalesforceAuthenticationFailed) -> CrmError:
    if isinstance(exc.code, int):  # the token endpoint did not answer JSON
        text = f"Salesforce login failed: HTTP {exc.code}"
        return Transient(text) if exc.code >= 500 else Permanent(text)
    return Permanent(f"Salesforce login failed: {exc.code}: {exc.auth_message}")


def _fault(exc: zeep.exceptions.Fault) -> CrmError:
    # Metadata API SOAP faults: code "sf:INVALID_SESSION_ID", message "INVALID_SESSION_ID: …".
    code = str(exc.code or "").rpartition(":")[2] or None
    return classify(400, [{"errorCode": code, "message": exc.message}])


def _network(exc: Exception) -> CrmError:
    return Transient(f"Salesforce unreachable: {type(exc).__name__}")


# First match wins: SalesforceAuthenticationFailed is a SalesforceError with status 401.
_HANDLERS: tuple[
    tuple[type[Exception] | tuple[type[Exception], ...], Callable[[Any], CrmError]], ...
] = (
    (SalesforceAuthenticationFailed, _login_failed),
    (SalesforceError, lambda e: classify(e.status, e.content)),
    (_NETWORK_ERRORS, _network),
    (zeep.exceptions.Fault, _fault),
    (zeep.exceptions.TransportError, lambda e: classify(e.status_code, None)),
    (requests.RequestException, lambda e: Permanent(f"Salesforce request: {type(e).__name__}")),
)
