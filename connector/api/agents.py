"""Agent presence for ``agent_utilization``: ``POST /api/v1/agents/<id>/presence``.

``{"status": "online" | "offline", "at"?: ISO}`` opens or closes a presence interval;
``{"from": ISO, "to": ISO}`` records a whole interval (an import from a rota or another
tool). Utilization is time with an open assigned conversation within presence time.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.api import bp
from connector.api.params import iso, json_body, parse_time
from connector.db import get_db
from connector.errors import ValidationFailed
from connector.models import Agent, AgentPresence, utcnow


@bp.post("/agents/<external_id>/presence")
def post_presence(external_id: str) -> tuple[dict[str, Any], int]:
    body = json_body()
    with get_db(current_app).session() as session:
        agent = _agent(session, external_id)
        if "from" in body or "to" in body:
            start, end = parse_time("from", body.get("from")), parse_time("to", body.get("to"))
            if start is None or end is None or end <= start:
                raise ValidationFailed("from/to: expected two ISO datetimes, to after from")
            row = AgentPresence(agent_id=agent.id, started_at=start, ended_at=end)
            session.add(row)
        else:
            row = _toggle(session, agent, body.get("status"), parse_time("at", body.get("at")))
        session.flush()
        view = {
            "agent_id": external_id,
            "started_at": iso(row.started_at),
            "ended_at": iso(row.ended_at),
        }
        return view, 201


def _toggle(session: Session, agent: Agent, status: Any, at: Any) -> AgentPresence:
    if status not in ("online", "offline"):
        raise ValidationFailed(
            'status: expected "online" or "offline"', details={"field": "status"}
        )
    when = at or utcnow()
    current = session.scalars(
        select(AgentPresence)
        .where(AgentPresence.agent_id == agent.id, AgentPresence.ended_at.is_(None))
        .order_by(AgentPresence.started_at.desc())
    ).first()
    if status == "online":
        if current is not None:
            return current  # already online: one open interval at a time
        row = AgentPresence(agent_id=agent.id, started_at=when)
        session.add(row)
        return row
    if current is None:
        raise ValidationFailed(f"agent {agent.external_id} is not online")
    current.ended_at = max(when, current.started_at)
    return current


def _agent(session: Session, external_id: str) -> Agent:
    agent = session.scalars(select(Agent).where(Agent.external_id == external_id)).first()
    if agent is None:
        agent = Agent(external_id=external_id)
        session.add(agent)
        session.flush()
    return agent
