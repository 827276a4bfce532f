"""CSAT, NPS, response rate and agent utilization on hand-built rows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from connector.kpis import Period
from connector.models import Agent, AgentPresence, Contact, Conversation, Survey, SurveyResponse
from tests.kpis.timeline import Timeline
from tests.payloads import BUSINESS, at


def _conversation(s: Any, contact: Contact, opened: datetime, closed: datetime, **kw: Any) -> int:
    conv = Conversation(
        contact_id=contact.id,
        business_number_id=BUSINESS,
        initiated_by="customer",
        opened_at=opened,
        last_message_at=closed,
        resolved_at=closed,
        resolved_by="timeout",
        status="resolved",
        **kw,
    )
    s.add(conv)
    s.flush()
    return conv.id


def test_csat_nps_and_response_rate(client: Any, signer: Any, auth: Any, db: Any) -> None:
    with db.session() as s:
        contact = Contact(wa_id="15550001111")
        s.add(contact)
        s.flush()
        convs = [_conversation(s, contact, at(i * 60), at(i * 60 + 10)) for i in range(6)]
        # CSAT: 5, 3, 4 on 1-5 and 8 on 1-10 → satisfied 5, 4, 8 = 3 of 4 = 75 %;
        # mean on 1-5: (5 + 3 + 4 + 8·5/10) / 4 = 16 / 4 = 4.0
        for conv, score, scale in zip(convs, (5, 3, 4, 8), (5, 5, 5, 10), strict=False):
            s.add(_answer(conv, contact, "csat", score, scale))
        # NPS: 10, 9, 10 promoters; 7 passive; 3, 0 detractors → (3 - 2) / 6 = 16.6667
        for conv, score in zip(convs, (10, 9, 7, 3, 0, 10), strict=True):
            s.add(_answer(conv, contact, "nps", score, 10))
        # CSAT surveys delivered on 5 conversations, 4 of them answered → 80 %
        for conv in convs[:5]:
            s.add(
                Survey(
                    conversation_id=conv,
                    contact_id=contact.id,
                    kind="csat",
                    scale=5,
                    sent_at=at(500),
                    delivered_at=at(501),
                    expires_at=at(days=2),
                )
            )
    k = Timeline(client, signer, auth, db).kpis()["account"]
    assert k["csat"] == 75.0 and k["csat_mean"] == 4.0
    assert k["nps"] == 16.6667
    assert k["csat_response_rate"] == 80.0


def _answer(conv: int, contact: Contact, kind: str, score: int, scale: int) -> SurveyResponse:
    return SurveyResponse(
        conversation_id=conv,
        contact_id=contact.id,
        kind=kind,
        score=score,
        scale=scale,
        answered_at=at(600),
        source="api",
    )


def test_nps_extremes(client: Any, signer: Any, auth: Any, db: Any) -> None:
    with db.session() as s:
        contact = Contact(wa_id="15550002222")
        s.add(contact)
        s.flush()
        a, b = (_conversation(s, contact, at(i * 60), at(i * 60 + 1)) for i in range(2))
        s.add_all([_answer(a, contact, "nps", 0, 10), _answer(b, contact, "nps", 6, 10)])
    assert Timeline(client, signer, auth, db).kpis()["account"]["nps"] == -100.0


def test_agent_utilization(client: Any, signer: Any, auth: Any, db: Any) -> None:
    """alice present 09:00-13:00 (4 h). Assigned: X 09:30-10:30, Y 10:00-11:00 (overlaps X:
    the union is 09:30-11:00 = 1.5 h), Z 12:30-14:00 (0.5 h inside presence).
    Busy and present = 2 h of 4 h = 50 %. bob: present 09:00-10:00 and nothing assigned: 0 %."""
    with db.session() as s:
        contact = Contact(wa_id="15550003333")
        alice, bob = Agent(external_id="alice"), Agent(external_id="bob")
        s.add_all([contact, alice, bob])
        s.flush()
        for start, end in ((30, 90), (60, 120), (210, 300)):
            _conversation(s, contact, at(start), at(end), agent_id=alice.id)
        s.add(AgentPresence(agent_id=alice.id, started_at=at(0), ended_at=at(240)))
        s.add(AgentPresence(agent_id=bob.id, started_at=at(0), ended_at=at(60)))
        ids = {"alice": str(alice.id), "bob": str(bob.id)}
    t = Timeline(client, signer, auth, db)
    by_agent = t.kpis("agent")
    assert by_agent[ids["alice"]]["agent_utilization"] == 50.0
    assert by_agent[ids["bob"]]["agent_utilization"] == 0.0
    # account: (2 h + 0) / (4 h + 1 h) = 40 %
    assert t.kpis()["account"]["agent_utilization"] == 40.0
    # clipped to 10:00-12:00: present 2 h, busy 10:00-11:00 = 1 h → 50 %
    window = Period(at(60), at(180))
    assert t.kpis("agent", period=window)[ids["alice"]]["agent_utilization"] == 50.0
    assert window.end - window.start == timedelta(hours=2)


def test_presence_api_feeds_utilization(client: Any, signer: Any, auth: Any, db: Any) -> None:
    """Online 09:00-11:00 by toggles, plus a 1 h interval 12:00-13:00 given whole; one
    conversation assigned 10:00-10:30 → 0.5 h of 3 h present = 16.6667 %."""
    url = "/api/v1/agents/zoe/presence"
    assert (
        client.post(
            url, json={"status": "online", "at": at(0).isoformat()}, headers=auth
        ).status_code
        == 201
    )
    assert (
        client.post(
            url, json={"status": "offline", "at": at(120).isoformat()}, headers=auth
        ).status_code
        == 201
    )
    whole = {"from": at(180).isoformat(), "to": at(240).isoformat()}
    assert client.post(url, json=whole, headers=auth).status_code == 201
    assert client.post(url, json={"status": "away"}, headers=auth).status_code == 400
    assert client.post(url, json={"status": "offline"}, headers=auth).status_code == 400
    with db.session() as s:
        from sqlalchemy import select

        zoe = s.scalars(select(Agent).where(Agent.external_id == "zoe")).one()
        contact = Contact(wa_id="15550004444")
        s.add(contact)
        s.flush()
        _conversation(s, contact, at(60), at(90), agent_id=zoe.id)
        key = str(zoe.id)
    assert Timeline(client, signer, auth, db).kpis("agent")[key]["agent_utilization"] == 16.6667


def _measure(intervals: list[tuple[int, int]]) -> int:
    """Minutes covered by a union of [start, end) intervals."""
    covered, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            covered += end - start
            reach = end
        elif end > reach:
            covered += end - reach
            reach = end
    return covered


def test_utilization_matches_interval_arithmetic(
    client: Any, signer: Any, auth: Any, db: Any
) -> None:
    """Seeded random timelines (minutes after 09:00): conversations and presence records
    that overlap, nest, touch end to start and start together; utilization must equal
    |busy ∩ present| / |present| worked out from the interval lists in Python."""
    rng = random.Random(7)
    agents: dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}
    with db.session() as s:
        contact = Contact(wa_id="15550005555")
        s.add(contact)
        s.flush()
        for n in range(4):
            agent = Agent(external_id=f"sweep{n}")
            s.add(agent)
            s.flush()
            starts = [rng.randrange(0, 600, 15) for _ in range(12)]
            busy = [(a, a + rng.choice((15, 30, 45, 90))) for a in starts]
            present = [(a, a + rng.choice((30, 60, 120))) for a in starts[:5]]
            present.append(present[0])  # the same record twice counts once
            for start, end in busy:
                _conversation(s, contact, at(start), at(end), agent_id=agent.id)
            for start, end in present:
                s.add(AgentPresence(agent_id=agent.id, started_at=at(start), ended_at=at(end)))
            agents[str(agent.id)] = (busy, present)
    got = Timeline(client, signer, auth, db).kpis("agent")
    for key, (busy, present) in agents.items():
        both = [
            (max(b0, p0), min(b1, p1))
            for b0, b1 in busy
            for p0, p1 in present
            if max(b0, p0) < min(b1, p1)
        ]
        expected = round(100 * _measure(both) / _measure(present), 4)
        assert got[key]["agent_utilization"] == expected, key
