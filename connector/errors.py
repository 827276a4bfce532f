"""The connector's one error tree, plus the one table from error class to HTTP answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from werkzeug.exceptions import HTTPException

from crm_adapters.errors import AuthExpired, CrmError, Permanent, RateLimited, Transient
from whatsapp.errors import (
    InvalidSignature,
    MalformedPayload,
    MissingSignature,
    SignatureError,
    WhatsAppApiError,
    WhatsAppError,
)

if TYPE_CHECKING:
    from flask import Flask, Response

__all__ = [
    "ApiError",
    "AuthExpired",
    "ConfigError",
    "ConnectorError",
    "CrmError",
    "InvalidSignature",
    "MalformedPayload",
    "MissingSignature",
    "NotFound",
    "PayloadTooLarge",
    "Permanent",
    "RateLimited",
    "SignatureError",
    "Transient",
    "Unauthorized",
    "ValidationFailed",
    "WhatsAppApiError",
    "WhatsAppError",
]

logger = structlog.get_logger("wacrm.errors")
unexpected = structlog.get_logger("wacrm.unexpected")


class ConnectorError(Exception):
    """Base of errors raised by ``connector``; ``details`` is shown to API callers."""

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(ConnectorError):
    """One or more settings are missing or malformed; ``errors`` has one line per setting."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(errors), details=errors)
        self.errors = errors


class Unauthorized(ConnectorError):
    pass


class NotFound(ConnectorError):
    pass


class ValidationFailed(ConnectorError):
    pass


class PayloadTooLarge(ConnectorError):
    pass


class NotConfigured(ConnectorError):
    """A feature was called whose settings are absent (e.g. sending without an access token)."""


class ApiError(ConnectorError):
    """An upstream API refused; ``status`` is the HTTP status we answer with."""

    def __init__(self, message: str, *, code: str, status: int = 502, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.code = code
        self.status = status


# class -> (HTTP status, error code). The first matching class in MRO order wins.
HTTP_ERRORS: dict[type[Exception], tuple[int, str]] = {
    MissingSignature: (401, "missing_signature"),
    InvalidSignature: (401, "invalid_signature"),
    Unauthorized: (401, "unauthorized"),
    MalformedPayload: (400, "malformed_payload"),
    ValidationFailed: (400, "validation_failed"),
    NotFound: (404, "not_found"),
    PayloadTooLarge: (413, "payload_too_large"),
    NotConfigured: (503, "not_configured"),
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _lookup(exc: Exception) -> tuple[int, str] | None:
    for cls in type(exc).__mro__:
        if cls in HTTP_ERRORS:
            return HTTP_ERRORS[cls]
    return None


def to_response(exc: Exception) -> tuple[dict[str, Any], int]:
    """Render any exception as our JSON error shape and status."""
    if isinstance(exc, ApiError):
        return error_body(exc.code, exc.message, exc.details), exc.status
    if isinstance(exc, HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_body(code, exc.description or exc.name), exc.code or 500
    mapped = _lookup(exc)
    if mapped is None:
        unexpected.exception("unhandled_error", error_type=type(exc).__name__)
        return error_body("internal_error", "internal server error"), 500
    status, code = mapped
    details = exc.details if isinstance(exc, ConnectorError) else None
    message = exc.message if isinstance(exc, ConnectorError) else str(exc)
    return error_body(code, message, details), status


def init_app(app: Flask) -> None:
    @app.errorhandler(Exception)
    def _handle(exc: Exception) -> tuple[Response, int]:
        from flask import jsonify

        body, status = to_response(exc)
        return jsonify(body), status
