"""Salesforce's daily API allowance, read from ``Sforce-Limit-Info`` (CRM_API_NOTES §3.5).

Salesforce has no per-second REST limit and never sends 429 or ``Retry-After``: the org has a
rolling 24 h allowance, reported on every response as ``api-usage=used/total`` (parsed by
simple-salesforce into ``sf.api_usage``), and answers 403 ``REQUEST_LIMIT_EXCEEDED`` once
it is spent. Stopping at a share of it leaves room for the org's other integrations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from simple_salesforce.util import Usage

from crm_adapters.base import Rate
from crm_adapters.errors import RateLimited

BUCKET = "salesforce:api"
# 25 is the org's cap on concurrent long-running requests: a conservative pace for one
# account, since no per-second limit is published.
DEFAULT_RATE = Rate(calls=25, seconds=1.0)
# Once the share is reached, wait this long before letting one call through to read a
# fresh header: the rolling window frees up gradually, so polling faster buys nothing.
ALLOWANCE_PAUSE = 15 * 60.0


class DailyAllowance:
    """Refuses calls while the last reading is at or over ``share`` of the allowance.

    Args:
        share: Fraction of the daily allowance this connector may use, e.g. 0.8.
        clock: Monotonic seconds.

    Each worker process keeps its own reading; that is enough because every response
    refreshes it and the pause is long compared with one batch.
    """

    def __init__(self, share: float, clock: Callable[[], float]) -> None:
        self.share = share
        self._clock = clock
        self._probe_at: float | None = None

    def check(self, api_usage: Mapping[str, Any]) -> None:
        """Raise before a call while the allowance is over the share.

        Args:
            api_usage: ``Salesforce.api_usage`` from the last response.

        Raises:
            RateLimited: With the seconds left until one probing call is allowed.
        """
        usage = api_usage.get("api-usage")
        if (
            not isinstance(usage, Usage)
            or usage.total <= 0
            or usage.used < usage.total * self.share
        ):
            self._probe_at = None
            return
        now = self._clock()
        if self._probe_at is None:
            self._probe_at = now + ALLOWANCE_PAUSE
        if now < self._probe_at:
            raise RateLimited(
                f"Salesforce daily API usage {usage.used}/{usage.total} is at or over the "
                f"configured share {self.share:g}",
                retry_after=self._probe_at - now,
            )
        self._probe_at = None  # pause over: this call refreshes the reading
