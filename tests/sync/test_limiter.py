"""The shared limiter keeps every rolling window under the CRM's published limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.db import Database
from connector.limiter import DbLimiter
from crm_adapters.base import Rate
from crm_adapters.errors import RateLimited


def worst_window(stamps: list[datetime], seconds: float) -> int:
    """The most calls that fell inside any window of ``seconds``."""
    width = timedelta(seconds=seconds)
    return max(sum(1 for s in stamps if start <= s < start + width) for start in stamps)


class FakeTime:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_no_rolling_window_exceeds_the_limit(db: Database) -> None:
    t = FakeTime()
    limiter = DbLimiter(
        db,
        {"hubspot:default": Rate(calls=100, seconds=10)},
        account="acct",
        sleep=t.sleep,
        clock=t.clock,
        max_wait=60,
    )
    stamps = []
    for _ in range(400):
        limiter.acquire("hubspot:default")
        stamps.append(t.now)
    worst = worst_window(stamps, 10)
    assert worst <= 90  # HubSpot allows 100 per rolling 10 s; we keep a 10 % margin
    elapsed = (stamps[-1] - stamps[0]).total_seconds()
    assert 400 / elapsed > 7.5  # and not needlessly slow: 8.1 calls/s sustained


def test_two_processes_share_one_bucket(db: Database) -> None:
    t = FakeTime()
    a = DbLimiter(db, {"s": Rate(calls=10, seconds=1)}, account="x", sleep=t.sleep, clock=t.clock)
    b = DbLimiter(db, {"s": Rate(calls=10, seconds=1)}, account="x", sleep=t.sleep, clock=t.clock)
    for _ in range(4):
        a.acquire("s")
        b.acquire("s")
    assert t.now > datetime(2026, 1, 1, tzinfo=UTC)  # the 9th call had to wait


def test_saturated_bucket_raises_rate_limited(db: Database) -> None:
    t = FakeTime()
    limiter = DbLimiter(
        db, {"s": Rate(calls=5, seconds=1)}, sleep=t.sleep, clock=t.clock, max_wait=0.1
    )
    with pytest.raises(RateLimited):
        for _ in range(10):
            limiter.acquire("s")


def test_unknown_bucket_is_unlimited(db: Database) -> None:
    DbLimiter(db, {}).acquire("anything")


def test_search_limit_of_five_per_second_holds(db: Database) -> None:
    t = FakeTime()
    limiter = DbLimiter(
        db, {"hubspot:search": Rate(calls=5, seconds=1)}, sleep=t.sleep, clock=t.clock, max_wait=60
    )
    stamps = []
    for _ in range(100):
        limiter.acquire("hubspot:search")
        stamps.append(t.now)
    worst = worst_window(stamps, 1)
    assert worst <= 5
    assert 100 / (stamps[-1] - stamps[0]).total_seconds() > 3.4  # 3.5 searches/s sustained
