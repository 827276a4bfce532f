"""Agents: their names and CRM user records, and presence for ``agent_utilization``.

``PUT /api/v1/agents/<id>`` ``{"name"?, "is_bot"?, "crm_id"?}`` creates or updates an agent;
``crm_id`` links it to its user record in the configured CRM (HubSpot: a Users object
record id; Salesforce: a User Id; the local CRM: any id, its user is created on the first
write), where the write-back puts the agent's KPIs; null unlinks it. ``GET /api/v1/agents``
lists them with their links.

``POST /api/v1/agents/<id>/presence``: ``{"status": "online" | "offline", "at"?: ISO}``
opens or closes a presence interval; ``{"from": ISO, "to": ISO}`` records a whole interval
(an import from a rota or another tool). Utilization is time with an open assigned
conversation within presence time.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import kpi_dirty
from connector.api import bp
from connector.api.params import FieldErrors, iso, json_body, parse_time, text_value
from connector.db import get_db
from connector.errors import ValidationFailed
from connector.models import Agent, AgentPresence, CrmLink, utcnow
from connector.settings_ext import settings_of

_FIELDS = ("name", "is_bot", "crm_id")


@bp.get("/agents")
def list_agents() -> dict[str, Any]:
    crm = settings_of().crm
    with get_db(current_app).session() as session:
        links = dict(
            session.execute(
                select(CrmLink.local_id, CrmLink.crm_id).where(*_agent_links(crm))
            ).all()
        )
        agents = session.scalars(select(Agent).order_by(Agent.external_id))
        return {"agents": [_view(agent, crm, links.get(agent.id)) for agent in agents]}


@bp.put("/agents/<external_id>")
def put_agent(external_id: str) -> dict[str, Any]:
    body = json_body()
    errors = FieldErrors.of(body, _FIELDS)
    name = text_value(body, "name", errors, limit=256)
    crm_id = text_value(body, "crm_id", errors, limit=128)
    if "is_bot" in body and not isinstance(body["is_bot"], bool):
        errors["is_bot"] = "expected true or false"
    errors.check()
    crm = settings_of().crm
    with get_db(current_app).session() as session:
        agent = _agent(session, external_id)
        if "name" in body:
            agent.name = name
        if "is_bot" in body:
            agent.is_bot = body["is_bot"]
        link = session.scalars(select(CrmLink).where(*_agent_links(crm, agent.id))).first()
        if "crm_id" in body:
            _link(session, crm, agent, link, crm_id)
        else:
            crm_id = link.crm_id if link is not None else None
        session.flush()
        return _view(agent, crm, crm_id)


def _agent_links(crm: str, agent_id: int | None = None) -> list[Any]:
    """Conditions on ``crm_links``: agents' links to ``crm`` (one agent's)."""
    found = [CrmLink.crm == crm, CrmLink.kind == "agent"]
    return found if agent_id is None else [*found, CrmLink.local_id == agent_id]


def _link(
    session: Session, crm: str, agent: Agent, link: CrmLink | None, crm_id: str | None
) -> None:
    """Point the agent at ``crm_id`` (None: unlink); a change makes the next write-back
    compute the agent, so a new record gets its fields without waiting for a full run."""
    if crm_id is None:
        if link is not None:
            session.delete(link)
        return
    if link is None:
        session.add(
            CrmLink(crm=crm, kind="agent", local_id=agent.id, crm_id=crm_id, synced_at=utcnow())
        )
    elif link.crm_id != crm_id:
        link.crm_id, link.synced_at = crm_id, utcnow()
    else:
        return
    kpi_dirty.mark(session, [("agent", str(agent.id))])


def _view(agent: Agent, crm: str, crm_id: str | None) -> dict[str, Any]:
    return {
        "agent_id": agent.external_id,
        "name": agent.name,
        "is_bot": agent.is_bot,
        "crm": crm,
        "crm_id": crm_id,
    }


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
