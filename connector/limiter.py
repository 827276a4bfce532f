"""A token bucket per CRM bucket, kept in the database so every worker process shares it.

A CRM's "N calls per rolling W seconds" is not met by a plain bucket of N tokens (a full
bucket plus a window of refill would allow 2N). With burst B and refill r, any window sees
at most B + r·W calls, so we keep B small (10 % of the allowance) and refill the rest:
B + r·W = N·margin. Batched writes need throughput, not bursts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import select

from connector.db import Database, insert_ignore
from connector.models import RateBucket, utcnow
from crm_adapters.base import Rate
from crm_adapters.errors import RateLimited

MARGIN = 0.9
BURST_SHARE = 0.1


class DbLimiter:
    """``CallLimiter`` backed by ``rate_buckets`` rows (locked per acquire)."""

    def __init__(
        self,
        db: Database,
        rates: Mapping[str, Rate],
        *,
        account: str = "",
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.rates = dict(rates)
        self.account = account
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock

    def _shape(self, rate: Rate) -> tuple[float, float]:
        allowance = rate.calls * MARGIN
        capacity = max(1.0, allowance * BURST_SHARE)
        refill = max(allowance - capacity, 0.1 * rate.calls)
        return capacity, refill / rate.seconds

    def acquire(self, bucket: str, weight: int = 1) -> None:
        rate = self.rates.get(bucket)
        if rate is None:
            return
        waited = 0.0
        while True:
            wait = self._try_take(bucket, rate, weight)
            if wait <= 0:
                return
            if waited + wait > self.max_wait:
                raise RateLimited(f"local limiter: {bucket} saturated", retry_after=wait)
            self.sleep(wait)
            waited += wait

    def _try_take(self, bucket: str, rate: Rate, weight: int) -> float:
        """Take ``weight`` tokens if there; else return the seconds until there will be."""
        capacity, per_second = self._shape(rate)
        name, now = f"{self.account}:{bucket}", self.clock()
        with self.db.session() as session:
            insert_ignore(
                session, RateBucket, {"name": name, "tokens": capacity, "updated_at": now}, ["name"]
            )
            row = session.scalars(
                select(RateBucket).where(RateBucket.name == name).with_for_update()
            ).one()
            elapsed = max(0.0, (now - row.updated_at).total_seconds())
            tokens = min(capacity, row.tokens + elapsed * per_second)
            row.updated_at = now
            if tokens >= weight - 1e-6:  # float dust must not leave a caller waiting 0 s
                row.tokens = max(0.0, tokens - weight)
                return 0.0
            row.tokens = tokens
            return max(0.001, (weight - tokens) / per_second)
