"""Builders for Cloud API webhook bodies in the documented shape, for hand-worked timelines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
BUSINESS = "106540352242922"


def at(minutes: float = 0, *, hours: float = 0, days: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, hours=hours, days=days)


def envelope(value: dict[str, Any], field: str = "messages") -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": BUSINESS,
                            },
                            **value,
                        },
                        "field": field,
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


def inbound(
    wamid: str,
    when: datetime,
    *,
    wa_id: str = "16505551234",
    text: str = "hi",
    name: str = "Sheena Nelson",
    extra: dict[str, Any] | None = None,
) -> bytes:
    return envelope(
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid,
                    "timestamp": str(int(when.timestamp())),
                    "type": "text",
                    "text": {"body": text},
                    **(extra or {}),
                }
            ],
        }
    )


def status(
    wamid: str,
    state: str,
    when: datetime,
    *,
    wa_id: str = "16505551234",
    category: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> bytes:
    item: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": str(int(when.timestamp())),
        "recipient_id": wa_id,
    }
    if category:
        item["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": category,
        }
    if errors:
        item["errors"] = errors
    return envelope({"statuses": [item]})
