"""Send messages through the WhatsApp Cloud API (``POST /{phone_number_id}/messages``).

The access token is only ever placed in the ``Authorization`` header: it is kept out of
``repr``, exception messages and logs, and network exceptions are not chained (their
request objects carry the header).

Reference: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
import structlog

from whatsapp._values import as_obj, opt_int, opt_str
from whatsapp.errors import WhatsAppApiError

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """What the Cloud API answered to an accepted send.

    Attributes:
        wamid: The new message's id (``messages[0].id``); statuses refer to it.
        wa_id: The recipient's WhatsApp id (``contacts[0].wa_id``, else the ``to`` given).
        raw: The whole JSON response.
    """

    wamid: str
    wa_id: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class WhatsAppClient:
    """A small Cloud API client for sending text, template and interactive messages.

    Args:
        base_url: The Graph API root, e.g. ``https://graph.facebook.com``.
        access_token: A system-user or app access token (kept secret).
        phone_number_id: The business phone number id that sends.
        api_version: Graph API version path segment.
        timeout: Seconds to wait for connect and for each read.
        session: A ``requests.Session`` to reuse (a new one is created otherwise).
    """

    def __init__(
        self,
        base_url: str,
        access_token: str,
        phone_number_id: str,
        *,
        api_version: str = "v23.0",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        if not access_token:
            raise ValueError("access_token must not be empty")
        self.url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.timeout = timeout
        self._token = access_token
        self._session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"WhatsAppClient(url={self.url!r})"

    def send(self, to: str, payload: dict[str, Any]) -> SendResult:
        """Send a raw Cloud API message object.

        Args:
            to: Recipient phone number / wa_id.
            payload: The type-specific part, e.g. ``{"type": "text", "text": {...}}``;
                it may override ``recipient_type``.

        Returns:
            The new message's wamid and the recipient's wa_id.

        Raises:
            WhatsAppApiError: Network failure, a non-2xx answer, or no message id.
        """
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        body["to"] = to
        response = self._post(body)
        result = self._result(response, to)
        logger.info("whatsapp.sent", wamid=result.wamid, type=payload.get("type"))
        return result

    def send_text(
        self, to: str, text: str, *, reply_to: str | None = None, preview_url: bool = False
    ) -> SendResult:
        """Send a free-form text message (only inside the 24-hour customer window).

        Args:
            to: Recipient phone number / wa_id.
            text: The message body (up to 4096 characters).
            reply_to: A wamid to quote as the replied-to message.
            preview_url: Whether WhatsApp should render a link preview.

        Returns:
            The new message's wamid and the recipient's wa_id.

        Raises:
            WhatsAppApiError: See :meth:`send`.
        """
        payload: dict[str, Any] = {
            "type": "text",
            "text": {"preview_url": preview_url, "body": text},
        }
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return self.send(to, payload)

    def send_template(
        self,
        to: str,
        name: str,
        language: str,
        components: list[dict[str, Any]] | None = None,
    ) -> SendResult:
        """Send an approved message template.

        Args:
            to: Recipient phone number / wa_id.
            name: The template name.
            language: The template language code, e.g. ``"en_US"``.
            components: Header/body/button parameters, as in Meta's docs.

        Returns:
            The new message's wamid and the recipient's wa_id.

        Raises:
            WhatsAppApiError: See :meth:`send`.
        """
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components is not None:
            template["components"] = components
        return self.send(to, {"type": "template", "template": template})

    def send_interactive(self, to: str, interactive: dict[str, Any]) -> SendResult:
        """Send an interactive message (reply buttons, list, CTA URL, flow...).

        Args:
            to: Recipient phone number / wa_id.
            interactive: The ``interactive`` object, as in Meta's docs.

        Returns:
            The new message's wamid and the recipient's wa_id.

        Raises:
            WhatsAppApiError: See :meth:`send`.
        """
        return self.send(to, {"type": "interactive", "interactive": interactive})

    def _post(self, body: dict[str, Any]) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        try:
            return self._session.post(self.url, json=body, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            message = f"Cloud API request timed out after {self.timeout}s"
        except requests.RequestException as exc:
            message = f"Cloud API request failed: {type(exc).__name__}"
        logger.warning("whatsapp.send_failed", reason=message)
        # Not chained: the requests exception holds the request and its auth header.
        raise WhatsAppApiError(message) from None

    def _result(self, response: requests.Response, to: str) -> SendResult:
        payload = _json(response)
        if not 200 <= response.status_code < 300:
            raise self._api_error(response.status_code, payload)
        messages = payload.get("messages")
        first = as_obj(messages[0]) if isinstance(messages, list) and messages else {}
        wamid = opt_str(first, "id")
        if wamid is None:
            logger.warning("whatsapp.send_failed", reason="no message id")
            raise WhatsAppApiError(
                "Cloud API response has no messages[0].id", http_status=response.status_code
            )
        contacts = payload.get("contacts")
        contact = as_obj(contacts[0]) if isinstance(contacts, list) and contacts else {}
        return SendResult(wamid=wamid, wa_id=opt_str(contact, "wa_id") or to, raw=payload)

    def _api_error(self, http_status: int, payload: dict[str, Any]) -> WhatsAppApiError:
        error = as_obj(payload.get("error"))
        message = opt_str(error, "message") or f"Cloud API returned HTTP {http_status}"
        details = opt_str(as_obj(error.get("error_data")), "details")
        if details:
            message = f"{message} \N{EM DASH} {details}"
        code, subcode = opt_int(error.get("code")), opt_int(error.get("error_subcode"))
        logger.warning("whatsapp.send_failed", http_status=http_status, code=code, subcode=subcode)
        return WhatsAppApiError(
            message.replace(self._token, "[redacted]"),
            code=code,
            http_status=http_status,
            subcode=subcode,
            fbtrace_id=opt_str(error, "fbtrace_id"),
        )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
