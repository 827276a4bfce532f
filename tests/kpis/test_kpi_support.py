"""Support KPIs pinned by a hand-worked timeline (T0 = Monday 2026-03-02 09:00 UTC).

Conversations (every one is resolved by timeout at its last message: the run's clock is
months later):
  A  wa 1, customer: in 09:00:00, in 09:00:30, bot 09:01:00, in 09:05:00, alice 09:09:00,
     in 09:10:00, alice 09:20:00
  B  wa 2, customer: in 10:00:00, never answered
  C  wa 1, customer, Wednesday: in 09:00:00, bob 09:00:10  (A's contact is back within 7 d)
  D  wa 3, business: campaign template 11:00, in 11:30, carol 11:45
  E  wa 4, customer: in 14:00:00, bot 14:00:05
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.kpis import SCOPES, Period
from tests.kpis.timeline import Timeline
from tests.payloads import T0, at

WA1, WA2, WA3, WA4 = "16505550001", "16505550002", "16505550003", "16505550004"


@pytest.fixture
def timeline(client: Any, signer: Any, auth: dict[str, str], db: Any) -> Timeline:
    t = Timeline(client, signer, auth, db)
    t.inbound(WA1, at(0))
    t.inbound(WA1, at(0.5))
    t.outbound(WA1, at(1), sender_kind="bot")
    t.inbound(WA1, at(5))
    t.outbound(WA1, at(9), agent_id="alice")
    t.inbound(WA1, at(10))
    t.outbound(WA1, at(20), agent_id="alice")
    t.inbound(WA2, at(60))
    t.inbound(WA1, at(days=2))
    t.outbound(WA1, at(days=2, minutes=10 / 60), agent_id="bob")
    t.outbound(WA3, at(120), campaign_id="spring", template={"name": "promo", "language": "en"})
    t.inbound(WA3, at(150))
    t.outbound(WA3, at(165), agent_id="carol")
    t.inbound(WA4, at(300))
    t.outbound(WA4, at(300 + 5 / 60), sender_kind="bot")
    return t


def test_account_support_kpis(timeline: Timeline) -> None:
    k = timeline.kpis()["account"]
    # frt over customer-initiated, answered: A 60 s, C 10 s, E 5 s; B is unanswered.
    # sorted [5, 10, 60]: mean 75/3 = 25, median 10, p90 at 0.9·2 = 1.8 → 10 + 0.8·50 = 50
    assert k["frt"] == {"mean": 25.0, "median": 10.0, "p90": 50.0, "count": 3}
    assert k["unanswered_conversations"] == 1
    # frt_human: A alice 09:09 - 09:00 = 540, C bob 10 → mean 275, p90 10 + 0.9·530 = 487
    assert k["frt_human"] == {"mean": 275.0, "median": 275.0, "p90": 487.0, "count": 2}
    # reply_time waits ended by a human: A 240 (09:05→09:09), A 600 (09:10→09:20), C 10,
    # D 900 (11:30→11:45); A's first wait ended by the bot gives no sample.
    # sorted [10, 240, 600, 900]: mean 1750/4 = 437.5, median (240+600)/2 = 420,
    # p90 at 0.9·3 = 2.7 → 600 + 0.7·300 = 810
    assert k["reply_time"] == {"mean": 437.5, "median": 420.0, "p90": 810.0, "count": 4}
    # art over resolved conversations with a customer message: A 1200, B 0, C 10, D 2700, E 5
    # sorted [0, 5, 10, 1200, 2700]: mean 3915/5 = 783, median 10, p90 at 3.6 → 1200+0.6·1500
    assert k["art"] == {"mean": 783.0, "median": 10.0, "p90": 2100.0, "count": 5}
    assert k["resolved_conversations"] == 5
    # FCR: A is followed by C (same contact, 2 days < 7 d) → 4 of 5 = 80 %
    assert k["fcr_rate"] == 80.0 and k["repeat_contact_rate"] == 20.0
    # SLA: frt ≤ 15 min for all 3 answered; resolution ≤ 510 s for B, C, E → 3/5
    assert k["frt_sla_met_rate"] == 100.0
    assert k["resolution_sla_met_rate"] == 60.0
    # automation: only E was resolved with replies and no human → 1/5; B had no reply at all
    assert k["automation_rate"] == 20.0 and k["automated_resolutions"] == 1
    # volume: 5 conversations; messages A 7, B 1, C 2, D 3, E 2 = 15 (8 in, 7 out)
    assert k["conversation_volume"] == 5
    assert (k["message_volume"], k["inbound_messages"], k["outbound_messages"]) == (15, 8, 7)


def test_agent_scope_credits_the_replier(timeline: Timeline, db: Any) -> None:
    from sqlalchemy import select

    from connector.models import Agent

    with db.session() as session:
        ids = {a.external_id: str(a.id) for a in session.scalars(select(Agent))}
    by_agent = timeline.kpis("agent")
    alice, bob, carol = by_agent[ids["alice"]], by_agent[ids["bob"]], by_agent[ids["carol"]]
    assert alice["frt_human"]["mean"] == 540.0 and bob["frt_human"]["mean"] == 10.0
    assert alice["reply_time"] == {"mean": 420.0, "median": 420.0, "p90": 564.0, "count": 2}
    assert carol["reply_time"]["count"] == 1 and carol["reply_time"]["mean"] == 900.0
    # Conversations are assigned to their first agent: A alice (not FCR), C bob, D carol.
    assert alice["fcr_rate"] == 0.0 and bob["fcr_rate"] == 100.0 and carol["fcr_rate"] == 100.0


def test_period_is_half_open(timeline: Timeline) -> None:
    # Monday only: A, B, D, E opened; C (Wednesday) is outside, so A is still not FCR? A's
    # repeat is judged on all data (C exists), only the resolved set is limited to Monday.
    monday = Period(at(0), at(days=1))
    k = timeline.kpis(period=monday)["account"]
    assert k["conversation_volume"] == 4
    assert k["frt"]["count"] == 2  # A 60, E 5
    assert k["fcr_rate"] == 75.0  # B, D, E of A, B, D, E
    wednesday = Period(at(days=2), at(days=3))
    k = timeline.kpis(period=wednesday)["account"]
    assert k["conversation_volume"] == 1 and k["frt"]["mean"] == 10.0
    # A period starting exactly at C's first message includes it; one ending there does not.
    assert (
        timeline.kpis(period=Period(at(days=1), at(days=2)))["account"]["conversation_volume"] == 0
    )


def test_api_report_with_previous_baseline(timeline: Timeline, client: Any, auth: Any) -> None:
    # Wednesday + Thursday vs the two days before (Monday + Tuesday): volume 1 vs 4
    url = "/api/v1/kpis?from=2026-03-04&to=2026-03-06&baseline=previous"
    body = client.get(url, headers=auth).get_json()
    assert body["scope"] == "account" and body["from"] == "2026-03-04T00:00:00Z"
    assert body["baseline"]["from"] == "2026-03-02T00:00:00Z"
    assert body["kpis"]["conversation_volume"] == 1
    assert body["baseline"]["kpis"]["conversation_volume"] == 4
    # absolute 1 - 4 = -3; relative -3 / 4 = -75 %
    assert body["change"]["conversation_volume"] == {"absolute": -3.0, "relative": -75.0}
    # frt mean 10 (C) vs 32.5 (A 60, E 5): -22.5, -22.5 / 32.5 = -69.2308 %
    assert body["change"]["frt"]["mean"] == {"absolute": -22.5, "relative": -69.2308}
    # Wednesday 09:00 UTC is hour-of-week 2·24 + 9 = 57 (C's one inbound message)
    assert body["volume_by_hour_of_week"][57] == 1
    assert sum(body["volume_by_hour_of_week"]) == 1
    agent = client.get("/api/v1/kpis?scope=agent&id=alice", headers=auth).get_json()
    assert agent["id"] == "alice" and agent["kpis"]["frt_human"]["mean"] == 540.0
    missing = client.get("/api/v1/kpis?scope=agent&id=nobody", headers=auth)
    assert missing.status_code == 404
    bad = client.get("/api/v1/kpis?scope=planet", headers=auth)
    assert bad.status_code == 400 and "scope" in bad.get_json()["error"]["message"]
    assert client.get("/api/v1/kpis?from=yesterday", headers=auth).status_code == 400


def test_handoff_and_transfer(client: Any, signer: Any, auth: Any, db: Any) -> None:
    """F: in 09:00, bot 09:00:05, handed to dave 09:10, dave 09:12, transferred to erin.
    frt = 5 s; frt_human = 09:12 - max(09:00, handoff 09:10) = 120 s; a transfer → not FCR."""
    t = Timeline(client, signer, auth, db)
    t.inbound(WA4, at(0))
    t.outbound(WA4, at(5 / 60), sender_kind="bot")
    conv_id = client.get("/api/v1/conversations", headers=auth).get_json()["items"][0]["id"]
    handoff = {"agent_id": "dave", "at": at(10).isoformat()}
    first = client.post(f"/api/v1/conversations/{conv_id}/assign", json=handoff, headers=auth)
    assert first.status_code == 200 and first.get_json()["transfers"] == 0
    t.outbound(WA4, at(12), agent_id="dave")
    k = t.kpis()["account"]
    assert k["frt"]["mean"] == 5.0 and k["frt_human"]["mean"] == 120.0
    assert k["fcr_rate"] == 100.0
    moved = client.post(
        f"/api/v1/conversations/{conv_id}/assign", json={"agent_id": "erin"}, headers=auth
    )
    assert moved.get_json()["transfers"] == 1
    assert t.kpis()["account"]["fcr_rate"] == 0.0
    bad = client.post(f"/api/v1/conversations/{conv_id}/assign", json={}, headers=auth)
    assert bad.status_code == 400
    assert (
        client.post("/api/v1/conversations/999/assign", json=handoff, headers=auth).status_code
        == 404
    )


# How the touched conversations are read: picked out of a scan, through the indexes (a
# small share of all conversations), or all of them (most conversations).
STRATEGIES = {"filter": (-1.0, 2.0), "lookups": (2.0, 2.0), "everything": (-1.0, -1.0)}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("scope", ["agent", "campaign", "contact", "phone_number", "deal"])
def test_incremental_ids_give_the_same_numbers(
    timeline: Timeline, scope: str, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Computing only some ids (the write-back's incremental path) changes nothing."""
    from connector.kpis import KpiOptions, compute, query

    lookup_share, scan_share = STRATEGIES[strategy]
    monkeypatch.setattr(query, "LOOKUP_SHARE", lookup_share)
    monkeypatch.setattr(query, "SCAN_SHARE", scan_share)
    everything = timeline.kpis(scope)
    with timeline.db.session() as session:
        for key, values in everything.items():
            alone = compute(session, KpiOptions(), scope, Period(), [key], now=at(days=400))
            assert alone == {key: values}, key


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_first_human_agent_tie_goes_to_the_first_recorded(
    client: Any, signer: Any, auth: dict[str, str], db: Any, strategy: str, monkeypatch: Any
) -> None:
    """Two agents answer in the same second: the conversation's first human agent is the
    one whose message was recorded first (the lower message id), whatever their agent ids.

    dave is seen first (the lower agent id); in the tied conversation erin's reply is
    recorded before dave's, so erin gets its first human response: 10 s, count 1."""
    from sqlalchemy import select

    from connector.kpis import KpiOptions, compute, query
    from connector.models import Agent

    monkeypatch.setattr(query, "LOOKUP_SHARE", STRATEGIES[strategy][0])
    monkeypatch.setattr(query, "SCAN_SHARE", STRATEGIES[strategy][1])
    t = Timeline(client, signer, auth, db)
    t.inbound(WA2, at(0))
    t.outbound(WA2, at(1), agent_id="dave")
    t.inbound(WA1, at(days=1))
    t.outbound(WA1, at(days=1, minutes=10 / 60), agent_id="erin")
    t.outbound(WA1, at(days=1, minutes=10 / 60), agent_id="dave")
    with db.session() as session:
        ids = {a.external_id: str(a.id) for a in session.scalars(select(Agent))}
        assert int(ids["dave"]) < int(ids["erin"])
        wanted = [ids["dave"], ids["erin"]]
        found = compute(session, KpiOptions(), "agent", Period(), wanted, now=at(days=400))
    assert found[ids["erin"]]["frt_human"]["count"] == 1  # the tied conversation
    assert found[ids["erin"]]["frt_human"]["mean"] == 10.0
    assert found[ids["dave"]]["frt_human"]["count"] == 1  # only his own first conversation
    assert found[ids["dave"]]["frt_human"]["mean"] == 60.0
    assert found == t.kpis("agent")


def test_full_recompute_from_temporary_tables_matches(timeline: Timeline) -> None:
    """compute_all materialises the message aggregates once; the numbers are the same."""
    from connector.kpis import SCOPES, KpiOptions, Period
    from connector.kpis.engine import compute_all

    now = T0.replace(year=T0.year + 1)
    with timeline.db.session() as session:
        together: dict[str, dict[str, Any]] = {scope: {} for scope in SCOPES}
        # chunk=2: the biggest scopes are computed two ids at a time
        for scope, part in compute_all(session, KpiOptions(), SCOPES, Period(), now=now, chunk=2):
            together[scope].update(part)
    for scope in SCOPES:
        assert together[scope] == timeline.kpis(scope, now=now), scope


def test_go_live_baseline(timeline: Timeline) -> None:
    """Go-live Wednesday 2026-03-04 00:00 UTC, report to Friday 09:00: after = 2 d 9 h from
    go-live, baseline = the same 2 d 9 h before it (Sunday 15:00 to Wednesday 00:00).
    Volume 1 after (C) vs 4 before (A, B, D, E)."""
    from datetime import UTC, date, datetime, timedelta

    from connector.kpis import KpiOptions
    from connector.kpis.report import report, with_baseline

    opts = KpiOptions(go_live=date(2026, 3, 4))
    now = T0.replace(year=T0.year + 1)
    go = datetime(2026, 3, 4, tzinfo=UTC)
    period, baseline = with_baseline("go_live", Period(None, at(days=4)), opts, now)
    assert period == Period(go, at(days=4))
    assert baseline == Period(go - timedelta(days=2, hours=9), go)
    with timeline.db.session() as session:
        body = report(session, opts, "account", None, period, now=now, baseline=baseline)
    assert body["kpis"]["conversation_volume"] == 1
    assert body["baseline"]["kpis"]["conversation_volume"] == 4


# -- PostgreSQL: a full recompute on several connections (connector.kpis.side_by_side)


def _postgresql_only(db: Any) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("several connections work side by side on PostgreSQL only")


def _run_tables(db: Any) -> list[str]:
    from sqlalchemy import text

    with db.engine.connect() as conn:
        found = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'kpi_run%'")
        )
        return sorted(found)


def _full(session: Any, chunk: int = 2) -> Any:
    from connector.kpis import SCOPES, KpiOptions
    from connector.kpis.engine import compute_all

    return compute_all(
        session, KpiOptions(), SCOPES, Period(), now=T0.replace(year=T0.year + 1), chunk=chunk
    )


def test_full_recompute_side_by_side(timeline: Timeline, db: Any) -> None:
    """The sources are filled into UNLOGGED tables by other connections and each scope is
    read on its own connection: same numbers, nothing left behind, and the tables of a run
    whose backend is gone are swept."""
    from sqlalchemy import event, text

    from connector.kpis import SCOPES

    _postgresql_only(db)
    with db.engine.begin() as conn:
        alive = set(conn.scalars(text("SELECT pid FROM pg_stat_activity")))
        dead = next(pid for pid in range(4_000_000, 4_100_000) if pid not in alive)
        conn.execute(text(f"CREATE UNLOGGED TABLE kpi_run{dead}_convs (cid bigint)"))
    created: list[str] = []

    def seen(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        if sql.startswith("CREATE UNLOGGED TABLE"):
            created.append(sql.split()[3])

    event.listen(db.engine, "before_cursor_execute", seen)
    together: dict[str, dict[str, Any]] = {scope: {} for scope in SCOPES}
    with db.session() as session:
        for scope, part in _full(session):
            together[scope].update(part)
    event.remove(db.engine, "before_cursor_execute", seen)
    assert sorted(name.rsplit("_", 1)[1] for name in created) == [
        "convs",
        "replies",
        "sends",
        "touches",
        "traffic",
    ]
    assert _run_tables(db) == []
    now = T0.replace(year=T0.year + 1)
    for scope in SCOPES:
        assert together[scope] == timeline.kpis(scope, now=now), scope


def test_side_by_side_fills_see_the_callers_snapshot(
    timeline: Timeline, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message committed after the computation took its snapshot is not counted, even
    though the connections filling the sources start later."""
    from connector.kpis import side_by_side

    _postgresql_only(db)
    fill = side_by_side._fill

    def late_message(*args: Any) -> None:
        timeline.inbound(WA2, at(61))  # committed by the webhook, after the snapshot
        fill(*args)

    monkeypatch.setattr(side_by_side, "_fill", late_message)
    with db.session() as session:
        account = dict(_full(session))["account"]["account"]
    assert account["message_volume"] == 15  # as before the late message
    assert timeline.kpis()["account"]["message_volume"] == 16


def test_written_transaction_computes_on_its_own_connection(timeline: Timeline, db: Any) -> None:
    """Other connections cannot see uncommitted rows: a transaction that wrote computes
    everything itself, and sees its own writes."""
    from sqlalchemy import update

    from connector.models import Conversation

    with db.session() as session:
        session.execute(update(Conversation).values(initiated_by="business"))
        account = dict(_full(session))["account"]["account"]
        session.rollback()
    assert account["unanswered_conversations"] == 0  # B was unanswered, now business-initiated
    assert timeline.kpis()["account"]["unanswered_conversations"] == 1


def test_side_by_side_failure_and_early_stop_leave_nothing(
    timeline: Timeline, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scope failing on its connection raises in the caller; a caller that stops reading
    early stops the readers; either way the tables are dropped."""
    from connector.kpis import side_by_side

    _postgresql_only(db)
    with db.session() as session:
        chunks = _full(session, chunk=1)
        assert next(chunks)[0] in SCOPES  # scopes arrive in the order their rows do
        chunks.close()
    assert _run_tables(db) == []

    def broken(q: Any, memo: Any) -> Any:
        raise RuntimeError(f"utilization failed for {q.scope}")

    monkeypatch.setattr(side_by_side.utilization, "compute", broken)
    with db.session() as session, pytest.raises(RuntimeError, match="utilization failed for "):
        list(_full(session))
    assert _run_tables(db) == []


def test_side_by_side_over_ids_matches_one_connection(
    timeline: Timeline, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A computation over given ids spreads too (the ids are loaded on another connection,
    so the caller's transaction stays unwritten and its next computation spreads as well);
    the numbers are those of one connection."""
    from sqlalchemy import event

    from connector.kpis import SCOPES, KpiOptions, compute, side_by_side

    _postgresql_only(db)
    now = T0.replace(year=T0.year + 1)
    created: list[str] = []

    def seen(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        if sql.startswith("CREATE UNLOGGED TABLE"):
            created.append(sql.split()[3])

    spread: dict[str, Any] = {}
    wanted = {scope: sorted(timeline.kpis(scope, now=now))[:2] for scope in SCOPES}
    event.listen(db.engine, "before_cursor_execute", seen)
    with db.session() as session:
        for scope, ids in wanted.items():
            spread[scope] = compute(session, KpiOptions(), scope, Period(), ids, now=now)
    event.remove(db.engine, "before_cursor_execute", seen)
    assert len(created) == 5 * len(SCOPES)  # every computation of the one session spread
    assert _run_tables(db) == []
    monkeypatch.setattr(side_by_side, "possible", lambda session: False)
    with db.session() as session:
        for scope in SCOPES:
            ids = sorted(spread[scope])
            alone = compute(session, KpiOptions(), scope, Period(), ids, now=now)
            assert alone == spread[scope], scope
