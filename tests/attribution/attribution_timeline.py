"""Hand-built attribution timelines through the real surfaces: signed webhooks and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from connector.db import Database
from connector.models import Contact, Conversation, LinkClick
from tests.conftest import ADMIN_TOKEN, Signer
from tests.payloads import BUSINESS, inbound, status

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AD_ID = "120226305854810726"


def referral(source_id: str = AD_ID, clid: str = "Aff-n8ZTODiE79d22KtAwQKj9e") -> dict[str, Any]:
    """Meta's documented ``messages[].referral`` object for a Click-to-WhatsApp ad."""
    return {
        "source_url": "https://fb.me/3cr4Wqqkv",
        "source_id": source_id,
        "source_type": "ad",
        "headline": "Chat with us",
        "body": "Summer Succulents are here!",
        "media_type": "image",
        "image_url": "https://scontent.xx.fbcdn.net/v/t45.1...",
        "ctwa_clid": clid,
    }


class Story:
    """One test's timeline: customer messages, campaign sends, tags, campaigns, clicks."""

    def __init__(self, client: FlaskClient, db: Database) -> None:
        self.client, self.db, self.signer, self._n = client, db, Signer(), 0

    def _wamid(self, prefix: str) -> str:
        self._n += 1
        return f"wamid.{prefix}{self._n}"

    def webhook(self, body: bytes) -> None:
        resp = self.client.post("/webhooks/whatsapp", data=body, headers=self.signer.headers(body))
        assert resp.status_code == 200, resp.data

    def says(self, wa_id: str, when: datetime, *, ad: dict[str, Any] | None = None) -> str:
        """The customer writes (optionally after tapping a Click-to-WhatsApp ad)."""
        wamid = self._wamid("in")
        extra = {"referral": ad} if ad else None
        self.webhook(inbound(wamid, when, wa_id=wa_id, extra=extra))
        return wamid

    def sends(
        self, wa_id: str, when: datetime, *, campaign: str | None = None, template: bool = True
    ) -> str:
        """We sent a message (recorded with ``send: false``), a template unless told."""
        wamid = self._wamid("out")
        body: dict[str, Any] = {
            "to": wa_id,
            "send": False,
            "wamid": wamid,
            "timestamp": when.isoformat(),
            "business_number_id": BUSINESS,
        }
        if template:
            body["template"] = {"name": "spring_offer", "language": "en_US"}
        else:
            body["text"] = "our offer"
        if campaign:
            body["campaign_id"] = campaign
        self.api("post", "/api/v1/messages", body, expect=201)
        return wamid

    def status(self, wamid: str, state: str, when: datetime, wa_id: str) -> None:
        errors = [{"code": 131026, "title": "Message undeliverable"}] if state == "failed" else None
        self.webhook(status(wamid, state, when, wa_id=wa_id, errors=errors))

    def api(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        resp = getattr(self.client, method)(path, json=body, headers=AUTH)
        assert resp.status_code == expect, resp.get_json()
        return resp.get_json()

    def campaign(self, **body: Any) -> dict[str, Any]:
        resp = self.client.post("/api/v1/campaigns", json=body, headers=AUTH)
        assert resp.status_code in (200, 201), resp.get_json()
        result: dict[str, Any] = resp.get_json()
        return result

    def link(
        self, campaign: str, wa_id: str | None, url: str = "https://shop.example/spring"
    ) -> str:
        body = {"url": url, **({"wa_id": wa_id} if wa_id else {})}
        token: str = self.api("post", f"/api/v1/campaigns/{campaign}/links", body, expect=201)[
            "token"
        ]
        return token

    def click(self, token: str, agent: str = "Mozilla/5.0 (iPhone)") -> datetime:
        """Follow a tracked link; return when the click was recorded (the server's clock)."""
        resp = self.client.get(f"/r/{token}", headers={"User-Agent": agent})
        assert resp.status_code == 302
        with self.db.session() as s:
            clicked = s.scalars(select(LinkClick.clicked_at).order_by(LinkClick.id.desc())).first()
        assert clicked is not None
        return clicked

    def tag(self, conv_id: int, *, expect: int = 200, **body: Any) -> Any:
        return self.api("post", f"/api/v1/conversations/{conv_id}/tags", body, expect=expect)

    def conversations(self, wa_id: str) -> list[dict[str, Any]]:
        """The contact's conversations, oldest first, as the API shows them."""
        items = self.api("get", f"/api/v1/conversations?wa_id={wa_id}")["items"]
        return sorted(items, key=lambda c: (c["opened_at"], c["id"]))

    def tags(self, wa_id: str) -> list[tuple[str | None, str | None]]:
        """(campaign key, attribution source) of each of the contact's conversations."""
        return [(c["campaign_id"], c["attribution"]["source"]) for c in self.conversations(wa_id)]

    def deals(self, wa_id: str) -> list[tuple[str | None, str | None]]:
        return [(c["deal_id"], c["attribution"]["deal_source"]) for c in self.conversations(wa_id)]

    def contact_id(self, wa_id: str) -> int:
        with self.db.session() as s:
            found = s.scalar(select(Contact.id).where(Contact.wa_id == wa_id))
        assert found is not None
        return found

    def conversation_ids(self, wa_id: str) -> list[int]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(Conversation.id)
                    .join(Contact)
                    .where(Contact.wa_id == wa_id)
                    .order_by(Conversation.opened_at)
                )
            )
