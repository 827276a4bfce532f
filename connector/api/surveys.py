"""Survey answers: record one from another tool, list them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, request
from sqlalchemy import func, select

from connector import surveys
from connector.api import bp
from connector.api.params import int_arg, iso, json_body, parse_time
from connector.db import get_db
from connector.errors import NotFound, ValidationFailed
from connector.models import Conversation, SurveyResponse, utcnow


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """A validated ``POST /api/v1/surveys`` body."""

    conversation_id: int
    kind: str
    score: int
    answered_at: datetime

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Answer:
        conversation_id = _int(body, "conversation_id")
        kind = body.get("kind")
        if kind not in surveys.SCALES:
            raise _invalid("kind", "expected csat or nps")
        score = _int(body, "score")
        low, high = surveys.SCALES[kind]
        if not low <= score <= high:
            raise _invalid("score", f"{kind} is scored {low}-{high}")
        raw_at = body.get("answered_at")
        if raw_at is not None and not isinstance(raw_at, str):
            raise _invalid("answered_at", "expected an ISO-8601 datetime")
        answered_at = parse_time("answered_at", raw_at) or utcnow()
        return cls(conversation_id=conversation_id, kind=kind, score=score, answered_at=answered_at)


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, "expected an integer")
    return value


def _invalid(name: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {why}", details={"field": name})


def response_view(resp: SurveyResponse) -> dict[str, Any]:
    return {
        "id": resp.id,
        "conversation_id": resp.conversation_id,
        "kind": resp.kind,
        "score": resp.score,
        "scale": resp.scale,
        "answered_at": iso(resp.answered_at),
        "source": resp.source,
        "wamid": resp.wamid,
    }


@bp.post("/surveys")
def post_survey_answer() -> tuple[dict[str, Any], int]:
    """201 when stored (new, or replacing an earlier answer); 200 when a later one is kept."""
    answer = Answer.from_json(json_body())
    with get_db(current_app).session() as session:
        conv = session.get(Conversation, answer.conversation_id)
        if conv is None:
            raise NotFound(f"conversation {answer.conversation_id} not found")
        stored, written = surveys.record_answer(
            session,
            conversation_id=conv.id,
            contact_id=conv.contact_id,
            kind=answer.kind,
            score=answer.score,
            answered_at=answer.answered_at,
            source="api",
        )
        return response_view(stored), 201 if written else 200


@bp.get("/surveys")
def list_survey_answers() -> dict[str, Any]:
    """Filters: conversation_id, kind; page, per_page. Newest answer first."""
    stmt = select(SurveyResponse)
    if request.args.get("conversation_id") is not None:
        conv_id = int_arg("conversation_id", 0, lo=1, hi=2**63 - 1)
        stmt = stmt.where(SurveyResponse.conversation_id == conv_id)
    if (kind := request.args.get("kind")) is not None:
        if kind not in surveys.SCALES:
            raise ValidationFailed("kind: expected csat or nps", details={"parameter": "kind"})
        stmt = stmt.where(SurveyResponse.kind == kind)
    page, per_page = int_arg("page", 1, lo=1, hi=10**6), int_arg("per_page", 50, lo=1, hi=500)
    with get_db(current_app).session() as session:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.order_by(SurveyResponse.answered_at.desc(), SurveyResponse.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        items = [response_view(r) for r in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}
