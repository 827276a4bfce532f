"""HubSpot adapter on the official ``hubspot-api-client`` (DESIGN §5).

Contacts are keyed by a unique contact property holding the wa_id (or ``bsuid:…``);
each WhatsApp message becomes one Communications record (channel ``WHATS_APP``) keyed by
a unique property holding the wamid, linked inline to its contact (typeId 81) and deal
(85). Agent KPIs go onto the Users object (``/crm/v3/objects/users``), keyed by the user
record id (``hs_object_id``), not the owner id. Every write is a batch of ≤100
(campaigns ≤50), every call takes a slot from the shared limiter first, and every vendor
failure is translated in one place (``_hubspot_errors.translate``).
Docs: https://developers.hubspot.com/docs/api-reference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

import hubspot
import structlog

from crm_adapters._hubspot_payloads import (
    CAMPAIGN_PROPERTIES,
    PROPERTY_TYPES,
    campaign_record,
    chunks,
    deal_record,
    deal_search,
    hubspot_value,
    message_input,
    parse_batch,
    parse_datetime,
    property_create,
)
from crm_adapters._hubspot_settings import HubSpotSettings
from crm_adapters._hubspot_transport import DEFAULT_BUCKET, SEARCH_BUCKET, Transport
from crm_adapters._hubspot_writes import log_chunk, resolve_contacts
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
    NoLimit,
    Rate,
    Rejected,
)
from crm_adapters.errors import Permanent

if TYPE_CHECKING:
    from crm_adapters.base import CrmAdapter

logger = structlog.get_logger(__name__)

__all__ = ["HubSpotAdapter", "HubSpotSettings"]

# Our object types → HubSpot CRM objects (campaigns live outside the CRM objects and
# properties APIs).
OBJECT_TYPES = {
    "contact": "contacts",
    "deal": "deals",
    "message": "communications",
    "user": "users",
}
# Messages are only ever created (log_messages); KPI write-back updates these.
WRITABLE = frozenset({"contact", "deal", "user", "campaign"})


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


class HubSpotAdapter:
    """``CrmAdapter`` for HubSpot; build with ``from_env`` or inject an SDK client.

    Args:
        client: A ``hubspot.Client`` (its ``host`` config is the base URL). Do not give
            it a urllib3 ``retry``: the outbox retries, and both would multiply.
        settings: Property names, burst limit and OAuth credentials.
        limiter: Shared by every worker of this HubSpot account.
        clock: Monotonic seconds, for OAuth expiry (tests inject one).
    """

    name: ClassVar[str] = "hubspot"
    MAX_BATCH: ClassVar[int] = 100
    CAMPAIGN_BATCH: ClassVar[int] = 50
    ASSOCIATION_BATCH: ClassVar[int] = 1000
    SEARCH_WINDOW: ClassVar[int] = 10_000  # search refuses to page past 10k results
    PROPERTY_GROUP: ClassVar[str] = "wacrm"

    def __init__(
        self,
        client: Any,
        *,
        settings: HubSpotSettings | None = None,
        limiter: CallLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or HubSpotSettings()
        self.limiter = limiter or NoLimit()
        self._hs = Transport(client, limiter=self.limiter, oauth=self.settings.oauth, clock=clock)
        sdk_logger = logging.getLogger("hubspot")  # logs whole response bodies at DEBUG
        if sdk_logger.level < logging.INFO:
            sdk_logger.setLevel(logging.INFO)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, limiter: CallLimiter) -> Self:
        """Build from environment variables (see ``HubSpotSettings.from_env``)."""
        return cls.from_settings(HubSpotSettings.from_env(env), limiter=limiter)

    @classmethod
    def from_settings(cls, settings: HubSpotSettings, *, limiter: CallLimiter) -> Self:
        client = hubspot.Client.create(access_token=settings.access_token, host=settings.base_url)
        return cls(client, settings=settings, limiter=limiter)

    def rate_limits(self) -> dict[str, Rate]:
        """The burst bucket (per 10 s) and the search bucket (5 per second)."""
        return {
            DEFAULT_BUCKET: Rate(calls=self.settings.burst, seconds=10),
            SEARCH_BUCKET: Rate(calls=5, seconds=1),
        }

    def refresh_auth(self) -> None:
        """Mint a new OAuth access token now; ``Permanent`` for a private-app token."""
        self._hs.refresh()

    def upsert_contacts(self, batch: list[ContactRecord]) -> BatchResult:
        """Resolve contacts to HubSpot ids, creating the missing ones.

        Known ``crm_id`` → no call. Otherwise per 100: ``batch/read`` by the unique
        property; for wa_ids still unknown, one phone search + stamp; then ``batch/upsert``.
        """
        ok = {r.key: r.crm_id for r in batch if r.crm_id}
        todo = list({r.key: r for r in batch if not r.crm_id}.values())  # one input per key
        rejected: list[Rejected] = []
        for chunk in chunks(todo, self.MAX_BATCH):
            found, refused = resolve_contacts(self._hs, chunk, self.settings.contact_id_property)
            ok.update(found)
            rejected.extend(refused)
        return BatchResult(ok=ok, rejected=tuple(rejected))

    def log_messages(self, batch: list[MessageRecord]) -> BatchResult:
        """One ``communications/batch/create`` per 100 messages; keys are wamids."""
        id_property = self.settings.message_id_property
        ok: dict[str, str] = {}
        rejected: list[Rejected] = []
        unique = list({m.key: m for m in batch}.values())  # one input per wamid
        for chunk in chunks(unique, self.MAX_BATCH):
            found, refused = log_chunk(
                self._hs, [message_input(m, id_property) for m in chunk], id_property
            )
            ok.update(found)
            rejected.extend(refused)
        return BatchResult(ok=ok, rejected=tuple(rejected))

    def write_fields(self, object_type: str, rows: list[FieldWrite]) -> BatchResult:
        """Batch-update field values on contacts, deals, users (100 a call) or campaigns (50).

        ``user`` rows are keyed by the user record id (``hs_object_id`` of the Users
        object). Records HubSpot refuses in a 207 come back as ``rejected``.

        Raises:
            Permanent: ``object_type`` is not contact, deal, user or campaign.
        """
        if object_type not in WRITABLE:
            raise Permanent(f"HubSpot cannot write fields on {object_type!r}")
        merged: dict[str, dict[str, str]] = {}
        for row in rows:  # HubSpot refuses the same id twice in one batch
            merged.setdefault(row.crm_id, {}).update(
                {k: hubspot_value(v) for k, v in row.values.items()}
            )
        inputs = [{"id": crm_id, "properties": props} for crm_id, props in merged.items()]
        size = self.CAMPAIGN_BATCH if object_type == "campaign" else self.MAX_BATCH
        ok: dict[str, str] = {}
        rejected: list[Rejected] = []
        for chunk in chunks(inputs, size):
            keys = [i["id"] for i in chunk]
            outcome = parse_batch(self._update(object_type, chunk), keys, "")
            ok.update(outcome.ok)
            rejected.extend([*outcome.failed.values(), *outcome.leftovers(keys)])
        return BatchResult(ok=ok, rejected=tuple(rejected))

    def _update(self, object_type: str, inputs: Sequence[dict[str, Any]]) -> Any:
        body = {"inputs": list(inputs)}
        if object_type == "campaign":  # the SDK has no campaigns module
            return self._hs.http("POST", "/marketing/v3/campaigns/batch/update", body=body)
        # The generic objects API is the same endpoint as crm.contacts/crm.deals and also
        # reaches objects the SDK has no module for (users).
        return self._hs.sdk(
            DEFAULT_BUCKET,
            "crm.objects.batch_api",
            "update",
            OBJECT_TYPES[object_type],
            batch_input_simple_public_object_batch_input=body,
        )

    def fetch_deals(self, since: datetime | None) -> list[DealRecord]:
        """Deals modified since ``since`` (all when None), with their contact ids."""
        deals = self._search_deals(_aware(since))
        contacts = self._deal_contacts(list(deals))
        return [deal_record(obj, contacts.get(deal_id, ())) for deal_id, obj in deals.items()]

    def _search_deals(self, since: datetime | None) -> dict[str, Mapping[str, Any]]:
        """Page through the search API; past 10k results, resume from the last timestamp."""
        found: dict[str, Mapping[str, Any]] = {}
        after = "0"
        while True:
            body = self._hs.sdk(
                SEARCH_BUCKET,
                "crm.deals.search_api",
                "do_search",
                public_object_search_request=deal_search(since, after),
            )
            results = body.get("results") or []
            found.update((str(obj["id"]), obj) for obj in results)
            after = str(((body.get("paging") or {}).get("next") or {}).get("after") or "")
            if not after or not results:
                return found
            if after.isdigit() and int(after) + len(results) > self.SEARCH_WINDOW:
                last = parse_datetime(
                    (results[-1].get("properties") or {}).get("hs_lastmodifieddate")
                )
                if last is None or last == since:
                    return found
                since, after = last, "0"

    def _deal_contacts(self, deal_ids: Sequence[str]) -> dict[str, list[str]]:
        """Associated contact ids per deal (associations v4 batch read, 1 000 ids a call)."""
        contacts: dict[str, list[str]] = {}
        for chunk in chunks(deal_ids, self.ASSOCIATION_BATCH):
            body = {"inputs": [{"id": deal_id} for deal_id in chunk]}
            response = self._hs.sdk(
                DEFAULT_BUCKET,
                "crm.associations.v4.batch_api",
                "get_page",
                "deals",
                "contacts",
                batch_input_public_fetch_associations_batch_request=body,
            )
            for item in response.get("results") or []:  # deals without contacts come as errors
                to = [str(t["toObjectId"]) for t in item.get("to") or []]
                contacts[str(item["from"]["id"])] = to
        return contacts

    def fetch_campaigns(self, since: datetime | None) -> list[CampaignRecord]:
        """Marketing campaigns (``GET /marketing/v3/campaigns``), filtered by ``updatedAt``."""
        since = _aware(since)
        campaigns: list[CampaignRecord] = []
        query: dict[str, Any] = {"limit": 100, "properties": list(CAMPAIGN_PROPERTIES)}
        while True:
            body = self._hs.http("GET", "/marketing/v3/campaigns", query=query)
            records = [campaign_record(obj) for obj in body.get("results") or []]
            campaigns.extend(
                r for r in records if since is None or r.updated_at is None or r.updated_at >= since
            )
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after or not records:
                return campaigns
            query["after"] = after

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        """Every property of ``object_type`` (contact · deal · message · user) with its type.

        Raises:
            Permanent: The object type has no CRM properties API (campaign) or is unknown.
        """
        if object_type not in OBJECT_TYPES:
            raise Permanent(f"HubSpot cannot describe fields of {object_type!r}")
        return self._properties(OBJECT_TYPES[object_type])

    def _properties(self, hs_type: str) -> dict[str, FieldInfo]:
        body = self._hs.sdk(DEFAULT_BUCKET, "crm.properties.core_api", "get_all", hs_type)
        return {
            str(p["name"]): FieldInfo(
                name=str(p["name"]),
                type=str(p.get("type") or ""),
                unique=bool(p.get("hasUniqueValue")),
            )
            for p in body.get("results") or []
        }

    def provision_fields(self, specs: list[FieldSpec]) -> list[str]:
        """Create the missing properties (and the ``wacrm`` group); existing names are kept.

        Contact, deal, message and user fields go through the CRM properties API of their
        object (``/crm/v3/properties/users`` for users). Campaign fields are skipped with a
        warning: HubSpot campaigns have no CRM properties API. Returns the names created.

        Raises:
            Permanent: A spec has an unsupported type, or HubSpot refused a property.
        """
        unsupported = [s.name for s in specs if s.type not in PROPERTY_TYPES]
        if unsupported:
            raise Permanent(f"unsupported field types for {', '.join(unsupported)}")
        by_type: dict[str, list[FieldSpec]] = {}
        for spec in specs:
            by_type.setdefault(spec.object_type, []).append(spec)
        created: list[str] = []
        for object_type, group in by_type.items():
            if object_type not in OBJECT_TYPES:
                logger.warning(
                    "hubspot.provision_skipped",
                    object_type=object_type,
                    fields=[s.name for s in group],
                )
                continue
            created.extend(self._provision(OBJECT_TYPES[object_type], group))
        return created

    def _provision(self, hs_type: str, specs: Sequence[FieldSpec]) -> list[str]:
        existing = self._properties(hs_type)
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        self._ensure_group(hs_type)
        body = {"inputs": [property_create(s, self.PROPERTY_GROUP) for s in missing]}
        response = self._hs.sdk(
            DEFAULT_BUCKET,
            "crm.properties.batch_api",
            "create",
            hs_type,
            batch_input_property_create=body,
        )
        errors = response.get("errors") or []  # 207: HubSpot refused some of them
        if errors:
            raise Permanent("; ".join(f"{e.get('category')}: {e.get('message')}" for e in errors))
        return [str(p["name"]) for p in response.get("results") or []]

    def _ensure_group(self, hs_type: str) -> None:
        body = self._hs.sdk(DEFAULT_BUCKET, "crm.properties.groups_api", "get_all", hs_type)
        if any(g.get("name") == self.PROPERTY_GROUP for g in body.get("results") or []):
            return
        group = {"name": self.PROPERTY_GROUP, "label": "WhatsApp (wacrm)", "displayOrder": -1}
        self._hs.sdk(
            DEFAULT_BUCKET,
            "crm.properties.groups_api",
            "create",
            hs_type,
            property_group_create=group,
        )


if TYPE_CHECKING:
    _check: type[CrmAdapter] = HubSpotAdapter
