"""Several scopes computed together (the write-back's incremental path) give each scope the
numbers of a full recompute, on the benchmark's seeded history and its increment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from benchmarks.kpis_data import DAY, END, HOUR, PostgresSink, SqliteSink, generate
from benchmarks.kpis_data import Generator as History
from connector.db import make_engine
from connector.kpis import SCOPES, KpiOptions, Period, compute_many, query, side_by_side
from connector.kpis.engine import compute_all

NOW = datetime.fromtimestamp(END + 3 * HOUR, UTC)
# How the touched conversations are read (LOOKUP_SHARE, SCAN_SHARE): picked out of a scan,
# through the indexes, or all of them.
STRATEGIES = {"filter": (-1.0, 2.0), "lookups": (2.0, 2.0), "everything": (-1.0, -1.0)}
# All time, and a period that cuts conversations (and the increment) in two.
PERIODS = {
    "all": Period(),
    "cut": Period(
        datetime.fromtimestamp(END - 20 * DAY, UTC), datetime.fromtimestamp(END + 2 * HOUR, UTC)
    ),
}

# A scope's ids computed by one statement, or shared between SPANS statements (PostgreSQL).
SPAN_IDS = {"whole": side_by_side.SPAN_IDS, "split": 1}


@pytest.fixture
def seeded(db_url: str) -> tuple[str, dict[str, list[str]]]:
    """1 500 generated conversations, then 5 % new traffic: the keys it touched per scope."""

    def sink() -> Any:
        if db_url.startswith("sqlite"):
            return SqliteSink(db_url.removeprefix("sqlite:///"))
        return PostgresSink(db_url)

    history = sink()
    generate(history, 1_500)
    history.close()
    more = sink()
    touched = History(more, 0, 7).increment(0.05, END + HOUR, HOUR)
    more.close()
    return db_url, touched.as_dict()


@pytest.mark.parametrize("spans", sorted(SPAN_IDS))
@pytest.mark.parametrize("period", sorted(PERIODS))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_scopes_together_match_a_full_recompute(
    seeded: tuple[str, dict[str, list[str]]],
    strategy: str,
    period: str,
    spans: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, touched = seeded
    if spans == "split" and url.startswith("sqlite"):
        pytest.skip("one connection: nothing computed side by side")
    monkeypatch.setattr(side_by_side, "SPAN_IDS", SPAN_IDS[spans])
    split: list[int] = []
    spans_of = side_by_side._spans

    def counted(plan: Any, prepare: Any) -> Any:
        made = spans_of(plan, prepare)
        split.append(len(made))
        return made

    monkeypatch.setattr(side_by_side, "_spans", counted)
    during = PERIODS[period]
    monkeypatch.setattr(query, "LOOKUP_SHARE", STRATEGIES[strategy][0])
    monkeypatch.setattr(query, "SCAN_SHARE", STRATEGIES[strategy][1])
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    opts = KpiOptions()
    try:
        with Session(engine) as session:
            full: dict[str, dict[str, Any]] = {scope: {} for scope in SCOPES}
            for scope, part in compute_all(session, opts, SCOPES, during, now=NOW):
                full[scope].update(part)
        # Every scope with a CRM record at once (one group), and all six (an agent or a
        # business number reads every conversation: a second group beside the few).
        for scopes in (("campaign", "deal", "contact"), SCOPES):
            wanted = {scope: touched[scope] for scope in scopes}
            assert all(wanted.values())
            with Session(engine) as session:
                together = compute_many(session, opts, wanted, during, now=NOW)
            for scope, ids in wanted.items():
                assert set(together[scope]) == set(ids), scope
                for key in ids:
                    assert together[scope][key] == full[scope][key], (scope, key)
        if spans == "split":
            assert max(split) == side_by_side.SPANS  # the split was exercised
    finally:
        engine.dispose()
