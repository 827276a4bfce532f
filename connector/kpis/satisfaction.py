"""CSAT and NPS from survey answers, scoped through the surveyed conversation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select

from connector.kpis.query import Query
from connector.kpis.sql import count_if, percent
from connector.models import Conversation, Survey, SurveyResponse

Result = dict[str, dict[str, Any]]


def compute(q: Query, out: Result | None = None) -> Result:
    out = {} if out is None else out
    c, r = Conversation, SurveyResponse
    key = q.conv_key(c)
    base = select(key.label("k")).select_from(r).join(c, c.id == r.conversation_id)
    base = base.where(q.in_period(r.answered_at), q.own(c))
    # 1-5: 4 and 5 are satisfied; 1-10: 8 and above.
    satisfied = or_(and_(r.scale <= 5, r.score >= 4), and_(r.scale > 5, r.score >= 8))
    csat = base.where(r.kind == "csat").add_columns(
        func.count().label("answers"),
        count_if(satisfied).label("satisfied"),
        func.avg(r.score * 5.0 / r.scale).label("mean5"),
    )
    for k, answers, happy, mean5 in q.session.execute(csat.group_by(key)):
        out.setdefault(str(k), {}).update(
            csat=percent(happy, answers),
            csat_mean=None if mean5 is None else round(float(mean5), 4),
        )
    nps = base.where(r.kind == "nps").add_columns(
        func.count().label("answers"),
        count_if(r.score >= 9).label("promoters"),
        count_if(r.score <= 6).label("detractors"),
    )
    for k, answers, promoters, detractors in q.session.execute(nps.group_by(key)):
        out.setdefault(str(k), {})["nps"] = percent(int(promoters) - int(detractors), answers)
    _response_rate(q, out)
    return out


def _response_rate(q: Query, out: Result) -> None:
    """Answers to delivered CSAT surveys ÷ CSAT surveys delivered (sent in the period)."""
    c, s, r = Conversation, Survey, SurveyResponse
    key = q.conv_key(c)
    stmt = (
        select(key.label("k"), func.count(s.id), func.count(r.id))
        .select_from(s)
        .join(c, c.id == s.conversation_id)
        .outerjoin(r, and_(r.conversation_id == s.conversation_id, r.kind == s.kind))
        .where(
            s.kind == "csat",
            s.delivered_at.is_not(None),
            q.in_period(s.sent_at),
            q.own(c),
        )
        .group_by(key)
    )
    for k, delivered, answered in q.session.execute(stmt):
        out.setdefault(str(k), {})["csat_response_rate"] = percent(answered, delivered)
