"""The seeds' worked examples, end to end through the engine.

- 100 campaign recipients, 20 of them buy within the attribution window → 20 % conversion.
- Integration cost 10 000 (setup), attributed value 50 000 (20 deals x 2 500)
  → ROI (50 000 - 10 000) / 10 000 x 100 = 400 %.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connector.kpis import KpiOptions, Period
from connector.models import Campaign, Contact, Conversation, Deal, DealContact, Message
from tests.kpis.timeline import Timeline
from tests.payloads import BUSINESS, at


def _seed(db: Any) -> None:
    with db.session() as s:
        campaign = Campaign(key="launch", spend=Decimal(0))
        s.add(campaign)
        s.flush()
        for i in range(100):
            contact = Contact(wa_id=f"1555000{i:04d}")
            s.add(contact)
            s.flush()
            conv = Conversation(
                contact_id=contact.id,
                business_number_id=BUSINESS,
                initiated_by="business",
                opened_at=at(i),
                last_message_at=at(i),
                resolved_at=at(i),
                resolved_by="timeout",
                status="resolved",
                campaign_id=campaign.id,
            )
            s.add(conv)
            s.flush()
            s.add(
                Message(
                    wamid=f"wamid.seed{i}",
                    provider="meta",
                    business_number_id=BUSINESS,
                    contact_id=contact.id,
                    conversation_id=conv.id,
                    direction="outbound",
                    type="template",
                    sender_kind="campaign",
                    campaign_id=campaign.id,
                    is_template=True,
                    timestamp=at(i),
                    status="delivered",
                    sent_at=at(i),
                    delivered_at=at(i + 1),
                    cost=Decimal(0),
                )
            )
            if i % 5 == 0:  # 20 of 100 buy, 10 days after the message
                deal = Deal(
                    key=f"D{i}",
                    amount=Decimal(2500),
                    is_won=True,
                    is_closed=True,
                    won_at=at(i, days=10),
                )
                s.add(deal)
                s.flush()
                s.add(DealContact(deal_id=deal.id, contact_id=contact.id))


def test_conversion_and_roi_examples(client: Any, signer: Any, auth: Any, db: Any) -> None:
    _seed(db)
    t = Timeline(client, signer, auth, db)
    opts = KpiOptions(setup_cost=Decimal(10000))
    period = Period(at(0), at(days=31))
    k = t.kpis(period=period, opts=opts)["account"]
    assert k["recipients"] == 100
    assert k["conversion_rate"] == 20.0  # 20 / 100
    assert k["attributed_revenue"] == 50000.0  # 20 x 2 500
    assert k["integration_cost"] == 10000.0  # setup only: no recurring, no messaging cost
    assert k["roi"] == 400.0  # (50 000 - 10 000) / 10 000 x 100
    assert k["revenue_per_recipient"] == 500.0  # 50 000 / 100
