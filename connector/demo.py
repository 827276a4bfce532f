"""``wacrm demo``: a realistic, signed day of WhatsApp traffic sent to a running connector.

Customers write in (one from a Click-to-WhatsApp ad), a bot and three agents answer, a
campaign template goes out, statuses come back (a few failures), some conversations are
resolved. Message ids derive from the seed, so running it twice stores nothing twice.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from connector.config import Settings
from whatsapp import meta_signature

AGENTS = ("agent-ana", "agent-ben", "agent-chloe")
NAMES = (
    "Ava Patel",
    "Liam Chen",
    "Sofia Rossi",
    "Noah Müller",
    "Mia Santos",
    "Lucas Dubois",
    "Amara Okafor",
    "Kenji Sato",
    "Elena Petrova",
    "Omar Haddad",
    "Priya Nair",
    "Jonas Berg",
)
QUESTIONS = (
    "Hi, is my order shipped yet?",
    "Do you deliver on weekends?",
    "Can I change the size of my order?",
    "What are your opening hours?",
    "I'd like a refund for order 1182",
    "Is the blue model back in stock?",
)
FAILURE = {
    "code": 131049,
    "title": "This message was not delivered to maintain healthy ecosystem engagement.",
}


@dataclass(slots=True)
class Demo:
    base: str
    settings: Settings
    rng: random.Random
    seed: int
    number: str
    http: requests.Session = field(default_factory=requests.Session)
    counter: int = 0
    sent: dict[str, int] = field(default_factory=lambda: {"webhooks": 0, "api": 0})

    def wamid(self) -> str:
        self.counter += 1
        return f"wamid.demo{self.seed}.{self.counter:05d}"

    def webhook(self, value: dict[str, Any]) -> None:
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "demo-waba",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "display_phone_number": self.number,
                                        "phone_number_id": self.number,
                                    },
                                    **value,
                                },
                            }
                        ],
                    }
                ],
            }
        ).encode()
        secret = self.settings.app_secret.get_secret_value()
        resp = self.http.post(
            f"{self.base}/webhooks/whatsapp",
            data=body,
            timeout=30,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": meta_signature(secret, body),
            },
        )
        resp.raise_for_status()
        self.sent["webhooks"] += 1

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        token = self.settings.admin_token.get_secret_value()
        resp = self.http.request(
            method,
            f"{self.base}/api/v1{path}",
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )
        resp.raise_for_status()
        self.sent["api"] += 1
        return resp.json()

    def inbound(
        self,
        wa_id: str,
        name: str,
        when: datetime,
        text: str,
        referral: dict[str, Any] | None = None,
    ) -> None:
        msg = {
            "from": wa_id,
            "id": self.wamid(),
            "timestamp": str(int(when.timestamp())),
            "type": "text",
            "text": {"body": text},
            **({"referral": referral} if referral else {}),
        }
        self.webhook({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [msg]})

    def outbound(
        self,
        wa_id: str,
        when: datetime,
        text: str | None = None,
        *,
        agent: str | None = None,
        kind: str = "bot",
        template: str | None = None,
        campaign: str | None = None,
    ) -> str:
        wamid = self.wamid()
        body: dict[str, Any] = {
            "to": wa_id,
            "send": False,
            "wamid": wamid,
            "timestamp": when.isoformat(),
            "business_number_id": self.number,
            "sender_kind": kind,
        }
        if template:
            body["template"] = {"name": template, "language": "en_US"}
        else:
            body["text"] = text
        body.update({k: v for k, v in (("agent_id", agent), ("campaign_id", campaign)) if v})
        self.api("POST", "/messages", body)
        return wamid

    def statuses(
        self,
        wamid: str,
        wa_id: str,
        when: datetime,
        *,
        fail: bool = False,
        category: str = "service",
    ) -> None:
        steps = [("sent", 1)] + ([("failed", 3)] if fail else [("delivered", 3)])
        if not fail and self.rng.random() < 0.7:
            steps.append(("read", self.rng.randint(20, 900)))
        for state, delay in steps:
            item: dict[str, Any] = {
                "id": wamid,
                "status": state,
                "recipient_id": wa_id,
                "timestamp": str(int((when + timedelta(seconds=delay)).timestamp())),
            }
            if state != "failed":
                item["pricing"] = {
                    "billable": True,
                    "pricing_model": "PMP",
                    "type": "regular",
                    "category": category,
                }
            else:
                item["errors"] = [FAILURE]
            self.webhook({"statuses": [item]})


def _customer_day(demo: Demo, wa_id: str, name: str, start: datetime, *, ad: bool) -> None:
    rng = demo.rng
    referral = {
        "source_url": "https://fb.me/demo",
        "source_id": "120226305854810726",
        "source_type": "ad",
        "headline": "Spring sale",
        "ctwa_clid": f"demo-clid-{wa_id}",
    }
    demo.inbound(wa_id, name, start, rng.choice(QUESTIONS), referral if ad else None)
    t = start + timedelta(seconds=2)
    if rng.random() < 0.5:
        wamid = demo.outbound(wa_id, t, "Thanks! An agent will be with you shortly.", kind="bot")
        demo.statuses(wamid, wa_id, t)
    t = start + timedelta(seconds=rng.choice([25, 40, 90, 240, 600, 1500]))
    agent = rng.choice(AGENTS)
    wamid = demo.outbound(wa_id, t, "Let me check that for you.", agent=agent, kind="agent")
    demo.statuses(wamid, wa_id, t, fail=rng.random() < 0.05)
    t += timedelta(minutes=rng.randint(1, 30))
    demo.inbound(wa_id, name, t, "Great, thank you!")
    t += timedelta(seconds=rng.randint(30, 400))
    wamid = demo.outbound(wa_id, t, "You're welcome, have a nice day!", agent=agent, kind="agent")
    demo.statuses(wamid, wa_id, t)


def _campaign(demo: Demo, recipients: list[tuple[str, str]], when: datetime) -> None:
    for k, (wa_id, name) in enumerate(recipients):
        sent_at = when + timedelta(seconds=k)
        wamid = demo.outbound(
            wa_id, sent_at, template="spring_sale", campaign="spring-sale", kind="campaign"
        )
        demo.statuses(wamid, wa_id, sent_at, fail=k % 9 == 4, category="marketing")
        if demo.rng.random() < 0.3:
            demo.inbound(
                wa_id,
                name,
                sent_at + timedelta(minutes=demo.rng.randint(2, 180)),
                "Interested! What sizes do you have?",
            )


def run_demo(
    base: str,
    settings: Settings,
    *,
    customers: int = 40,
    seed: int = 7,
    now: datetime | None = None,
) -> str:
    """Send the day; return a one-paragraph report of what was sent."""
    rng = random.Random(seed)
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    demo = Demo(
        base.rstrip("/"), settings, rng, seed, settings.phone_number_id or "100000000000001"
    )
    for agent in AGENTS:
        # With the built-in CRM every agent gets a user record there for its KPIs.
        link = {"crm_id": agent} if settings.crm == "local" else {}
        demo.api("PUT", f"/agents/{agent}", {"name": agent.removeprefix("agent-").title(), **link})
    people = [
        (f"1555{rng.randint(1000000, 9999999)}", NAMES[i % len(NAMES)]) for i in range(customers)
    ]
    for i, (wa_id, name) in enumerate(people):
        start = end - timedelta(hours=23) + timedelta(minutes=rng.randint(0, 22 * 60))
        _customer_day(demo, wa_id, name, start, ad=i == 0)
    _campaign(demo, people[: max(1, customers // 3)], end - timedelta(hours=20))
    recent = demo.api("GET", "/conversations?status=open&per_page=10")["items"]
    for conv in recent[:3]:
        demo.api("POST", f"/conversations/{conv['id']}/resolve")
    return (
        f"demo sent {demo.sent['webhooks']} signed webhooks and {demo.sent['api']} API calls "
        f"for {customers} customers, {len(AGENTS)} agents and campaign 'spring-sale' to {base}"
    )
