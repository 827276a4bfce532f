"""Errors raised by the WhatsApp edge: signatures, payloads and the send API."""

from __future__ import annotations


class WhatsAppError(Exception):
    """Base of every error raised by the ``whatsapp`` package."""


class SignatureError(WhatsAppError):
    """The request's signature could not be verified."""


class MissingSignature(SignatureError):
    """The signature header is absent or empty."""


class InvalidSignature(SignatureError):
    """The signature header does not match the body."""


class MalformedPayload(WhatsAppError):
    """The body is not JSON, or not a webhook shape we recognise.

    The message names the JSON path that failed, e.g.
    ``entry[0].changes[1].value.messages[3].from: missing``.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class WhatsAppApiError(WhatsAppError):
    """The Cloud API (or the network to it) refused a send.

    Attributes:
        code: Meta's numeric error code (``error.code``), or ``None`` for network errors.
        http_status: HTTP status of the response, or ``None`` when there was no response.
        message: Meta's ``error.message`` (plus ``error_data.details`` when present).
        fbtrace_id: Meta's trace id, for support requests.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
