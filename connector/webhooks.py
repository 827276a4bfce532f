"""Webhook endpoints: verify → commit the raw inbox row → enqueue → acknowledge."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import structlog
from flask import Blueprint, Response, current_app, request

from connector import inbox, metrics
from connector.db import get_db
from connector.errors import MalformedPayload, NotConfigured, PayloadTooLarge, SignatureError
from connector.models import EventStatus
from connector.queue import get_queue
from connector.settings_ext import settings_of
from whatsapp import verify_meta_signature, verify_twilio_signature

bp = Blueprint("webhooks", __name__)
logger = structlog.get_logger("wacrm.webhooks")
rejected = structlog.get_logger("wacrm.anomalous")


@bp.get("/webhooks/whatsapp")
def verify_subscription() -> tuple[str, int, dict[str, str]]:
    """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
    expected = settings_of().verify_token.get_secret_value()
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge")
    if (
        request.args.get("hub.mode") == "subscribe"
        and challenge is not None
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return challenge, 200, {"Content-Type": "text/plain"}
    logger.warning("verify_token_refused", mode=request.args.get("hub.mode"))
    return "forbidden", 403, {"Content-Type": "text/plain"}


@bp.post("/webhooks/whatsapp")
def receive_meta() -> tuple[dict[str, Any], int]:
    """Cloud API notifications (messages, statuses, preferences, account events)."""
    started = time.perf_counter()
    body = _body("meta")
    _check(
        "meta",
        lambda: verify_meta_signature(
            settings_of().app_secret.get_secret_value(),
            body,
            request.headers.get("X-Hub-Signature-256"),
        ),
    )
    _reject_unless("meta", body, _meta_shape_error(body))
    event_id = _accept("meta", body)
    metrics.ACK_SECONDS.labels("meta").observe(time.perf_counter() - started)
    return {"status": "accepted", "event_id": event_id}, 200


@bp.post("/webhooks/twilio")
def receive_twilio() -> Response:
    """Twilio WhatsApp inbound messages and status callbacks (form-encoded)."""
    token = settings_of().twilio_auth_token
    if token is None:
        raise NotConfigured("TWILIO_AUTH_TOKEN is not set: the Twilio webhook is disabled")
    body = _body("twilio")
    params = request.form.to_dict(flat=False)
    _check(
        "twilio",
        lambda: verify_twilio_signature(
            token.get_secret_value(),
            _public_url(),
            params,
            request.headers.get("X-Twilio-Signature"),
        ),
    )
    has_sid = any(k in params for k in ("MessageSid", "SmsSid", "SmsMessageSid"))
    _reject_unless("twilio", body, None if has_sid else "not a Twilio message or status callback")
    _accept("twilio", body)
    return Response("<Response/>", 200, content_type="text/xml")


def _body(provider: str) -> bytes:
    limit = settings_of().max_body_bytes
    if (request.content_length or 0) > limit:
        metrics.WEBHOOKS.labels(provider, "too_large").inc()
        raise PayloadTooLarge(f"body over {limit} bytes", details={"limit": limit})
    body = request.stream.read(limit + 1) if request.content_length is None else request.get_data()
    if len(body) > limit:
        metrics.WEBHOOKS.labels(provider, "too_large").inc()
        raise PayloadTooLarge(f"body over {limit} bytes", details={"limit": limit})
    return body


def _check(provider: str, verify: Any) -> None:
    try:
        verify()
    except SignatureError as exc:
        metrics.WEBHOOKS.labels(provider, "bad_signature").inc()
        logger.warning(
            "signature_refused",
            provider=provider,
            reason=type(exc).__name__,
            remote=request.remote_addr,
            length=request.content_length,
        )
        raise


def _meta_shape_error(body: bytes) -> str | None:
    """The envelope check we can afford before the ack; items are parsed by the worker."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        return f"body is not JSON: {exc}"
    if not isinstance(doc, dict) or doc.get("object") != "whatsapp_business_account":
        return "object: expected 'whatsapp_business_account'"
    if not isinstance(doc.get("entry"), list):
        return "entry: expected a list"
    return None


def _store(provider: str, body: bytes, **outcome: Any) -> int:
    return inbox.store(
        get_db(current_app),
        provider=provider,
        body=body,
        headers=request.headers,
        signature_valid=True,
        **outcome,
    )


def _reject_unless(provider: str, body: bytes, problem: str | None) -> None:
    if problem is None:
        return
    event_id = _store(provider, body, status=EventStatus.REJECTED, error=problem)
    metrics.WEBHOOKS.labels(provider, "rejected").inc()
    rejected.warning("payload_rejected", provider=provider, event_id=event_id, reason=problem)
    raise MalformedPayload(problem, path="body")


def _accept(provider: str, body: bytes) -> int:
    event_id = _store(provider, body)
    try:
        get_queue(current_app).enqueue_event(event_id)
    except Exception:  # the row is committed: the sweep will enqueue it later
        logger.exception("enqueue_failed", event_id=event_id)
    metrics.WEBHOOKS.labels(provider, "accepted").inc()
    return event_id


def _public_url() -> str:
    """The URL Twilio signed: the configured public base (behind proxies) or the request URL."""
    base = settings_of().public_url
    if not base:
        return request.url
    query = request.query_string.decode()
    return base.rstrip("/") + request.path + (f"?{query}" if query else "")
