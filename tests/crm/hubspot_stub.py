"""A local HubSpot stand-in for the real SDK: routes, recorded requests, fixture examples.

hubspot-api-client speaks urllib3, which ``responses`` cannot see, so tests point the
SDK's ``host`` at pytest-httpserver and answer from here.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hubspot
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from crm_adapters.hubspot import HubSpotAdapter, HubSpotSettings

FIXTURE = Path(__file__).parents[1] / "fixtures" / "hubspot" / "hubspot-examples.json"
EXAMPLES: dict[str, dict[str, Any]] = {
    e["id"]: e for e in json.loads(FIXTURE.read_text(encoding="utf-8"))["examples"]
}
TOKEN = "test-token"

Reply = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Handler = Callable[["Call"], Reply]


def example(example_id: str) -> dict[str, Any]:
    """One request/response example from the shared fixture file, as stored."""
    return EXAMPLES[example_id]


def example_reply(example_id: str, **headers: str) -> Reply:
    """The example's response as a stub reply, optionally with extra headers."""
    response = EXAMPLES[example_id]["response"]
    return response["status"], response.get("body"), {**response.get("headers", {}), **headers}


@dataclass
class Call:
    """One request the SDK sent."""

    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    form: dict[str, str]
    headers: dict[str, str]

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("inputs") or [])


@dataclass
class HubSpotStub:
    """Answers by (method, path); a route is a handler or a queue of replies (last repeats)."""

    server: HTTPServer
    calls: list[Call] = field(default_factory=list)
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def client(self, token: str | None = TOKEN) -> Any:
        return hubspot.Client.create(access_token=token, host=self.url)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        queue = list(replies)
        self.on(method, path, lambda _: queue.pop(0) if len(queue) > 1 else queue[0])

    def to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def _handle(self, request: Request) -> Response:
        call = Call(
            method=request.method,
            path=request.path,
            query={k: request.args.getlist(k) for k in request.args},
            json=request.get_json(silent=True),
            form=dict(request.form),
            headers=dict(request.headers),
        )
        self.calls.append(call)
        handler = self.routes.get((call.method, call.path))
        if handler is None:
            return _json(404, {"status": "error", "message": f"no stub for {call.path}"})
        status, body, *rest = handler(call)
        return _json(status, body, rest[0] if rest else {})


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    text = "" if body is None else json.dumps(body)
    return Response(
        text, status=status, headers=dict(headers or {}), content_type="application/json"
    )


def batch(
    results: Iterable[Mapping[str, Any]], errors: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A ``BatchResponseSimplePublicObject[WithErrors]`` body."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "startedAt": "2026-11-25T16:40:00.000Z",
        "completedAt": "2026-11-25T16:40:00.000Z",
        "results": list(results),
    }
    errors = list(errors)
    if errors:
        body |= {"numErrors": len(errors), "errors": errors}
    return body


def record(object_id: str, **properties: Any) -> dict[str, Any]:
    """A ``SimplePublicObject``."""
    return {
        "id": object_id,
        "properties": {"hs_object_id": object_id, **properties},
        "createdAt": "2026-11-25T16:40:00.000Z",
        "updatedAt": "2026-11-25T16:40:00.000Z",
        "archived": False,
    }


def batch_error(
    message: str, category: str = "VALIDATION_ERROR", **context: list[str]
) -> dict[str, Any]:
    """A ``StandardError`` as found in a 207's ``errors[]``."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


class CommunicationsFake:
    """Communications keyed by a unique message-id property, like HubSpot enforces it.

    ``mode`` is how a duplicate is refused: ``"207"`` per input, or ``"409"`` for the call.
    The duplicate wording is illustrative: HubSpot's exact text is not documented.
    """

    def __init__(self, stub: HubSpotStub, id_property: str, mode: str = "207") -> None:
        self.id_property, self.mode = id_property, mode
        self.by_key: dict[str, str] = {}
        self._ids = itertools.count(77001)
        stub.on("POST", "/crm/v3/objects/communications/batch/create", self.create)
        stub.on("POST", "/crm/v3/objects/communications/batch/read", self.read)

    def _duplicate(self, key: str) -> str:
        return f'A communication with {self.id_property} "{key}" already exists.'

    def create(self, call: Call) -> Reply:
        keys = [i["properties"][self.id_property] for i in call.inputs]
        dups = [k for k in keys if k in self.by_key]
        if dups and self.mode == "409":
            return 409, {
                "status": "error",
                "message": self._duplicate(dups[0]),
                "category": "CONFLICT",
                "correlationId": "c0ffee00-0000-4000-8000-000000000409",
            }
        results = []
        for item, key in zip(call.inputs, keys, strict=True):
            if key not in self.by_key:
                self.by_key[key] = str(next(self._ids))
                results.append(
                    {**record(self.by_key[key]), "objectWriteTraceId": item["objectWriteTraceId"]}
                )
        errors = [batch_error(self._duplicate(k), objectWriteTraceId=[k]) for k in dups]
        return (207 if errors else 201), batch(results, errors)

    def read(self, call: Call) -> Reply:
        assert call.json["idProperty"] == self.id_property
        wanted = [i["id"] for i in call.inputs]
        found = [
            record(self.by_key[k], **{self.id_property: k}) for k in wanted if k in self.by_key
        ]
        missing = [k for k in wanted if k not in self.by_key]
        errors = [
            batch_error("Could not get some COMMUNICATION objects", "OBJECT_NOT_FOUND", ids=missing)
        ]
        return (207, batch(found, errors)) if missing else (200, batch(found))


class RecordingLimiter:
    """A ``CallLimiter`` that never waits and remembers every bucket asked for."""

    def __init__(self) -> None:
        self.buckets: list[str] = []

    def acquire(self, bucket: str, weight: int = 1) -> None:
        self.buckets.append(bucket)


def make_adapter(stub: HubSpotStub, limiter: RecordingLimiter, **settings: Any) -> HubSpotAdapter:
    """A ``HubSpotAdapter`` on the real SDK, pointed at the stub."""
    options = HubSpotSettings(access_token=TOKEN, base_url=stub.url, **settings)
    return HubSpotAdapter(stub.client(), settings=options, limiter=limiter)


def expected_buckets(stub: HubSpotStub) -> list[str]:
    """The limiter bucket each recorded call should have taken."""
    return [
        "hubspot:search" if c.path.endswith("/search") else "hubspot:default" for c in stub.calls
    ]
