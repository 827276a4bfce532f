"""A local HubSpot stand-in for benchmarks: the calls wacrm and a naive flow make, counted.

    .venv/bin/python benchmarks/hubspot_stub_server.py [--port 0] [--contacts 1000]

Implements, in HubSpot's documented request/response shapes (the shapes of
``tests/fixtures/hubspot/hubspot-examples.json``):

* contacts: ``batch/read`` (``idProperty``), ``search`` (filterGroups, EQ/IN/HAS_PROPERTY),
  ``batch/upsert`` (unique ``idProperty``), ``batch/update``, single ``POST`` create;
* communications: ``batch/create`` (unique ``whatsapp_message_id``: a value already stored
  is refused per input in a 207), ``batch/read``, single ``POST`` create;
* ``PUT /crm/v4/objects/communications/{id}/associations/default/contacts/{contactId}``;
* deals ``search`` and ``GET /marketing/v3/campaigns`` answer empty (the connector's
  scheduled pull, should it run).

Every call is counted per endpoint; HubSpot's rolling limits are enforced: ``burst`` calls
per rolling 10 s (100 for a Free/Starter private app) for everything but search, and
5 search calls per rolling second (search is exempt from the 10 s bucket). A refused call
answers 429 with HubSpot's body and does not itself take a slot in the window. Each
communication's creation time is kept by its wamid (``clock()``, default ``time.time``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Json = dict[str, Any]
Reply = tuple[int, Any]
CONTACT_ID_PROPERTY = "whatsapp_wa_id"
MESSAGE_ID_PROPERTY = "whatsapp_message_id"
PHONE_PROPERTIES = ("phone", "mobilephone", "hs_whatsapp_phone_number")
CHANNELS = frozenset({"WHATS_APP", "LINKEDIN_MESSAGE", "SMS"})
COMMUNICATION_TO_CONTACT = 81
COMMUNICATION_TO_DEAL = 85
CONTACT_TO_COMMUNICATION = 82
MAX_BATCH = 100
SEARCH_MAX_GROUPS, SEARCH_MAX_PER_GROUP, SEARCH_MAX_FILTERS, SEARCH_MAX_LIMIT = 5, 6, 18, 200
DEFAULT_PROPERTIES = ("hs_object_id", "createdate", "lastmodifieddate")


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class Limits:
    """HubSpot's published limits for one private app (Free/Starter by default)."""

    burst: int = 100  # calls per rolling window, search excluded
    window_s: float = 10.0
    search_per_s: int = 5  # search endpoints, per rolling second
    daily: int = 250_000


class RollingWindow:
    """At most ``limit`` admitted calls in any rolling ``seconds``."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def remaining(self) -> int:
        return max(0, self.limit - len(self._times))


# --------------------------------------------------------------------------- shapes


def iso(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def error(status: int, message: str, category: str, **extra: Any) -> Reply:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4())}
    return status, {**body, "category": category, **extra}


def input_error(message: str, category: str, **context: Sequence[str]) -> Json:
    """One ``StandardError`` of a 207's ``errors[]``."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {k: list(v) for k, v in context.items()},
        "errors": [],
        "links": {},
    }


def batch_reply(results: list[Json], errors: list[Json], ok_status: int = 200) -> Reply:
    """``BatchResponseSimplePublicObject`` (ok_status) or ``…WithErrors`` (207)."""
    now = iso(time.time())
    body: Json = {"status": "COMPLETE", "startedAt": now, "completedAt": now, "results": results}
    if errors:
        body |= {"numErrors": len(errors), "errors": errors}
    return (207 if errors else ok_status), body


def unique_violation(name: str, value: str, object_type: str) -> str:
    """HubSpot's unique-value refusal; the exact inner wording is not documented."""
    inner = {
        "isValid": False,
        "message": f'{value} already has that value on another {object_type} ("{name}")',
        "error": "INVALID_UNIQUE_VALUE",
        "name": name,
    }
    return f"Property values were not valid: {json.dumps([inner])}"


@dataclass(slots=True)
class CrmObject:
    id: str
    properties: dict[str, str]
    created: float
    updated: float
    associations: list[tuple[str, int]] = field(default_factory=list)  # (to id, typeId)

    def public(self, wanted: Sequence[str] | None = None, **extra: Any) -> Json:
        """A ``SimplePublicObject``: requested properties (all when ``wanted`` is None)."""
        props = {**self.properties, "hs_object_id": self.id}
        props.setdefault("createdate", iso(self.created))
        props["lastmodifieddate"] = iso(self.updated)
        if wanted is not None:
            keep = {*wanted, *DEFAULT_PROPERTIES}
            props = {k: props.get(k) for k in keep if k in props or k in wanted}
        return {
            "id": self.id,
            "properties": props,
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
            "archived": False,
            **extra,
        }


class ObjectStore:
    """Records of one object type, with an index on its unique property."""

    def __init__(self, unique_property: str, first_id: int) -> None:
        self.unique = unique_property
        self.by_id: dict[str, CrmObject] = {}
        self.by_unique: dict[str, str] = {}
        self._ids = itertools.count(first_id)

    def create(self, properties: Mapping[str, Any], now: float) -> CrmObject:
        obj = CrmObject(str(next(self._ids)), {}, now, now)
        self.by_id[obj.id] = obj
        self.set(obj, properties, now)
        return obj

    def set(self, obj: CrmObject, properties: Mapping[str, Any], now: float) -> None:
        old = obj.properties.get(self.unique)
        obj.properties.update({k: "" if v is None else str(v) for k, v in properties.items()})
        new = obj.properties.get(self.unique)
        if old and old != new:
            self.by_unique.pop(old, None)
        if new:
            self.by_unique[new] = obj.id
        obj.updated = now

    def holder(self, value: str | None) -> str | None:
        """The id of the record whose unique property holds ``value``."""
        return self.by_unique.get(value) if value else None

    def find(self, key: str, id_property: str | None) -> CrmObject | None:
        if id_property in (None, "", "hs_object_id"):
            return self.by_id.get(key)
        if id_property == self.unique:
            found = self.by_unique.get(key)
            return self.by_id.get(found) if found else None
        return next((o for o in self.by_id.values() if o.properties.get(id_property) == key), None)


# --------------------------------------------------------------------------- search


def _matches(obj: CrmObject, flt: Mapping[str, Any]) -> bool:
    value = obj.properties.get(str(flt.get("propertyName")))
    op = flt.get("operator", "EQ")
    if op == "EQ":
        return value is not None and value == str(flt.get("value"))
    if op == "NEQ":
        return value != str(flt.get("value"))
    if op == "IN":
        return value in {str(v) for v in flt.get("values") or []}
    if op == "HAS_PROPERTY":
        return bool(value)
    return not value  # NOT_HAS_PROPERTY (others refused before)


def search_problem(body: Mapping[str, Any]) -> str | None:
    groups = body.get("filterGroups") or []
    filters = [f for g in groups for f in g.get("filters") or []]
    if len(groups) > SEARCH_MAX_GROUPS:
        return f"Too many filter groups ({len(groups)}); the maximum is {SEARCH_MAX_GROUPS}"
    if any(len(g.get("filters") or []) > SEARCH_MAX_PER_GROUP for g in groups):
        return f"A filter group may contain at most {SEARCH_MAX_PER_GROUP} filters"
    if len(filters) > SEARCH_MAX_FILTERS:
        return f"Too many filters ({len(filters)}); the maximum is {SEARCH_MAX_FILTERS}"
    if int(body.get("limit") or 10) > SEARCH_MAX_LIMIT:
        return f"limit must be at most {SEARCH_MAX_LIMIT}"
    ops = {f.get("operator", "EQ") for f in filters}
    unsupported = ops - {"EQ", "NEQ", "IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
    return f"stub: unsupported operator(s) {sorted(unsupported)}" if unsupported else None


def run_search(store: ObjectStore, body: Mapping[str, Any]) -> Json:
    groups = body.get("filterGroups") or []
    hits = [
        o
        for o in store.by_id.values()
        if not groups or any(all(_matches(o, f) for f in g.get("filters") or []) for g in groups)
    ]
    offset, limit = int(body.get("after") or 0), int(body.get("limit") or 10)
    page = hits[offset : offset + limit]
    wanted = body.get("properties") or []
    result: Json = {"total": len(hits), "results": [o.public(wanted) for o in page]}
    if offset + limit < len(hits):
        result["paging"] = {"next": {"after": str(offset + limit)}}
    return result


# --------------------------------------------------------------------------- the stub


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    label: str
    handler: Callable[[Any, Json, re.Match[str]], Reply]
    search: bool = False


@dataclass
class Stats:
    """What the benchmark reads: calls and 429s per endpoint, creation time per wamid."""

    calls: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    created_at: dict[str, float] = field(default_factory=dict)
    admitted: list[tuple[float, bool]] = field(default_factory=list)  # (time, is search)

    def snapshot(self) -> Json:
        burst = [t for t, search in self.admitted if not search]
        search = [t for t, is_search in self.admitted if is_search]
        return {
            "calls": dict(self.calls),
            "rate_limited": dict(self.rate_limited),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "total_calls": sum(self.calls.values()),
            "total_429": sum(self.rate_limited.values()),
            "communications": len(self.created_at),
            "peak_burst_window": peak(burst, 10.0),
            "peak_search_second": peak(search, 1.0),
        }


def peak(times: Sequence[float], seconds: float) -> int:
    """The most admitted calls in any rolling ``seconds`` (times in admission order)."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


class HubSpotStub:
    """HubSpot's behaviour for the endpoints in the module docstring, thread-safe."""

    def __init__(
        self,
        *,
        token: str = "bench-token",
        limits: Limits | None = None,
        latency_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token, self.limits, self.latency_s, self.clock = (
            token,
            limits or Limits(),
            latency_s,
            clock,
        )
        self.contacts = ObjectStore(CONTACT_ID_PROPERTY, 1001)
        self.communications = ObjectStore(MESSAGE_ID_PROPERTY, 50_000_000_001)
        self.stats = Stats()
        self._burst = RollingWindow(self.limits.burst, self.limits.window_s)
        self._search = RollingWindow(self.limits.search_per_s, 1.0)
        self._daily = 0
        self._lock = threading.Lock()
        self.routes = _routes()

    # ---- seeding and reading

    def seed_contact(self, properties: Mapping[str, Any], created: float | None = None) -> str:
        with self._lock:
            moment = self.clock() if created is None else created
            return self.contacts.create(properties, moment).id

    def created_at(self) -> dict[str, float]:
        with self._lock:
            return dict(self.stats.created_at)

    def snapshot(self) -> Json:
        with self._lock:
            return self.stats.snapshot()

    # ---- one request

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Reply:
        route, match = self._route(method, path)
        label = route.label if route else f"{method} (no route) {path}"
        with self._lock:
            self.stats.calls[label] += 1
            reply = self._admit(route, label, headers)
            if reply is None and route is not None and match is not None:
                reply = self._dispatch(route, match, raw)
            reply = reply or error(404, f"stub: no route for {method} {path}", "OBJECT_NOT_FOUND")
            self.stats.statuses[reply[0]] += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        return reply

    def headers_for(self, path: str, status: int) -> dict[str, str]:
        """``X-HubSpot-RateLimit-*`` on everything but search (whose answers carry none)."""
        if path.endswith("/search"):
            return {}
        with self._lock:
            return {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.limits.window_s * 1000)),
                "X-HubSpot-RateLimit-Max": str(self.limits.burst),
                "X-HubSpot-RateLimit-Remaining": str(self._burst.remaining()),
                "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.limits.daily - self._daily)),
            }

    def _route(self, method: str, path: str) -> tuple[Route | None, re.Match[str] | None]:
        for route in self.routes:
            match = route.pattern.fullmatch(path) if route.method == method else None
            if match:
                return route, match
        return None, None

    def _admit(self, route: Route | None, label: str, headers: Mapping[str, str]) -> Reply | None:
        """401 without our bearer token, 429 over a limit; None when the call may proceed."""
        if headers.get("authorization") != f"Bearer {self.token}":
            return error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if route is None:
            return None
        now = self.clock()
        if route.search and not self._search.admit(now):
            self.stats.rate_limited[label] += 1
            return error(429, "You have reached your secondly limit.", "RATE_LIMITS")
        if self._daily >= self.limits.daily:
            return self._rate_limit(label, "daily", "DAILY")
        if not route.search and not self._burst.admit(now):
            return self._rate_limit(label, "ten_secondly_rolling", "TEN_SECONDLY_ROLLING")
        self._daily += 1
        self.stats.admitted.append((now, route.search))
        return None

    def _rate_limit(self, label: str, name: str, policy: str) -> Reply:
        self.stats.rate_limited[label] += 1
        return 429, {
            "status": "error",
            "message": f"You have reached your {name} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "requestId": str(uuid.uuid4()),
        }

    def _dispatch(self, route: Route, match: re.Match[str], raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        if not isinstance(body, dict):
            return error(400, "Invalid input JSON: expected an object", "VALIDATION_ERROR")
        try:
            return route.handler(self, body, match)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return error(
                400, f"Invalid input JSON: {type(exc).__name__}: {exc}", "VALIDATION_ERROR"
            )

    # ---- contacts

    def contacts_batch_read(self, body: Json, _: re.Match[str]) -> Reply:
        return self._batch_read(self.contacts, body, "CONTACT")

    def communications_batch_read(self, body: Json, _: re.Match[str]) -> Reply:
        return self._batch_read(self.communications, body, "COMMUNICATION")

    def _batch_read(self, store: ObjectStore, body: Json, kind: str) -> Reply:
        inputs, id_property = _inputs(body), body.get("idProperty")
        if problem := _batch_problem(inputs):
            return error(400, problem, "VALIDATION_ERROR")
        if id_property not in (None, "", "hs_object_id", store.unique, "email"):
            return error(400, f"{id_property} is not a unique property", "VALIDATION_ERROR")
        wanted = list(body.get("properties") or [])
        found, missing = [], []
        for item in inputs:
            obj = store.find(str(item["id"]), id_property)
            if obj is None:
                missing.append(str(item["id"]))
            else:
                found.append(obj.public(wanted))
        errors = [
            input_error(
                f"Could not get some {kind} objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "OBJECT_NOT_FOUND",
                ids=missing,
            )
        ]
        return batch_reply(found, errors if missing else [])

    def contacts_search(self, body: Json, _: re.Match[str]) -> Reply:
        if problem := search_problem(body):
            return error(400, problem, "VALIDATION_ERROR")
        return 200, run_search(self.contacts, body)

    def deals_search(self, body: Json, _: re.Match[str]) -> Reply:
        return 200, {"total": 0, "results": []}

    def campaigns_list(self, body: Json, _: re.Match[str]) -> Reply:
        return 200, {"total": 0, "results": []}

    def contacts_batch_upsert(self, body: Json, _: re.Match[str]) -> Reply:
        inputs = _inputs(body)
        if problem := _batch_problem(inputs):
            return error(400, problem, "VALIDATION_ERROR")
        if any(i.get("idProperty") != self.contacts.unique for i in inputs):
            return error(
                400, "idProperty must be a property with unique values", "VALIDATION_ERROR"
            )
        now, results = self.clock(), []
        for item in inputs:
            props = {**(item.get("properties") or {}), self.contacts.unique: str(item["id"])}
            obj = self.contacts.find(str(item["id"]), self.contacts.unique)
            new = obj is None
            if obj is None:
                obj = self.contacts.create(props, now)
            else:
                self.contacts.set(obj, props, now)
            extra = {"new": new, "objectWriteTraceId": item.get("objectWriteTraceId")}
            results.append(
                obj.public(list(props), **{k: v for k, v in extra.items() if v is not None})
            )
        return batch_reply(results, [])

    def contacts_batch_update(self, body: Json, _: re.Match[str]) -> Reply:
        inputs, id_property = _inputs(body), body.get("idProperty")
        if problem := _batch_problem(inputs):
            return error(400, problem, "VALIDATION_ERROR")
        now, results, errors = self.clock(), [], []
        for item in inputs:
            key, props = str(item["id"]), dict(item.get("properties") or {})
            obj = self.contacts.find(key, id_property)
            holder = self.contacts.holder(props.get(self.contacts.unique))
            if obj is None:
                errors.append(input_error(f"Object {key} not found", "OBJECT_NOT_FOUND", ids=[key]))
            elif holder not in (None, obj.id):
                message = unique_violation(
                    self.contacts.unique, props[self.contacts.unique], "contact"
                )
                errors.append(input_error(message, "VALIDATION_ERROR", ids=[key]))
            else:
                self.contacts.set(obj, props, now)
                results.append(obj.public(list(props)))
        return batch_reply(results, errors)

    def contacts_create(self, body: Json, _: re.Match[str]) -> Reply:
        props = dict(body.get("properties") or {})
        holder = self.contacts.holder(props.get(self.contacts.unique))
        if holder is not None:
            return error(409, f"Contact already exists. Existing ID: {holder}", "CONFLICT")
        return 201, self.contacts.create(props, self.clock()).public()

    # ---- communications

    def communications_batch_create(self, body: Json, _: re.Match[str]) -> Reply:
        inputs = _inputs(body)
        if problem := _batch_problem(inputs, keyed=False):
            return error(400, problem, "VALIDATION_ERROR")
        if any(not isinstance(i.get("associations"), list) for i in inputs):
            return error(
                400, "Some required fields were not set: [associations]", "VALIDATION_ERROR"
            )
        now, results, errors = self.clock(), [], []
        for item in inputs:
            trace = str(item.get("objectWriteTraceId") or "")
            refusal = self._communication_problem(item)
            if refusal:
                errors.append(input_error(refusal, "VALIDATION_ERROR", objectWriteTraceId=[trace]))
                continue
            obj = self._create_communication(item, now)
            results.append(obj.public(list(item["properties"]), objectWriteTraceId=trace or None))
        return batch_reply(results, errors, ok_status=201)

    def communication_create(self, body: Json, _: re.Match[str]) -> Reply:
        item = {
            "properties": body.get("properties") or {},
            "associations": body.get("associations") or [],
        }
        refusal = self._communication_problem(item)
        if refusal:
            return error(400, refusal, "VALIDATION_ERROR")
        return 201, self._create_communication(item, self.clock()).public()

    def _communication_problem(self, item: Mapping[str, Any]) -> str | None:
        props = item.get("properties") or {}
        channel = props.get("hs_communication_channel_type")
        if channel is not None and channel not in CHANNELS:
            return (
                'Property values were not valid: [{"isValid":false,"message":"'
                f'{channel} was not one of the allowed options","error":"INVALID_OPTION",'
                '"name":"hs_communication_channel_type"}]'
            )
        wamid = props.get(self.communications.unique)
        if self.communications.holder(wamid):
            return unique_violation(self.communications.unique, str(wamid), "communication")
        for link in item.get("associations") or []:
            to = str((link.get("to") or {}).get("id"))
            type_ids = {int(t.get("associationTypeId", 0)) for t in link.get("types") or []}
            if COMMUNICATION_TO_CONTACT in type_ids and to not in self.contacts.by_id:
                return f"One or more associations are invalid: CONTACT {to} does not exist"
            if COMMUNICATION_TO_DEAL in type_ids:
                return f"One or more associations are invalid: DEAL {to} does not exist"
        return None

    def _create_communication(self, item: Mapping[str, Any], now: float) -> CrmObject:
        obj = self.communications.create(item["properties"], now)
        for link in item.get("associations") or []:
            for spec in link.get("types") or []:
                obj.associations.append((str(link["to"]["id"]), int(spec["associationTypeId"])))
        wamid = obj.properties.get(self.communications.unique)
        if wamid:
            self.stats.created_at[wamid] = now
        return obj

    def associate_default(self, body: Json, match: re.Match[str]) -> Reply:
        comm_id, contact_id = match["from_id"], match["to_id"]
        comm = self.communications.by_id.get(comm_id)
        if comm is None or contact_id not in self.contacts.by_id:
            missing = f"COMMUNICATION {comm_id}" if comm is None else f"CONTACT {contact_id}"
            return error(404, f"{missing} does not exist", "OBJECT_NOT_FOUND")
        comm.associations.append((contact_id, COMMUNICATION_TO_CONTACT))
        spec = {"associationCategory": "HUBSPOT_DEFINED"}
        pairs = [
            (comm_id, contact_id, COMMUNICATION_TO_CONTACT),
            (contact_id, comm_id, CONTACT_TO_COMMUNICATION),
        ]
        results = [
            {
                "from": {"id": a},
                "to": {"id": b},
                "associationSpec": {**spec, "associationTypeId": t},
            }
            for a, b, t in pairs
        ]
        return batch_reply(results, [])


def _inputs(body: Mapping[str, Any]) -> list[Json]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise ValueError("inputs: required list")
    return inputs


def _batch_problem(inputs: Sequence[Json], *, keyed: bool = True) -> str | None:
    if len(inputs) > MAX_BATCH:
        return f"Batch input cannot be larger than {MAX_BATCH} (got {len(inputs)})"
    if keyed:
        ids = [str(i.get("id")) for i in inputs]
        if len(set(ids)) != len(ids):
            return "Duplicate IDs found in batch input"
    return None


def _routes() -> list[Route]:
    v3 = "/crm/v3/objects"
    table: list[tuple[str, str, Callable[..., Reply], bool]] = [
        ("POST", f"{v3}/contacts/batch/read", HubSpotStub.contacts_batch_read, False),
        ("POST", f"{v3}/contacts/search", HubSpotStub.contacts_search, True),
        ("POST", f"{v3}/contacts/batch/upsert", HubSpotStub.contacts_batch_upsert, False),
        ("POST", f"{v3}/contacts/batch/update", HubSpotStub.contacts_batch_update, False),
        ("POST", f"{v3}/contacts", HubSpotStub.contacts_create, False),
        (
            "POST",
            f"{v3}/communications/batch/create",
            HubSpotStub.communications_batch_create,
            False,
        ),
        ("POST", f"{v3}/communications/batch/read", HubSpotStub.communications_batch_read, False),
        ("POST", f"{v3}/communications", HubSpotStub.communication_create, False),
        (
            "PUT",
            "/crm/v4/objects/communications/{from_id}/associations/default/contacts/{to_id}",
            HubSpotStub.associate_default,
            False,
        ),
        ("POST", f"{v3}/deals/search", HubSpotStub.deals_search, True),
        ("GET", "/marketing/v3/campaigns", HubSpotStub.campaigns_list, False),
    ]
    routes = []
    for method, template, handler, search in table:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        routes.append(Route(method, re.compile(pattern), f"{method} {template}", handler, search))
    return routes


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3 and requests expect
    stub: HubSpotStub  # set on the subclass made by StubServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body = self.stub.handle(self.command, path, headers, raw)
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in self.stub.headers_for(path, status).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class StubServer:
    """``stub`` served by a threaded HTTP server on 127.0.0.1 (port 0 = a free one)."""

    def __init__(self, stub: HubSpotStub, port: int = 0) -> None:
        handler = type("StubHandler", (_Handler,), {"stub": stub})
        self.stub = stub
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="hubspot-stub")

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def seed_known(stub: HubSpotStub, wa_ids: Sequence[str], names: Sequence[str]) -> None:
    """Existing HubSpot contacts already carrying ``whatsapp_wa_id`` (and their phone)."""
    for wa_id, name in zip(wa_ids, names, strict=True):
        first, _, last = name.partition(" ")
        stub.seed_contact(
            {
                CONTACT_ID_PROPERTY: wa_id,
                "phone": f"+{wa_id}",
                "firstname": first,
                "lastname": last,
            }
        )


def seed_legacy(stub: HubSpotStub, wa_ids: Sequence[str]) -> None:
    """Contacts that predate the connector: a phone number, no ``whatsapp_wa_id``."""
    for wa_id in wa_ids:
        stub.seed_contact({"phone": f"+{wa_id}", "firstname": "Legacy", "lastname": wa_id[-4:]})


def demo_ids(count: int) -> Iterator[str]:
    return (f"49151{n:08d}" for n in range(count))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--contacts", type=int, default=1000, help="known contacts to seed")
    parser.add_argument("--token", default="bench-token")
    parser.add_argument("--burst", type=int, default=100, help="calls per rolling 10 s")
    args = parser.parse_args(argv)
    stub = HubSpotStub(token=args.token, limits=Limits(burst=args.burst))
    ids = list(demo_ids(args.contacts))
    seed_known(stub, ids, [f"Customer {i}" for i in range(len(ids))])
    with StubServer(stub, args.port) as server:
        print(f"HubSpot stub on {server.url} (token {args.token!r}); Ctrl-C prints counts")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(json.dumps(stub.snapshot(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
