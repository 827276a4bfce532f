"""POST/GET /api/v1/surveys: answers recorded by other tools, on both scales."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from connector.db import Database
from connector.kpis import KpiOptions, Period, compute
from tests.payloads import T0, at, inbound
from tests.surveys.survey_helpers import post


def _conversations(client: FlaskClient, auth: dict[str, str], n: int) -> list[int]:
    for k in range(n):
        post(client, inbound(f"wamid.c{k}", at(k), wa_id=f"4477009001{k:02d}"))
    items = client.get("/api/v1/conversations", headers=auth).get_json()["items"]
    return sorted(i["id"] for i in items)


def _answer(client: FlaskClient, auth: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/surveys", headers=auth, json=body)


def test_answers_on_both_scales_feed_csat_and_nps(
    client: FlaskClient, auth: dict[str, str], db: Database
) -> None:
    convs = _conversations(client, auth, 4)
    first = _answer(
        client,
        auth,
        conversation_id=convs[0],
        kind="csat",
        score=5,
        answered_at="2026-03-02T10:00:00Z",
    )
    assert first.status_code == 201
    assert first.get_json() == {
        "id": first.get_json()["id"],
        "conversation_id": convs[0],
        "kind": "csat",
        "score": 5,
        "scale": 5,
        "answered_at": "2026-03-02T10:00:00Z",
        "source": "api",
        "wamid": None,
    }
    # CSAT 5, 1, 4, 3 → satisfied (4-5) 2 of 4 = 50 %; mean (5 + 1 + 4 + 3) / 4 = 3.25.
    # NPS 10, 9, 6, 0 → promoters 2, detractors 2 → (2 - 2) / 4 = 0; the scale ends are valid.
    for conv, csat, nps in zip(convs, (5, 1, 4, 3), (10, 9, 6, 0), strict=True):
        assert (
            _answer(client, auth, conversation_id=conv, kind="csat", score=csat).status_code == 201
        )
        assert _answer(client, auth, conversation_id=conv, kind="nps", score=nps).status_code == 201
    with db.session() as s:
        k = compute(s, KpiOptions(), "account", Period(), now=T0.replace(year=2100))["account"]
    assert (k["csat"], k["csat_mean"], k["nps"]) == (50.0, 3.25, 0.0)
    listed = client.get("/api/v1/surveys?kind=nps", headers=auth).get_json()
    assert listed["total"] == 4 and {i["score"] for i in listed["items"]} == {10, 9, 6, 0}


def test_the_later_answer_wins(client: FlaskClient, auth: dict[str, str]) -> None:
    (conv,) = _conversations(client, auth, 1)
    base = {"conversation_id": conv, "kind": "csat"}
    assert (
        _answer(client, auth, **base, score=2, answered_at="2026-03-02T10:00:00Z").status_code
        == 201
    )
    again = _answer(client, auth, **base, score=5, answered_at="2026-03-02T11:00:00Z")
    assert again.status_code == 201 and again.get_json()["score"] == 5
    # An answer older than the stored one changes nothing and says so with 200.
    stale = _answer(client, auth, **base, score=1, answered_at="2026-03-02T09:00:00")
    assert stale.status_code == 200 and stale.get_json()["score"] == 5
    listed = client.get(f"/api/v1/surveys?conversation_id={conv}", headers=auth).get_json()
    assert [(i["kind"], i["score"], i["answered_at"]) for i in listed["items"]] == [
        ("csat", 5, "2026-03-02T11:00:00Z")
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "csat", "score": 3}, "conversation_id"),
        ({"conversation_id": "1", "kind": "csat", "score": 3}, "conversation_id"),
        ({"conversation_id": 1, "kind": "ces", "score": 3}, "kind"),
        ({"conversation_id": 1, "score": 3}, "kind"),
        ({"conversation_id": 1, "kind": "csat"}, "score"),
        ({"conversation_id": 1, "kind": "csat", "score": 0}, "score"),
        ({"conversation_id": 1, "kind": "csat", "score": 6}, "score"),
        ({"conversation_id": 1, "kind": "nps", "score": 11}, "score"),
        ({"conversation_id": 1, "kind": "nps", "score": -1}, "score"),
        ({"conversation_id": 1, "kind": "nps", "score": 4.5}, "score"),
        ({"conversation_id": 1, "kind": "nps", "score": True}, "score"),
        (
            {"conversation_id": 1, "kind": "nps", "score": 4, "answered_at": "yesterday"},
            "answered_at",
        ),
        (
            {"conversation_id": 1, "kind": "nps", "score": 4, "answered_at": 1700000000},
            "answered_at",
        ),
    ],
)
def test_validation_names_the_field(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    _conversations(client, auth, 1)
    resp = client.post("/api/v1/surveys", headers=auth, json=body)
    error = resp.get_json()["error"]
    assert resp.status_code == 400 and error["code"] == "validation_failed"
    assert error["message"].startswith(f"{field}:")


def test_unknown_conversation_is_404_and_bad_filters_400(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    resp = _answer(client, auth, conversation_id=999, kind="nps", score=9)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    assert client.post("/api/v1/surveys", headers=auth, data="[]").status_code == 400
    assert client.get("/api/v1/surveys?kind=ces", headers=auth).status_code == 400
    assert client.get("/api/v1/surveys?conversation_id=x", headers=auth).status_code == 400
    assert client.get("/api/v1/surveys").status_code == 401
