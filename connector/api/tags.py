"""Explicit deal and campaign tags on a conversation (DESIGN §4 Attribution)."""

from __future__ import annotations

from typing import Any, Final

from flask import current_app

from connector import attribution
from connector.api import bp
from connector.api.conversations import conversation_summary
from connector.api.params import FieldErrors, json_body
from connector.attribution import Keep
from connector.db import get_db
from connector.errors import NotFound
from connector.models import Conversation
from connector.settings_ext import settings_of

TAGS: Final = ("deal_id", "campaign_id")
SOURCES: Final = ("api", "crm")


def _key(body: dict[str, Any], name: str, errors: FieldErrors) -> str | Keep | None:
    if name not in body:
        return attribution.KEEP
    value = body[name]
    if value is None:
        return None
    text = str(value).strip() if isinstance(value, str | int) else ""
    if isinstance(value, bool) or not text:
        errors[name] = "expected a key (string) or null"
    elif len(text) > 128:
        errors[name] = "at most 128 characters"
    return text


def _parse(body: dict[str, Any]) -> tuple[str | Keep | None, str | Keep | None, bool]:
    errors = FieldErrors.of(body, {*TAGS, "source"})
    if not set(TAGS) & set(body):
        errors.update(dict.fromkeys(TAGS, "at least one of deal_id, campaign_id is required"))
    if body.get("source", "api") not in SOURCES:
        errors["source"] = "expected api or crm"
    deal, campaign = _key(body, "deal_id", errors), _key(body, "campaign_id", errors)
    errors.check()
    return deal, campaign, body.get("source") == "crm"


@bp.post("/conversations/<int:conv_id>/tags")
def tag_conversation(conv_id: int) -> dict[str, Any]:
    """Tag with a deal and/or campaign by key; null hands that tag back to the rules."""
    deal, campaign, from_crm = _parse(json_body())
    with get_db(current_app).session() as session:
        conv = session.get(Conversation, conv_id)
        if conv is None:
            raise NotFound(f"conversation {conv_id} not found")
        attribution.tag(
            session,
            conv,
            campaign_key=campaign,
            deal_key=deal,
            from_crm=from_crm,
            window=settings_of().attribution_window,
        )
        session.flush()
        session.refresh(conv)
        return conversation_summary(conv)
