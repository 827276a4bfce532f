"""Outbound messages: ``POST /api/v1/messages`` sends (or records with ``"send": false``)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from connector import outbound
from connector.api import bp
from connector.api.conversations import message_view
from connector.api.params import json_body, parse_time
from connector.db import get_db
from connector.errors import ValidationFailed
from connector.models import Message, utcnow
from connector.settings_ext import settings_of


@bp.post("/messages")
def post_message() -> tuple[dict[str, Any], int]:
    """Send text or a template; with ``send: false`` + ``wamid`` log a message sent elsewhere."""
    body = json_body()
    req = outbound.Outbound.from_json(body)
    db, settings = get_db(current_app), settings_of()
    if body.get("send", True) is False:
        wamid = body.get("wamid")
        if not isinstance(wamid, str) or not wamid:
            raise ValidationFailed("wamid: required when send is false")
        at = parse_time("timestamp", body.get("timestamp")) or utcnow()
        number = str(body.get("business_number_id") or settings.phone_number_id or "default")
        row_id = outbound.record(
            db, settings, req, wamid=wamid, wa_id=req.to, business_number_id=number, at=at
        )
    else:
        row_id = outbound.send(db, settings, req)
    with db.session() as session:
        row = session.get(Message, row_id)
        assert row is not None
        return {**message_view(row), "conversation_id": row.conversation_id}, 201
