"""A survey answer follows its conversation when a late message merges it into another."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector.models import Conversation, SurveyResponse
from tests.kpis.timeline import Timeline
from tests.payloads import at

WA = "15550009999"


def test_answer_moves_to_the_surviving_conversation(
    client: Any, signer: Any, auth: Any, db: Any
) -> None:
    t = Timeline(client, signer, auth, db)
    t.inbound(WA, at(0))
    t.inbound(WA, at(hours=30))  # 30 h later: a second conversation
    with db.session() as s:
        first, second = s.scalars(select(Conversation.id).order_by(Conversation.opened_at)).all()
    body = {"conversation_id": second, "kind": "csat", "score": 4}
    assert client.post("/api/v1/surveys", json=body, headers=auth).status_code == 201
    t.inbound(WA, at(hours=15))  # 15 h from each: bridges the two into one
    with db.session() as s:
        assert s.scalars(select(Conversation.id)).all() == [first]
        answer = s.scalars(select(SurveyResponse)).one()
        assert (answer.conversation_id, answer.score) == (first, 4)
