"""Campaign and revenue KPIs on a hand-worked timeline (T0 = Monday 2026-03-02 09:00 UTC).

Campaign "spring" (spend 1 000) sends a template to four recipients at T0:
  R1 delivered 09:01, read 09:02, replies 10:00; replies again on Wednesday 10:00 (a new
     conversation, alice answers); deal D1 (500) won Thursday 09:00 → attributed
  R2 delivered 09:01, never replies; deal D2 (800) won 40 days later → outside the 30 d window
  R3 failed 09:01
  R4 delivered 09:01, read 09:05, clicks the campaign's tracked link
Billable costs: 0.05 on each of R1, R2, R4's templates.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from connector.kpis import KpiOptions
from connector.models import (
    Agent,
    Campaign,
    Contact,
    Deal,
    DealContact,
    LinkClick,
    Message,
    TrackedLink,
)
from tests.kpis.timeline import Timeline
from tests.payloads import at

R1, R2, R3, R4 = "4915100000001", "4915100000002", "4915100000003", "4915100000004"
TEMPLATE = {"name": "spring_sale", "language": "en"}


@pytest.fixture
def timeline(client: Any, signer: Any, auth: dict[str, str], db: Any) -> Timeline:
    t = Timeline(client, signer, auth, db)
    sends = {
        wa: t.outbound(wa, at(0), campaign_id="spring", template=TEMPLATE)
        for wa in (R1, R2, R3, R4)
    }
    for wa in (R1, R2, R4):
        t.status(sends[wa], "sent", at(0.5), wa_id=wa)
        t.status(sends[wa], "delivered", at(1), wa_id=wa)
    t.status(sends[R1], "read", at(2), wa_id=R1)
    t.status(sends[R4], "read", at(5), wa_id=R4)
    t.status(sends[R3], "failed", at(1), wa_id=R3)
    t.inbound(R1, at(60))
    t.inbound(R1, at(days=2, hours=1))
    t.outbound(R1, at(days=2, hours=1, minutes=5), agent_id="alice")
    with db.session() as s:
        contacts = {c.wa_id: c.id for c in s.scalars(select(Contact))}
        campaign = s.scalars(select(Campaign).where(Campaign.key == "spring")).one()
        campaign.spend = Decimal("1000")
        s.execute(
            update(Message)
            .where(Message.wamid.in_([sends[R1], sends[R2], sends[R4]]))
            .values(cost=Decimal("0.05"))
        )
        for key, wa, amount, won in (("D1", R1, 500, at(days=3)), ("D2", R2, 800, at(days=40))):
            deal = Deal(key=key, amount=Decimal(amount), is_won=True, is_closed=True, won_at=won)
            s.add(deal)
            s.flush()
            s.add(DealContact(deal_id=deal.id, contact_id=contacts[wa]))
        link = TrackedLink(token="tok", url="https://shop.example", campaign_id=campaign.id)
        s.add(link)
        s.flush()
        s.add(
            LinkClick(
                link_id=link.id,
                campaign_id=campaign.id,
                contact_id=contacts[R4],
                clicked_at=at(10),
            )
        )
    return t


def _campaign(t: Timeline, db: Any, **kw: Any) -> dict[str, Any]:
    with db.session() as s:
        cid = str(s.scalar(select(Campaign.id).where(Campaign.key == "spring")))
    return t.kpis("campaign", **kw)[cid]


def test_delivery_and_campaign_reach(timeline: Timeline, db: Any) -> None:
    k = _campaign(timeline, db)
    # 4 sent with a status; R1, R2, R4 reached delivered → 3/4
    assert k["delivery_rate"] == 75.0
    # read R1, R4 of the 3 delivered → 2/3
    assert k["read_rate"] == 66.6667
    assert k["failure_rate"] == 25.0  # R3 of 4
    assert k["recipients"] == 4
    # replied within 72 h of delivery: R1 (59 min after) of 3 delivered
    assert k["reply_rate"] == 33.3333
    # clicked a tracked link: R4 of 3 delivered
    assert k["ctr"] == 33.3333
    assert k["messaging_cost"] == pytest.approx(0.15)  # 3 x 0.05
    assert k["campaign_spend"] == 1000.0


def test_revenue_conversion_cpa_and_roi(timeline: Timeline, db: Any) -> None:
    account = timeline.kpis()["account"]
    # conversations: R1 x2, R2, R3, R4 = 5; followed by a won deal within 30 d: both of R1's
    assert account["conversion_rate"] == 40.0
    # D1 (500) has touches; D2 was won 40 days after R2's only conversation → not attributed
    assert account["attributed_revenue"] == 500.0
    assert account["new_customers"] == 1
    k = _campaign(timeline, db)
    assert k["attributed_revenue"] == 500.0
    assert k["revenue_per_recipient"] == 125.0  # 500 / 4 recipients
    # cpa = (messaging 0.15 + spend 1000) / 1 new customer
    assert k["cpa"] == 1000.15
    # campaign roi = (500 - 1000.15) / 1000.15 x 100 = -50.0075 %
    assert k["roi"] == -50.0075


@pytest.mark.parametrize(
    ("model", "alice_revenue"),
    [("last_touch", 500.0), ("first_touch", 0.0), ("linear", 250.0)],
)
def test_attribution_models(timeline: Timeline, db: Any, model: str, alice_revenue: float) -> None:
    # D1's touches: R1's Monday conversation (no agent) and Wednesday's (alice).
    with db.session() as s:
        alice = str(s.scalar(select(Agent.id).where(Agent.external_id == "alice")))
    by_agent = timeline.kpis("agent", opts=KpiOptions(attribution_model=model))
    assert by_agent.get(alice, {}).get("attributed_revenue", 0.0) == alice_revenue
    account = timeline.kpis(opts=KpiOptions(attribution_model=model))["account"]
    assert account["attributed_revenue"] == 500.0  # every model credits the whole amount once


def test_deal_won_outside_window_counts_with_a_longer_window(timeline: Timeline) -> None:
    from datetime import timedelta

    opts = KpiOptions(attribution_window=timedelta(days=45))
    account = timeline.kpis(opts=opts)["account"]
    assert account["attributed_revenue"] == 1300.0  # D1 500 + D2 800 (40 d < 45 d)
    assert account["new_customers"] == 2


def test_full_recompute_matches_per_scope(timeline: Timeline) -> None:
    from connector.kpis import SCOPES, Period
    from connector.kpis.engine import compute_all
    from tests.payloads import T0

    now = T0.replace(year=T0.year + 1)
    with timeline.db.session() as session:
        together: dict[str, dict[str, Any]] = {scope: {} for scope in SCOPES}
        # chunk=2: the biggest scopes are computed two ids at a time
        for scope, part in compute_all(session, KpiOptions(), SCOPES, Period(), now=now, chunk=2):
            together[scope].update(part)
    for scope in SCOPES:
        assert together[scope] == timeline.kpis(scope, now=now), scope
