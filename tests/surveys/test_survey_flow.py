"""Surveys end to end: resolve → the job sends → status → answer, through real webhooks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from connector import create_app
from connector import surveys as survey_job
from connector.config_file import SurveyTexts
from connector.db import get_db
from connector.kpis import KpiOptions, Period, compute
from connector.models import Message, utcnow
from connector.settings_ext import file_config_of, settings_of
from tests.conftest import base_config
from tests.payloads import status
from tests.surveys.survey_helpers import (
    GRAPH_PATH,
    STAR,
    WA_ID,
    conversation_count,
    graph_ok,
    later,
    list_reply,
    post,
    recent,
    resolved_conversation,
    responses,
    sending_app,
    sent_bodies,
    surveys,
    text,
    tick,
)

TEXTS = SurveyTexts()


def _message(app: object, wamid: str) -> tuple[str, int | None]:
    with get_db(app).session() as s:  # type: ignore[arg-type]
        row = s.scalars(select(Message).where(Message.wamid == wamid)).one()
        return row.sender_kind, row.conversation_id


def test_csat_list_then_nps_text_full_flow(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = sending_app(db_url, tmp_path, httpserver, WACRM_SURVEYS="csat,nps")
    client = app.test_client()
    conv_id = resolved_conversation(client, auth, recent() - timedelta(minutes=30))
    httpserver.expect_oneshot_request(GRAPH_PATH, method="POST").respond_with_json(
        graph_ok("wamid.CSAT")
    )
    tick(app)
    (survey,) = surveys(app)
    sid = survey.id
    assert (survey.conversation_id, survey.kind, survey.scale, survey.wamid) == (
        conv_id,
        "csat",
        5,
        "wamid.CSAT",
    )
    assert survey.expires_at - survey.sent_at == timedelta(hours=24)
    # The documented Cloud API interactive list: body, button ≤ 20 chars, rows ≤ 10 with
    # id ≤ 200 and title ≤ 24 chars; a single section needs no title.
    assert sent_bodies(httpserver) == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": WA_ID,
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": TEXTS.csat},
                "action": {
                    "button": f"1 - 5 {STAR}",
                    "sections": [
                        {
                            "rows": [
                                {"id": f"survey:{sid}:{n}", "title": f"{n} " + STAR * n}
                                for n in (5, 4, 3, 2, 1)
                            ]
                        }
                    ],
                },
            },
        }
    ]
    # NPS waits for the CSAT answer: another beat sends nothing.
    tick(app)
    assert len(httpserver.log) == 1

    delivered = later(survey.sent_at.replace(microsecond=0), seconds=5)
    post(client, status("wamid.CSAT", "delivered", delivered, wa_id=WA_ID))
    assert surveys(app)[0].delivered_at == delivered
    answered = later(delivered, minutes=1)
    list_reply(client, "wamid.a1", answered, f"survey:{sid}:4", f"4 {STAR * 4}", "wamid.CSAT")
    assert responses(app) == [(conv_id, "csat", 4, "interactive")]
    assert _message(app, "wamid.a1") == ("survey", None)
    assert _message(app, "wamid.CSAT") == ("survey", None)

    httpserver.expect_oneshot_request(GRAPH_PATH, method="POST").respond_with_json(
        graph_ok("wamid.NPS")
    )
    tick(app)
    assert sent_bodies(httpserver)[1] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"preview_url": False, "body": TEXTS.nps},
    }
    nps_sent = surveys(app)[1].sent_at.replace(microsecond=0)
    text(client, "wamid.a2", later(nps_sent, minutes=2), " 9 ")
    assert responses(app) == [(conv_id, "csat", 4, "interactive"), (conv_id, "nps", 9, "text")]
    # Survey traffic stays out of the conversation: one conversation, one message.
    assert conversation_count(app) == 1
    detail = client.get(f"/api/v1/conversations/{conv_id}", headers=auth).get_json()
    assert [m["wamid"] for m in detail["messages"]] == ["wamid.question"]
    with get_db(app).session() as s:
        k = compute(s, KpiOptions(), "account", Period(), now=utcnow() + timedelta(days=2))
    # CSAT 4 is satisfied (4-5) → 1/1 = 100 %; 1 answer ÷ 1 CSAT delivered = 100 %;
    # NPS 9 is a promoter → (1 - 0) / 1 = 100.
    assert (k["account"]["csat"], k["account"]["csat_response_rate"]) == (100.0, 100.0)
    assert k["account"]["nps"] == 100.0


def test_nps_only_is_sent_at_once_and_takes_a_number_out_of_ten(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = sending_app(db_url, tmp_path, httpserver, WACRM_SURVEYS="nps")
    client = app.test_client()
    conv_id = resolved_conversation(client, auth, recent() - timedelta(minutes=5))
    httpserver.expect_oneshot_request(GRAPH_PATH).respond_with_json(graph_ok("wamid.NPS"))
    tick(app)
    assert [b["type"] for b in sent_bodies(httpserver)] == ["text"]
    sent = surveys(app)[0].sent_at.replace(microsecond=0)
    text(client, "wamid.big", later(sent, minutes=1), "11")  # off the 0-10 scale
    text(client, "wamid.a", later(sent, minutes=2), "7/10")
    assert responses(app) == [(conv_id, "nps", 7, "text")]
    assert _message(app, "wamid.big")[0] == "customer"
    assert _message(app, "wamid.a") == ("survey", None)


def test_non_answers_during_the_window_are_normal_messages(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = sending_app(db_url, tmp_path, httpserver, WACRM_SURVEYS="csat")
    client = app.test_client()
    conv_id = resolved_conversation(client, auth, recent() - timedelta(minutes=5))
    httpserver.expect_oneshot_request(GRAPH_PATH).respond_with_json(graph_ok("wamid.CSAT"))
    tick(app)
    sent = surveys(app)[0].sent_at.replace(microsecond=0)
    for n, body in enumerate(("thanks!", "6", "4/10", "other:1:5")):
        text(client, f"wamid.n{n}", later(sent, seconds=10 + n), body)
    # An interactive reply id that is not ours is a normal message too.
    list_reply(client, "wamid.n9", later(sent, seconds=20), "priority_express", "Express", "x")
    assert responses(app) == []
    assert {_message(app, f"wamid.n{n}")[0] for n in (0, 1, 2, 3, 9)} == {"customer"}
    # They reopened the chat: one new conversation holds all five.
    assert conversation_count(app) == 2
    text(client, "wamid.late", later(sent, minutes=1), " 4/5 ")
    assert responses(app) == [(conv_id, "csat", 4, "text")]


def test_answer_after_the_window_opens_a_conversation(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = sending_app(db_url, tmp_path, httpserver, WACRM_SURVEYS="csat", WACRM_SURVEY_WINDOW="1h")
    client = app.test_client()
    resolved_conversation(client, auth, recent() - timedelta(minutes=5))
    httpserver.expect_oneshot_request(GRAPH_PATH).respond_with_json(graph_ok("wamid.CSAT"))
    tick(app)
    (survey,) = surveys(app)
    assert survey.expires_at - survey.sent_at == timedelta(hours=1)
    late = later(survey.sent_at.replace(microsecond=0), hours=1, seconds=1)
    list_reply(client, "wamid.late1", late, f"survey:{survey.id}:5", "5", "wamid.CSAT")
    text(client, "wamid.late2", late, "5")
    assert responses(app) == []
    assert _message(app, "wamid.late1")[0] == "customer"
    assert _message(app, "wamid.late2")[0] == "customer"
    assert conversation_count(app) == 2


def test_surveys_are_off_by_default(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = sending_app(db_url, tmp_path, httpserver)
    resolved_conversation(app.test_client(), auth, recent() - timedelta(minutes=5))
    tick(app)
    assert httpserver.log == [] and surveys(app) == []


def test_without_an_access_token_the_job_does_nothing(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = create_app(base_config(db_url, tmp_path, WACRM_SURVEYS="csat"))
    resolved_conversation(app.test_client(), auth, recent() - timedelta(minutes=5))
    tick(app)
    sent = survey_job.send_due(get_db(app), settings_of(app), file_config_of(app), now=utcnow())
    assert sent == 0 and httpserver.log == [] and surveys(app) == []


@pytest.mark.parametrize(("hours_ago", "expected"), [(23, 1), (25, 0)])
def test_only_inside_the_24h_customer_service_window(
    db_url: str,
    tmp_path: Path,
    httpserver: HTTPServer,
    auth: dict[str, str],
    hours_ago: int,
    expected: int,
) -> None:
    # Conversations stay open 48 h here, so one whose customer wrote 25 h ago is resolved
    # just now, well inside the 3-day survey window: only Meta's 24 h rule stops the send.
    app = sending_app(
        db_url,
        tmp_path,
        httpserver,
        WACRM_SURVEYS="csat",
        WACRM_SURVEY_WINDOW="3d",
        WACRM_AUTO_RESOLVE_AFTER="48h",
    )
    resolved_conversation(app.test_client(), auth, recent() - timedelta(hours=hours_ago))
    httpserver.expect_request(GRAPH_PATH).respond_with_json(graph_ok("wamid.CSAT"))
    tick(app)
    assert len(httpserver.log) == expected and len(surveys(app)) == expected


def test_a_refusal_is_recorded_and_not_retried(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = sending_app(db_url, tmp_path, httpserver, WACRM_SURVEYS="csat")
    resolved_conversation(app.test_client(), auth, recent() - timedelta(minutes=5))
    httpserver.expect_request(GRAPH_PATH).respond_with_json(
        {
            "error": {
                "message": "(#131047) Re-engagement message",
                "type": "OAuthException",
                "code": 131047,
                "fbtrace_id": "AbC",
            }
        },
        status=400,
    )
    tick(app)
    tick(app)
    (survey,) = surveys(app)
    assert len(httpserver.log) == 1
    assert survey.wamid is None and survey.error == "131047 (#131047) Re-engagement message"


def test_a_transient_refusal_is_retried_on_the_next_beat(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    app = sending_app(db_url, tmp_path, httpserver, WACRM_SURVEYS="csat")
    resolved_conversation(app.test_client(), auth, recent() - timedelta(minutes=5))
    httpserver.expect_ordered_request(GRAPH_PATH).respond_with_json(
        {"error": {"message": "Service unavailable", "code": 131016}}, status=503
    )
    httpserver.expect_ordered_request(GRAPH_PATH).respond_with_json(graph_ok("wamid.CSAT"))
    tick(app)
    assert surveys(app) == []
    tick(app)
    tick(app)
    assert len(httpserver.log) == 2
    assert [(s.wamid, s.error) for s in surveys(app)] == [("wamid.CSAT", None)]


def test_a_status_that_beats_the_record_is_taken_over(
    db_url: str, tmp_path: Path, httpserver: HTTPServer, auth: dict[str, str]
) -> None:
    """Meta's delivered webhook can land before we store the send: no stray conversation."""
    app = sending_app(db_url, tmp_path, httpserver, WACRM_SURVEYS="csat")
    client = app.test_client()
    resolved_conversation(client, auth, recent() - timedelta(minutes=5))
    delivered = recent() + timedelta(seconds=1)

    def answer_after_status(request: Request) -> Response:
        # Runs in the stub's thread while the job waits for this answer.
        post(app.test_client(), status("wamid.RACE", "delivered", delivered, wa_id=WA_ID))
        return Response(
            '{"messages": [{"id": "wamid.RACE"}]}', status=200, content_type="application/json"
        )

    httpserver.expect_request(GRAPH_PATH).respond_with_handler(answer_after_status)
    tick(app)
    (survey,) = surveys(app)
    assert (survey.wamid, survey.delivered_at) == ("wamid.RACE", delivered)
    assert _message(app, "wamid.RACE") == ("survey", None)
    assert conversation_count(app) == 1
