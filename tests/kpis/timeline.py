"""Build hand-worked timelines through the real surfaces: signed webhooks and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask.testing import FlaskClient

from connector.db import Database
from connector.kpis import KpiOptions, Period, compute
from tests.payloads import BUSINESS, T0, inbound, status


class Timeline:
    def __init__(self, client: FlaskClient, signer: Any, auth: dict[str, str], db: Database):
        self.client, self.signer, self.auth, self.db = client, signer, auth, db
        self._n = 0

    def _wamid(self, prefix: str) -> str:
        self._n += 1
        return f"wamid.{prefix}{self._n}"

    def inbound(self, wa_id: str, when: datetime, text: str = "hi", **extra: Any) -> str:
        wamid = self._wamid("in")
        body = inbound(wamid, when, wa_id=wa_id, text=text, extra=extra or None)
        response = self.client.post(
            "/webhooks/whatsapp", data=body, headers=self.signer.headers(body)
        )
        assert response.status_code == 200, response.data
        return wamid

    def outbound(self, wa_id: str, when: datetime, **fields: Any) -> str:
        """An outbound message recorded with ``send: false`` (agent_id, campaign_id, ...)."""
        wamid = fields.pop("wamid", None) or self._wamid("out")
        body = {
            "to": wa_id,
            "text": "reply",
            "send": False,
            "wamid": wamid,
            "timestamp": when.isoformat(),
            "business_number_id": BUSINESS,
            **fields,
        }
        if "template" in body:
            body.pop("text")
        response = self.client.post("/api/v1/messages", json=body, headers=self.auth)
        assert response.status_code == 201, response.data
        return wamid

    def status(self, wamid: str, state: str, when: datetime, wa_id: str, **kw: Any) -> None:
        body = status(wamid, state, when, wa_id=wa_id, **kw)
        response = self.client.post(
            "/webhooks/whatsapp", data=body, headers=self.signer.headers(body)
        )
        assert response.status_code == 200, response.data

    def kpis(
        self,
        scope: str = "account",
        period: Period | None = None,
        opts: KpiOptions | None = None,
        now: datetime | None = None,
    ) -> dict[str, dict[str, Any]]:
        with self.db.session() as session:
            return compute(
                session,
                opts or KpiOptions(),
                scope,
                period or Period(),
                now=now or T0.replace(year=T0.year + 1),
            )
