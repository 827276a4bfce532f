"""CSAT and NPS from survey answers, scoped through the surveyed conversation.

The answers and delivered surveys of each conversation are counted once, into the
materialised conversations (``survey_columns``); every scope then sums those counts in
the grouping of its conversations (``support``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Float, Integer, Select, and_, func, or_, select

from connector.kpis.query import Query
from connector.kpis.sql import count_if, percent, total
from connector.models import Survey, SurveyResponse

_COUNTS = (
    "csat_answers",
    "csat_satisfied",
    "nps_answers",
    "nps_promoters",
    "nps_detractors",
    "csat_surveys",
    "csat_surveys_answered",
)


def survey_columns() -> list[Column[Any]]:
    """The per-conversation survey counts carried by the materialised conversations."""
    return [*(Column(name, Integer) for name in _COUNTS), Column("csat_points", Float)]


def answers_select(q: Query, own: Callable[[Any], Any]) -> Select[Any]:
    """Per conversation (``own`` restricts the conversation ids): its answers in the period
    (1-5: 4 and 5 are satisfied; 1-10: 8 and above; ``csat_points`` sums the scores on a
    1-5 scale)."""
    r = SurveyResponse
    csat, nps = r.kind == "csat", r.kind == "nps"
    satisfied = or_(and_(r.scale <= 5, r.score >= 4), and_(r.scale > 5, r.score >= 8))
    return (
        select(
            r.conversation_id.label("cid"),
            count_if(csat).label("csat_answers"),
            count_if(and_(csat, satisfied)).label("csat_satisfied"),
            func.sum(r.score * 5.0 / r.scale).filter(csat).label("csat_points"),
            count_if(nps).label("nps_answers"),
            count_if(and_(nps, r.score >= 9)).label("nps_promoters"),
            count_if(and_(nps, r.score <= 6)).label("nps_detractors"),
        )
        .where(q.in_period(r.answered_at), own(r.conversation_id))
        .group_by(r.conversation_id)
    )


def surveys_select(q: Query, own: Callable[[Any], Any]) -> Select[Any]:
    """Per conversation: CSAT surveys delivered (sent in the period) and the answers to them."""
    s, r = Survey, SurveyResponse
    return (
        select(
            s.conversation_id.label("cid"),
            func.count(s.id).label("csat_surveys"),
            func.count(r.id).label("csat_surveys_answered"),
        )
        .outerjoin(r, and_(r.conversation_id == s.conversation_id, r.kind == s.kind))
        .where(
            s.kind == "csat",
            s.delivered_at.is_not(None),
            q.in_period(s.sent_at),
            own(s.conversation_id),
        )
        .group_by(s.conversation_id)
    )


def sums(v: Any) -> tuple[list[Any], Any]:
    """The survey sums over materialised conversations ``v``, and whether any was surveyed
    or answered (both aggregates, for the grouping ``support`` makes of them)."""
    any_ = func.sum(v.c.csat_answers + v.c.nps_answers + v.c.csat_surveys) > 0
    return [*(total(v.c[name]) for name in _COUNTS), func.sum(v.c.csat_points)], any_


def read(row: Sequence[Any]) -> dict[str, Any]:
    """KPI values from the ``sums`` of one key."""
    answers, happy, nps_n, promoters, detractors, surveys, answered, points = row
    answers, nps_n = int(answers or 0), int(nps_n or 0)
    return {
        "csat": percent(happy, answers),
        "csat_mean": round(float(points) / answers, 4) if answers else None,
        "nps": percent(int(promoters or 0) - int(detractors or 0), nps_n),
        "csat_response_rate": percent(answered, surveys),
    }
