"""``POST /api/v1/conversations/<id>/assign``: hand a conversation to an agent.

The first assignment is the bot → human handoff (``frt_human`` starts there if it is later
than the first customer message); a change of agent is a transfer, so the conversation no
longer counts as resolved on first contact.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from connector.api import bp
from connector.api.conversations import conversation_summary
from connector.api.params import json_body, parse_time
from connector.db import get_db
from connector.errors import NotFound, ValidationFailed
from connector.models import Agent, Conversation, utcnow


@bp.post("/conversations/<int:conv_id>/assign")
def assign_conversation(conv_id: int) -> dict[str, Any]:
    body = json_body()
    external = body.get("agent_id")
    if not isinstance(external, str | int) or not str(external).strip():
        raise ValidationFailed("agent_id: expected the agent's id", details={"field": "agent_id"})
    at = parse_time("at", body.get("at")) or utcnow()
    with get_db(current_app).session() as session:
        conv = session.get(Conversation, conv_id)
        if conv is None:
            raise NotFound(f"conversation {conv_id} not found")
        agent = session.scalars(select(Agent).where(Agent.external_id == str(external))).first()
        if agent is None:
            agent = Agent(external_id=str(external))
            session.add(agent)
            session.flush()
        if conv.agent_id is not None and conv.agent_id != agent.id:
            conv.transfers += 1
        conv.agent_id = agent.id
        if conv.handoff_at is None and not agent.is_bot:
            conv.handoff_at = at
        return {
            **conversation_summary(conv),
            "agent_id": agent.external_id,
            "transfers": conv.transfers,
        }
