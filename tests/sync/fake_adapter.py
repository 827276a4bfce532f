"""A scripted CRM adapter: records every call, fails as told."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from crm_adapters.base import (
    BatchResult,
    CallLimiter,
    CampaignRecord,
    ContactRecord,
    DealRecord,
    FieldInfo,
    FieldSpec,
    FieldWrite,
    MessageRecord,
    Rate,
    Rejected,
)
from crm_adapters.errors import CrmError


@dataclass
class FakeAdapter:
    name: ClassVar[str] = "fake"
    MAX_BATCH: ClassVar[int] = 100
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)
    fail_next: list[CrmError] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # key -> message (per record)
    poison: set[str] = field(default_factory=set)  # key -> whole call raises Permanent
    refreshed: int = 0
    created: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, limiter: CallLimiter) -> Self:
        return cls()

    def rate_limits(self) -> dict[str, Rate]:
        return {}

    def refresh_auth(self) -> None:
        self.refreshed += 1

    def _batch(self, op: str, records: list[Any], key: str) -> BatchResult:
        from crm_adapters.errors import Permanent

        self.calls.append((op, records))
        if self.fail_next:
            raise self.fail_next.pop(0)
        keys = [getattr(r, key) for r in records]
        if self.poison & set(keys):
            raise Permanent("400 INVALID: the request was refused")
        ok = {
            k: self.created.setdefault(k, f"crm-{len(self.created) + 1}")
            for k in keys
            if k not in self.refuse
        }
        rejected = tuple(
            Rejected(key=k, message=self.refuse[k], code="INVALID")
            for k in keys
            if k in self.refuse
        )
        return BatchResult(ok=ok, rejected=rejected)

    def upsert_contacts(self, batch: list[ContactRecord]) -> BatchResult:
        return self._batch("upsert_contacts", batch, "key")

    def log_messages(self, batch: list[MessageRecord]) -> BatchResult:
        return self._batch("log_messages", batch, "key")

    def write_fields(self, object_type: str, rows: list[FieldWrite]) -> BatchResult:
        return self._batch(f"write_fields:{object_type}", rows, "crm_id")

    def fetch_deals(self, since: datetime | None) -> list[DealRecord]:
        return []

    def fetch_campaigns(self, since: datetime | None) -> list[CampaignRecord]:
        return []

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        return {}

    def provision_fields(self, specs: list[FieldSpec]) -> list[str]:
        return [s.name for s in specs]

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)
