"""Salesforce adapter on simple-salesforce (DESIGN §5; vendor facts: CRM_API_NOTES §3, §4).

Contacts, Tasks and KPI values are written with sObject Collections (200 records a
request). When a batch needs more than one collection, up to five are wrapped in one
``/composite`` request, which counts as ONE call against the org's daily allowance, so
1,000 records cost one counted call. Contacts and Tasks are upserted by external ids built
from WhatsApp ids, so a retry after an unknown outcome updates instead of duplicating.

Salesforce has no per-second limit and never answers 429: the daily allowance is tracked
from ``Sforce-Limit-Info`` (``_salesforce_limits``) and exhaustion is a 403
``REQUEST_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from simple_salesforce.format import format_soql

from crm_adapters._salesforce_collections import (
    COLLECTION_SIZE,
    COLLECTIONS_PER_COMPOSITE,
    write_collections,
)
from crm_adapters._salesforce_config import SalesforceAuth, SalesforceOptions, read_env
from crm_adapters._salesforce_errors import is_vendor_error
from crm_adapters._salesforce_errors import translate as _translate
from crm_adapters._salesforce_limits import BUCKET, DEFAULT_RATE, DailyAllowance
from crm_adapters._salesforce_records import (
    api_name,
    campaign_record,
    chunks,
    contact_fields,
    custom_field,
    deal_record,
    soql_in_chunks,
    task_fields,
    update_fields,
    utc,
)
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
    from simple_salesforce.api import Salesforce

__all__ = ["SalesforceAdapter", "SalesforceAuth", "SalesforceOptions"]

R = TypeVar("R")
METADATA_BATCH = 10  # createMetadata components per call
TIMEOUT = (10.0, 300.0)  # connect, read: Salesforce itself gives up on REST calls at 10 min
SOBJECTS = {"deal": "Opportunity", "campaign": "Campaign", "message": "Task", "user": "User"}
METADATA_OBJECTS = {"message": "Activity"}  # Activity custom fields are shared by Task/Event
DEAL_FIELDS = (
    "Id",
    "Name",
    "Amount",
    "StageName",
    "IsClosed",
    "IsWon",
    "CloseDate",
    "LastModifiedDate",
    "CampaignId",
)
CAMPAIGN_FIELDS = ("Id", "Name", "Status", "ActualCost", "LastModifiedDate")


class SalesforceAdapter:
    """``CrmAdapter`` for Salesforce: Contacts (or Leads), Tasks, Opportunities, Campaigns,
    and Users (agent KPI fields).

    Args:
        sf: A ready ``simple_salesforce.Salesforce`` client.
        limiter: Shared limiter; ``acquire`` runs before every counted HTTP call.
        options: Object and field names, Task write mode and daily share.
        auth: The credentials ``sf`` came from; None for a bare session id (not refreshable).
        clock: Monotonic seconds, injectable for tests.
    """

    name: ClassVar[str] = "salesforce"
    MAX_BATCH: ClassVar[int] = 200
    # Batches up to this size still cost one counted call (5 collections in one /composite).
    RECORDS_PER_CALL: ClassVar[int] = COLLECTION_SIZE * COLLECTIONS_PER_COMPOSITE

    def __init__(
        self,
        sf: Salesforce,
        *,
        limiter: CallLimiter | None = None,
        options: SalesforceOptions | None = None,
        auth: SalesforceAuth | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sf = sf
        self.limiter = limiter if limiter is not None else NoLimit()
        self.options = options or SalesforceOptions()
        self._auth = auth
        self._allowance = DailyAllowance(self.options.daily_share, clock)
        self._has_currency = True  # CurrencyIsoCode exists only in multi-currency orgs

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, limiter: CallLimiter) -> Self:
        """Build from ``SALESFORCE_*`` variables and log in (one token request).

        Raises:
            ValueError: Credentials are missing or a setting is malformed (all named).
            Permanent: The login was refused.
            Transient: The login endpoint is unreachable or failing.
        """
        auth, options = read_env(env)
        return cls(_vendor(auth.connect), limiter=limiter, options=options, auth=auth)

    def rate_limits(self) -> dict[str, Rate]:
        """One bucket for every REST, query and Metadata call."""
        return {BUCKET: DEFAULT_RATE}

    def refresh_auth(self) -> None:
        """Mint a new session from the credentials (JWT is re-signed; no refresh token).

        Raises:
            Permanent: The adapter was given a bare session id, or the login was refused.
        """
        if self._auth is None or not self._auth.refreshable:
            raise Permanent(
                "a bare Salesforce session id cannot be refreshed: configure "
                "JWT bearer or client credentials"
            )
        self.sf = _vendor(self._auth.connect, self.sf.session)

    def upsert_contacts(self, batch: list[ContactRecord]) -> BatchResult:
        """Upsert by ``contact_id_field`` (wa_id); records with a ``crm_id`` cost nothing."""
        known = {r.key: r.crm_id for r in batch if r.crm_id}
        todo = _unique(r for r in batch if r.key not in known)
        sobject, field = self.options.contact_object, self.options.contact_id_field
        result = self._write_records(
            "PATCH",
            f"composite/sobjects/{sobject}/{field}",
            [r.key for r in todo],
            [contact_fields(r, sobject=sobject, id_field=field) for r in todo],
        )
        return BatchResult(ok={**known, **result.ok}, rejected=result.rejected)

    def log_messages(self, batch: list[MessageRecord]) -> BatchResult:
        """One completed Task per wamid: upserted by ``message_id_field``, or, with
        ``task_upsert`` off, created only where a query finds no Task with that wamid."""
        todo = _unique(batch)
        field = self.options.message_id_field
        existing = {} if self.options.task_upsert else self._existing_tasks(todo)
        todo = [m for m in todo if m.key not in existing]
        method, path = (
            ("PATCH", f"composite/sobjects/Task/{field}")
            if self.options.task_upsert
            else ("POST", "composite/sobjects")
        )
        result = self._write_records(
            method, path, [m.key for m in todo], [task_fields(m, id_field=field) for m in todo]
        )
        return BatchResult(ok={**existing, **result.ok}, rejected=result.rejected)

    def write_fields(self, object_type: str, rows: list[FieldWrite]) -> BatchResult:
        """Update fields by record id; the result is keyed by crm id.

        ``user`` updates ``User`` records (agent KPIs): editing other users takes the
        "Manage Internal Users" permission; without it Salesforce refuses the records.
        """
        sobject = self._sobject(object_type)
        if sobject is None:
            return BatchResult(
                rejected=tuple(
                    Rejected(
                        key=r.crm_id,
                        message=f"no Salesforce object for {object_type!r}",
                        code="INVALID_TYPE",
                    )
                    for r in rows
                )
            )
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:
            merged.setdefault(row.crm_id, {}).update(row.values)
        return self._write_records(
            "PATCH",
            "composite/sobjects",
            list(merged),
            [update_fields(sobject, FieldWrite(crm_id=k, values=v)) for k, v in merged.items()],
        )

    def fetch_deals(self, since: datetime | None) -> list[DealRecord]:
        """Opportunities modified since ``since``, with their contact roles (primary first)."""
        rows = self._query_with_currency(DEAL_FIELDS, "Opportunity", since)
        if not rows:
            return []
        soql = "SELECT OpportunityId, ContactId FROM OpportunityContactRole"
        if since is not None:  # a semi-join keeps it one query whatever the number of deals
            soql += format_soql(
                " WHERE OpportunityId IN (SELECT Id FROM Opportunity "
                "WHERE LastModifiedDate >= {since})",
                since=utc(since),
            )
        contacts: dict[str, list[str]] = {}
        for role in self._query(soql + " ORDER BY IsPrimary DESC, CreatedDate"):
            contacts.setdefault(role["OpportunityId"], []).append(role["ContactId"])
        return [deal_record(row, contacts.get(row["Id"], ())) for row in rows]

    def fetch_campaigns(self, since: datetime | None) -> list[CampaignRecord]:
        """Campaigns modified since ``since``; spend is ``ActualCost``."""
        rows = self._query_with_currency(CAMPAIGN_FIELDS, "Campaign", since)
        return [campaign_record(row) for row in rows]

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        """Fields of the object (``message`` → Task, ``user`` → User); External IDs count
        as unique."""
        sobject = self._sobject(object_type)
        if sobject is None:
            raise Permanent(f"no Salesforce object for {object_type!r}")
        sftype = getattr(self.sf, sobject)
        described = self._call(sftype.describe)
        if sftype.api_usage:  # SFType keeps its own reading of Sforce-Limit-Info
            self.sf.api_usage = sftype.api_usage
        return {
            f["name"]: FieldInfo(
                name=f["name"], type=f["type"], unique=bool(f.get("unique") or f.get("externalId"))
            )
            for f in described["fields"]
        }

    def provision_fields(self, specs: list[FieldSpec]) -> list[str]:
        """Create the missing custom fields through the Metadata API (10 per call).

        Idempotent: each object is described first and existing fields are skipped.
        Message fields go on ``Activity`` (shared by Task and Event), user fields on
        ``User``. Field-level security
        must then be granted to the integration user (permission set ``fieldPermissions``):
        until it is, queries fail with ``INVALID_FIELD`` and writes may drop the values.

        Returns:
            The names (``spec.name``) of the fields created.
        """
        objects = dict.fromkeys(s.object_type for s in specs)
        existing = {object_type: self.describe_fields(object_type) for object_type in objects}
        todo = {
            self._metadata_name(s): s
            for s in specs
            if api_name(s.name) not in existing[s.object_type]
        }
        mdapi = self.sf.mdapi
        created: list[str] = []
        for group in chunks(list(todo.items()), METADATA_BATCH):
            self._call(mdapi.CustomField.create, [self._metadata_field(s) for _, s in group])
            created.extend(s.name for _, s in group)
        return created

    # -- internals ---------------------------------------------------------------------

    def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """One counted API call: daily share check, then the limiter, then the request."""
        self._allowance.check(self.sf.api_usage)
        self.limiter.acquire(BUCKET)
        return _vendor(fn, *args, **kwargs)

    def _write_records(
        self, method: str, path: str, keys: Sequence[str], records: Sequence[dict[str, Any]]
    ) -> BatchResult:
        return write_collections(self._rest, str(self.sf.sf_version), method, path, keys, records)

    def _rest(self, path: str, **kwargs: Any) -> Any:
        """One counted REST call (collections, composite)."""
        return self._call(self.sf.restful, path, timeout=TIMEOUT, **kwargs)

    def _existing_tasks(self, messages: Sequence[MessageRecord]) -> dict[str, str]:
        """wamid → Task id for the messages already logged (query-before-create mode)."""
        field = self.options.message_id_field
        template = "SELECT Id, {field:literal} FROM Task WHERE {field:literal} IN {ids}"
        found: dict[str, str] = {}
        for soql in soql_in_chunks(template, [m.key for m in messages], field=field):
            found.update((row[field], row["Id"]) for row in self._query(soql))
        return found

    def _query(self, soql: str) -> list[dict[str, Any]]:
        """All rows of a query, paging by hand so each page passes the limiter."""
        page = self._call(self.sf.query, soql, timeout=TIMEOUT)
        rows = list(page["records"])
        while not page.get("done", True):
            page = self._call(
                self.sf.query_more, page["nextRecordsUrl"], identifier_is_url=True, timeout=TIMEOUT
            )
            rows.extend(page["records"])
        return rows

    def _query_with_currency(
        self, fields: Sequence[str], sobject: str, since: datetime | None
    ) -> list[dict[str, Any]]:
        """Query with ``CurrencyIsoCode``; single-currency orgs lack it, so retry once without."""
        where = (
            ""
            if since is None
            else format_soql(" WHERE LastModifiedDate >= {since}", since=utc(since))
        )
        while True:
            columns = [*fields, "CurrencyIsoCode"] if self._has_currency else list(fields)
            try:
                return self._query(
                    f"SELECT {', '.join(columns)} FROM {sobject}{where} "
                    "ORDER BY LastModifiedDate, Id"
                )
            except Permanent as err:
                if not (
                    self._has_currency
                    and str(err).startswith("INVALID_FIELD")
                    and "CurrencyIsoCode" in str(err)
                ):
                    raise
                self._has_currency = False

    def _sobject(self, object_type: str) -> str | None:
        return {"contact": self.options.contact_object, **SOBJECTS}.get(object_type)

    def _metadata_name(self, spec: FieldSpec) -> str:
        sobject = METADATA_OBJECTS.get(spec.object_type) or self._sobject(spec.object_type)
        return f"{sobject}.{api_name(spec.name)}"

    def _metadata_field(self, spec: FieldSpec) -> Any:
        mdapi = self.sf.mdapi
        sobject = self._metadata_name(spec).partition(".")[0]
        kwargs = custom_field(spec, sobject=sobject, external_ids=self.options.task_upsert)
        return mdapi.CustomField(**{**kwargs, "type": mdapi.FieldType(kwargs["type"])})


def _vendor(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run one vendor call: the only ``except`` on vendor exceptions."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if not is_vendor_error(exc):
            raise
        # from None: a chained SalesforceError would log its URL (SOQL with phone numbers).
        raise _translate(exc) from None


_Keyed = TypeVar("_Keyed", ContactRecord, MessageRecord)


def _unique(records: Iterable[_Keyed]) -> list[_Keyed]:
    """First record per key: a collection may not name the same external id twice."""
    first: dict[str, _Keyed] = {}
    for record in records:
        first.setdefault(record.key, record)
    return list(first.values())
