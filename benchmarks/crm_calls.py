"""CRM call benchmark: HubSpot API calls and webhook-to-CRM latency, product vs a naive flow.

    .venv/bin/python benchmarks/crm_calls.py [--messages 10000] [--contacts 1000] [--rate 400]
        [--naive-messages 600] [--unknown 100]

A local HubSpot stub (``hubspot_stub_server.py``: HubSpot's shapes, per-endpoint counts,
the 10 s rolling burst limit and search's 5/s, 429s in HubSpot's words) stands in for the
CRM; the customers are pre-seeded in it as existing contacts carrying ``whatsapp_wa_id``.

* ``product``: the real connector (``wacrm db upgrade`` + ``wacrm serve`` on SQLite, in its
  own process group) gets a seeded stream of signed Meta webhooks, one inbound text per
  POST, open loop at ``--rate``; latency = stub receipt of the wamid - scheduled POST time.
* ``product+unknown``: the same, with ``--unknown`` customers not carrying the wa_id in
  HubSpot (half exist by phone only, half not at all).
* ``naive``: per message, what a typical Zapier/n8n flow does: search the contact by phone,
  create it if missing, create one communication, associate it; 429s wait as told.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import itertools
import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.hubspot_stub_server import (  # noqa: E402
    MESSAGE_ID_PROPERTY,
    HubSpotStub,
    Limits,
    StubServer,
    seed_known,
    seed_legacy,
)
from benchmarks.ingest import (  # noqa: E402
    align,
    busy_share,
    clean_env,
    cpu_times,
    fmt,
    free_port,
    idle_check,
    log,
    percentile,
    stop,
)

RESULTS_DIR = ROOT / "benchmarks" / "results"
HOST = "127.0.0.1"
PATH = "/webhooks/whatsapp"
SECRET = "bench-app-secret"
ADMIN_TOKEN = "bench-admin"
HUBSPOT_TOKEN = "bench-token"
SEED = 20261125
CLIENT_THREADS = 8
NAIVE_WORKERS = 4
READY_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 120.0  # after the last POST
SETTLE_TIMEOUT_S = 20.0  # outbox rows to reach done after the stub has every wamid
TEN_SECONDLY_WAIT_S, SECONDLY_WAIT_S = 10.0, 1.0  # HubSpot's Node client, per attempt
MAX_NAIVE_ATTEMPTS = 30
HUBSPOT_BATCH = 100
TARGET_CALLS_PER_MESSAGE = 0.03
TARGET_RATIO = 50.0
TARGET_P95_S = 5.0
COUNTRIES = ("49151", "44770", "55119", "91981", "34612", "52155")
FIRST = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kemi")
LAST = ("Silva", "Meyer", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Park", "Lopez")
TEXTS = (
    "Hi, is my order on its way?",
    "Can I change the delivery address?",
    "Thanks!",
    "What are your opening hours?",
    "I'd like a refund for order 4411",
    "Is the blue one back in stock?",
    "ok",
    "Can someone call me back?",
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Customer:
    wa_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Message:
    index: int
    wamid: str
    customer: Customer
    text: str


@dataclass(slots=True)
class Sent:
    scheduled: float
    started: float = 0.0
    acked: float = 0.0
    status: int | str = 0


@dataclass(slots=True)
class FlowResult:
    """One flow's figures; ``messages`` are those the flow delivered (product: acked)."""

    flow: str
    seeding: str
    messages: int
    calls: int
    by_endpoint: dict[str, int]
    rate_limited: dict[str, int]
    wall_s: float
    peak_burst_window: int
    peak_search_second: int
    latency_s: dict[str, float | None] = field(default_factory=dict)
    stages_s: dict[str, dict[str, float | None]] = field(default_factory=dict)
    missing: int = 0
    post_errors: dict[str, int] = field(default_factory=dict)
    client_lag_max_s: float | None = None
    ack_rate: float | None = None
    outbox: dict[str, Any] | None = None
    floor_calls: int | None = None
    distinct_contacts: int = 0

    @property
    def calls_per_message(self) -> float | None:
        return self.calls / self.messages if self.messages else None

    @property
    def total_429(self) -> int:
        return sum(self.rate_limited.values())


# --------------------------------------------------------------------------- the stream


def make_customers(count: int, rng: random.Random) -> list[Customer]:
    seen: dict[str, Customer] = {}
    while len(seen) < count:
        wa_id = rng.choice(COUNTRIES) + f"{rng.randrange(10**7):07d}"
        seen.setdefault(wa_id, Customer(wa_id, f"{rng.choice(FIRST)} {rng.choice(LAST)}"))
    return list(seen.values())


def wamid_for(index: int, wa_id: str) -> str:
    raw = f"{wa_id}:{SEED}:{index:08d}".encode()
    return "wamid." + base64.b64encode(raw).decode()


def make_stream(messages: int, customers: Sequence[Customer], rng: random.Random) -> list[Message]:
    """Each message from a customer drawn uniformly at random (fixed by the seed)."""
    stream = []
    for i in range(messages):
        customer = rng.choice(customers)
        stream.append(Message(i, wamid_for(i, customer.wa_id), customer, rng.choice(TEXTS)))
    return stream


def webhook_body(message: Message, when: float) -> bytes:
    from tests.payloads import inbound

    moment = datetime.fromtimestamp(int(when), tz=UTC)
    customer = message.customer
    return inbound(
        message.wamid, moment, wa_id=customer.wa_id, text=message.text, name=customer.name
    )


def signed(body: bytes) -> str:
    from whatsapp import meta_signature

    return meta_signature(SECRET, body)


def seed_stub(stub: HubSpotStub, customers: Sequence[Customer], unknown: int) -> str:
    """Known contacts carry the wa_id; of the ``unknown`` first, half exist by phone only."""
    unknown = min(unknown, len(customers))
    legacy = customers[: unknown // 2]
    known = customers[unknown:]
    seed_known(stub, [c.wa_id for c in known], [c.name for c in known])
    seed_legacy(stub, [c.wa_id for c in legacy])
    if not unknown:
        return f"{len(known)} known"
    return f"{len(known)} known, {len(legacy)} by phone only, {unknown - len(legacy)} absent"


# --------------------------------------------------------------------------- the connector


def connector_env(workdir: Path, stub_url: str) -> dict[str, str]:
    return clean_env() | {
        "WACRM_DATABASE_URL": f"sqlite:///{workdir / 'wacrm.db'}",
        "WACRM_QUEUE_PATH": str(workdir / "queue.db"),
        "WACRM_CRM": "hubspot",
        "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
        "WACRM_HUBSPOT_BASE_URL": stub_url,
        "HUBSPOT_TIER": "starter",
        "WACRM_ADMIN_TOKEN": ADMIN_TOKEN,
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench-verify",
        "WACRM_LOG_LEVEL": "WARNING",
    }


def wacrm() -> str:
    return str(Path(sys.executable).with_name("wacrm"))


@contextlib.contextmanager
def running_connector(
    env: dict[str, str], workdir: Path, port: int, workers: int
) -> Iterator[Path]:
    """``wacrm db upgrade`` then ``wacrm serve`` in its own process group (cwd: no .env)."""
    subprocess.run(
        [wacrm(), "db", "upgrade"], cwd=workdir, env=env, check=True, capture_output=True
    )
    logfile = workdir / "serve.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [wacrm(), "serve", "--port", str(port), "--workers", str(workers)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(proc, port, logfile)
            yield logfile
        finally:
            stop(proc)


def wait_ready(proc: subprocess.Popen[bytes], port: int, logfile: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    tail = logfile.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"wacrm serve on port {port} not ready:\n{tail}")


def sync_status(port: int) -> dict[str, Any]:
    response = requests.get(
        f"http://{HOST}:{port}/api/v1/sync/status",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def unsettled(status: dict[str, Any]) -> int:
    counts = status.get("counts") or {}
    return sum(
        n for states in counts.values() for s, n in states.items() if s in ("pending", "in_flight")
    )


def wait_settled(port: int) -> dict[str, Any]:
    """The outbox once nothing is pending or in flight (or after SETTLE_TIMEOUT_S)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    status = sync_status(port)
    while unsettled(status) and time.monotonic() < deadline:
        time.sleep(0.5)
        status = sync_status(port)
    return status


# --------------------------------------------------------------------------- load


class Poster:
    """One keep-alive connection; reconnects (and resends once) when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, signature: str) -> int:
        for attempt in range(2):
            try:
                return self._roundtrip(body, signature)
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _roundtrip(self, body: bytes, signature: str) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        self.conn.request("POST", PATH, body=body, headers=headers)
        response = self.conn.getresponse()
        response.read()
        if response.will_close:
            self.close()
        return response.status

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def send_stream(port: int, stream: Sequence[Message], rate: float) -> list[Sent]:
    """Open loop: message i is due at start + i/rate, whatever the server does."""
    start = time.time() + 0.2
    sent = [Sent(scheduled=start + i / rate) for i in range(len(stream))]
    bodies = [webhook_body(m, sent[m.index].scheduled) for m in stream]
    signatures = [signed(b) for b in bodies]
    counter = itertools.count()

    def client() -> None:
        poster = Poster(port)
        while (i := next(counter)) < len(stream):
            record = sent[i]
            time.sleep(max(0.0, record.scheduled - time.time()))
            record.started = time.time()
            try:
                record.status = poster.post(bodies[i], signatures[i])
            except (OSError, http.client.HTTPException) as exc:
                record.status = type(exc).__name__
            record.acked = time.time()
        poster.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def wait_delivered(stub: HubSpotStub, wamids: Sequence[str], last_post: float) -> dict[str, float]:
    """Creation time per wamid, once the stub has them all (or DRAIN_TIMEOUT_S after)."""
    deadline = last_post + DRAIN_TIMEOUT_S
    wanted = set(wamids)
    while True:
        created = stub.created_at()
        if wanted <= created.keys() or time.time() >= deadline:
            return created
        time.sleep(0.2)


# --------------------------------------------------------------------------- stages


def parse_db_time(value: Any) -> float | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def outbox_times(db_path: Path) -> dict[str, tuple[float | None, float | None]]:
    """``log_message`` rows: wamid -> (created_at, done_at), as epoch seconds."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute(
            "SELECT record_key, created_at, done_at FROM outbox WHERE operation = 'log_message'"
        ).fetchall()
    return {str(k): (parse_db_time(c), parse_db_time(d)) for k, c, d in rows}


def spread(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "max": ordered[-1] if ordered else None,
    }


def stages(
    stream: Sequence[Message],
    sent: Sequence[Sent],
    created: dict[str, float],
    outbox: dict[str, tuple[float | None, float | None]],
) -> dict[str, dict[str, float | None]]:
    """Where latency goes: POST -> ack, ack -> outbox row (queue + normalise), row -> CRM."""
    ack, normalise, sync = [], [], []
    for message in stream:
        record, row = sent[message.index], outbox.get(message.wamid, (None, None))
        if record.status != 200:
            continue
        ack.append(record.acked - record.scheduled)
        if row[0] is not None:
            normalise.append(row[0] - record.acked)
            if message.wamid in created:
                sync.append(created[message.wamid] - row[0])
    return {
        "post_to_ack": spread(ack),
        "ack_to_outbox_row": spread(normalise),
        "outbox_row_to_crm": spread(sync),
    }


# --------------------------------------------------------------------------- product flow


def batch_floor(stream: Sequence[Message]) -> int:
    """CRM_API_NOTES §4: ceil(N/100) communications + ceil(M/100) contact calls."""
    contacts = len({m.customer.wa_id for m in stream})
    return -(-len(stream) // HUBSPOT_BATCH) + -(-contacts // HUBSPOT_BATCH)


def run_product(
    name: str,
    stream: Sequence[Message],
    customers: Sequence[Customer],
    args: argparse.Namespace,
    unknown: int,
) -> FlowResult:
    stub = HubSpotStub(token=HUBSPOT_TOKEN, limits=Limits())
    seeding = seed_stub(stub, customers, unknown)
    with StubServer(stub) as server, tempfile.TemporaryDirectory(prefix="wacrm-crm-") as tmp:
        workdir, port = Path(tmp), free_port()
        log(f"{name}: stub on {server.url} ({seeding}); connector on port {port}")
        env = connector_env(workdir, server.url)
        with running_connector(env, workdir, port, args.serve_workers):
            log(f"{name}: {len(stream)} webhooks at {args.rate:g}/s")
            sent = send_stream(port, stream, args.rate)
            last_post = max(s.acked for s in sent)
            log(f"{name}: all POSTed; waiting for the stub to receive every wamid")
            created = wait_delivered(stub, [m.wamid for m in stream], last_post)
            outbox = wait_settled(port)
        db_times = outbox_times(workdir / "wacrm.db")
        return product_result(
            name, seeding, stream, sent, created, stub.snapshot(), outbox, db_times
        )


def product_result(
    name: str,
    seeding: str,
    stream: Sequence[Message],
    sent: Sequence[Sent],
    created: dict[str, float],
    stats: dict[str, Any],
    outbox: dict[str, Any],
    db_times: dict[str, tuple[float | None, float | None]],
) -> FlowResult:
    acked = [m for m in stream if sent[m.index].status == 200]
    latencies = [created[m.wamid] - sent[m.index].scheduled for m in acked if m.wamid in created]
    errors = Counter(str(s.status) for s in sent if s.status != 200)
    done = [created[m.wamid] for m in acked if m.wamid in created]
    return FlowResult(
        flow=name,
        seeding=seeding,
        messages=len(acked),
        calls=stats["total_calls"],
        by_endpoint=stats["calls"],
        rate_limited=stats["rate_limited"],
        wall_s=(max(done) if done else time.time()) - sent[0].scheduled,
        peak_burst_window=stats["peak_burst_window"],
        peak_search_second=stats["peak_search_second"],
        latency_s=spread(latencies),
        stages_s=stages(stream, sent, created, db_times),
        missing=len(acked) - len(latencies),
        post_errors=dict(errors),
        client_lag_max_s=max(s.started - s.scheduled for s in sent),
        ack_rate=len(acked) / max(1e-9, max(s.acked for s in sent) - sent[0].scheduled),
        outbox=outbox,
        floor_calls=batch_floor(stream),
        distinct_contacts=len({m.customer.wa_id for m in stream}),
    )


# --------------------------------------------------------------------------- naive flow


def rate_limit_wait(response: requests.Response, attempt: int) -> float:
    """``Retry-After`` if sent, else by HubSpot's policy (as HubSpot's Node client does)."""
    header = response.headers.get("Retry-After")
    if header and header.replace(".", "", 1).isdigit():
        return float(header)
    body = response.json() if response.content else {}
    if body.get("policyName") == "DAILY":
        raise RuntimeError("naive flow hit HubSpot's daily limit")
    if body.get("policyName") == "TEN_SECONDLY_ROLLING":
        return TEN_SECONDLY_WAIT_S * attempt
    return SECONDLY_WAIT_S * attempt


def naive_call(session: requests.Session, method: str, url: str, body: Any = None) -> Any:
    for attempt in range(1, MAX_NAIVE_ATTEMPTS + 1):
        response = session.request(method, url, json=body, timeout=30)
        if response.status_code != 429:
            response.raise_for_status()
            return response.json() if response.content else {}
        time.sleep(rate_limit_wait(response, attempt))
    raise RuntimeError(f"naive flow: still rate-limited after {MAX_NAIVE_ATTEMPTS} tries")


def naive_message(session: requests.Session, base: str, message: Message) -> None:
    """Find or create the contact by phone, create the communication, associate it."""
    phone = f"+{message.customer.wa_id}"
    search = {
        "filterGroups": [
            {"filters": [{"propertyName": "phone", "operator": "EQ", "value": phone}]}
        ],
        "properties": ["phone", "firstname", "lastname"],
        "limit": 1,
    }
    found = naive_call(session, "POST", f"{base}/crm/v3/objects/contacts/search", search)
    if found.get("results"):
        contact_id = found["results"][0]["id"]
    else:
        first, _, last = message.customer.name.partition(" ")
        props = {"phone": phone, "firstname": first, "lastname": last}
        created = naive_call(
            session, "POST", f"{base}/crm/v3/objects/contacts", {"properties": props}
        )
        contact_id = created["id"]
    properties = {
        "hs_communication_channel_type": "WHATS_APP",
        "hs_communication_logged_from": "CRM",
        "hs_communication_body": message.text,
        "hs_timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        MESSAGE_ID_PROPERTY: message.wamid,  # lets the stub confirm delivery
    }
    comm = naive_call(
        session, "POST", f"{base}/crm/v3/objects/communications", {"properties": properties}
    )
    path = f"/crm/v4/objects/communications/{comm['id']}/associations/default/contacts/{contact_id}"
    naive_call(session, "PUT", f"{base}{path}")


def run_naive(stream: Sequence[Message], customers: Sequence[Customer]) -> FlowResult:
    stub = HubSpotStub(token=HUBSPOT_TOKEN, limits=Limits())
    seeding = seed_stub(stub, customers, 0)
    failures: Counter[str] = Counter()
    counter = itertools.count()

    def worker(base: str) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {HUBSPOT_TOKEN}"
            while (i := next(counter)) < len(stream):
                try:
                    naive_message(session, base, stream[i])
                except (requests.RequestException, RuntimeError) as exc:
                    failures[type(exc).__name__] += 1

    with StubServer(stub) as server:
        log(f"naive: {len(stream)} messages, {NAIVE_WORKERS} concurrent runs, stub {server.url}")
        started = time.time()
        threads = [
            threading.Thread(target=worker, args=(server.url,)) for _ in range(NAIVE_WORKERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.time() - started
    stats = stub.snapshot()
    delivered = len(set(stub.created_at()) & {m.wamid for m in stream})
    return FlowResult(
        flow="naive",
        seeding=seeding,
        messages=delivered,
        calls=stats["total_calls"],
        by_endpoint=stats["calls"],
        rate_limited=stats["rate_limited"],
        wall_s=wall,
        peak_burst_window=stats["peak_burst_window"],
        peak_search_second=stats["peak_search_second"],
        missing=len(stream) - delivered,
        post_errors=dict(failures),
        distinct_contacts=len({m.customer.wa_id for m in stream}),
    )


# --------------------------------------------------------------------------- report


def table(results: Sequence[FlowResult]) -> str:
    header = (
        "flow",
        "HubSpot contacts",
        "messages",
        "CRM calls",
        "calls/msg",
        "429s",
        "p50 s",
        "p95 s",
        "max s",
        "wall s",
    )
    lines = [header]
    for r in results:
        lat = r.latency_s
        lines.append(
            (
                r.flow,
                r.seeding,
                str(r.messages),
                str(r.calls),
                fmt(r.calls_per_message, ".4f"),
                str(r.total_429),
                fmt(lat.get("p50"), ".2f"),
                fmt(lat.get("p95"), ".2f"),
                fmt(lat.get("max"), ".2f"),
                fmt(r.wall_s, ".1f"),
            )
        )
    return align(lines)


def endpoint_lines(results: Sequence[FlowResult]) -> list[str]:
    lines = ["calls by endpoint (429s in brackets):"]
    for r in results:
        lines.append(f"  {r.flow}:")
        for label, count in sorted(r.by_endpoint.items(), key=lambda kv: -kv[1]):
            limited = r.rate_limited.get(label)
            lines.append(f"    {count:>6}  {label}" + (f"  [{limited} x 429]" if limited else ""))
        lines.append(
            f"    peak admitted: {r.peak_burst_window} calls in a rolling 10 s (limit 100), "
            f"{r.peak_search_second} searches in a rolling 1 s (limit 5)"
        )
    return lines


def detail_lines(results: Sequence[FlowResult]) -> list[str]:
    lines = []
    for r in results:
        if r.outbox is not None:
            lines.append(f"  {r.flow}: outbox {outbox_summary(r.outbox)}")
            dead = r.outbox.get("dead") or []
            if dead:
                lines.append(f"    dead letters (latest): {json.dumps(dead[:3])}")
        if r.stages_s:
            parts = [
                f"{stage} p50 {fmt(v['p50'], '.2f')} / p95 {fmt(v['p95'], '.2f')} s"
                for stage, v in r.stages_s.items()
            ]
            lines.append(f"    latency stages: {'; '.join(parts)}")
        if r.client_lag_max_s is not None:
            lines.append(
                f"    webhooks acknowledged at {fmt(r.ack_rate, '.0f')}/s; load generator max "
                f"lag behind schedule {r.client_lag_max_s:.2f} s"
            )
        if r.missing or r.post_errors:
            lines.append(f"    missing at the stub: {r.missing}; errors: {r.post_errors or 'none'}")
    return lines


def outbox_summary(status: dict[str, Any]) -> str:
    """``GET /api/v1/sync/status`` counts, and whether anything is dead or still pending."""
    counts = status.get("counts") or {}
    states: Counter[str] = Counter()
    for by_state in counts.values():
        states.update(by_state)
    stuck = {s: n for s, n in states.items() if s != "done"}
    verdict = "all done" if not stuck else ", ".join(f"{n} {s}" for s, n in sorted(stuck.items()))
    return f"{json.dumps(counts)} ({verdict})"


def verdicts(product: FlowResult, naive: FlowResult | None) -> list[dict[str, Any]]:
    ratio = None
    if naive and naive.calls_per_message and product.calls_per_message:
        ratio = naive.calls_per_message / product.calls_per_message
    p95 = product.latency_s.get("p95")
    cpm = product.calls_per_message
    return [
        {
            "target": f"calls/message <= {TARGET_CALLS_PER_MESSAGE}",
            "value": cpm,
            "ok": cpm is not None and cpm <= TARGET_CALLS_PER_MESSAGE,
        },
        {
            "target": f"naive/product calls per message >= {TARGET_RATIO:g}x",
            "value": ratio,
            "ok": ratio is not None and ratio >= TARGET_RATIO,
        },
        {
            "target": f"p95 webhook-to-CRM <= {TARGET_P95_S:g} s",
            "value": p95,
            "ok": p95 is not None and p95 <= TARGET_P95_S and not product.missing,
        },
        {"target": "zero 429s", "value": product.total_429, "ok": product.total_429 == 0},
    ]


def verdict_lines(flow: str, found: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in found:
        value = v["value"]
        shown = fmt(value, ".4g") if isinstance(value, float) else str(value)
        lines.append(f"  {flow}: {v['target']}: {shown} {'PASS' if v['ok'] else 'FAIL'}")
    return lines


def notes(
    args: argparse.Namespace, results: Sequence[FlowResult], machine: dict[str, Any]
) -> list[str]:
    product = results[0]
    floor = product.floor_calls or 0
    during = machine.get("during") or {}
    return [
        f"machine: {os.cpu_count()} CPUs shared by the connector, the stub and the load "
        f"generator; loopback only; CPU busy {fmt(during.get('busy_pct'), '.0f')}% over the run",
        "HubSpot stub: benchmarks/hubspot_stub_server.py, Starter private app limits "
        "(100 calls / rolling 10 s, search 5/s and exempt from the 10 s bucket), no added "
        "service time; customers pre-seeded as existing contacts with whatsapp_wa_id set",
        f"stream: {args.messages} inbound texts (seed {SEED}) from {args.contacts} customers drawn "
        f"uniformly ({product.distinct_contacts} distinct), one message per signed POST, open "
        f"loop at {args.rate:g}/s from {CLIENT_THREADS} threads; latency = stub receipt - "
        "scheduled POST time",
        f"connector: wacrm serve --workers {args.serve_workers} (4 threads, 2 queue consumers and "
        "a sync loop per worker; outbox polled every 250 ms, batches sent at 100 or after 2 s), "
        "SQLite, WACRM_CRM=hubspot, HUBSPOT_TIER=starter",
        f"batch floor (CRM_API_NOTES §4): ceil(N/100)+ceil(M/100) = {floor} calls = "
        f"{floor / args.messages:.4f}/message",
        f"naive: first {args.naive_messages} messages of the same stream, {NAIVE_WORKERS} "
        "concurrent runs; per message: contacts/search by phone, create contact if none, "
        "POST communication, PUT default association; on 429 sleep Retry-After, else 10 s x "
        "attempt (TEN_SECONDLY_ROLLING) or 1 s x attempt (secondly), as HubSpot's Node client; "
        "per-message figures do not depend on volume",
    ]


def write_json(
    args: argparse.Namespace,
    results: Sequence[FlowResult],
    found: dict[str, list[dict[str, Any]]],
    machine: dict[str, Any],
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"crm_calls-{stamp}.json"
    doc = {
        "timestamp": stamp,
        "args": vars(args),
        "seed": SEED,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": machine,
        "notes": notes(args, results, machine),
        "results": [
            asdict(r) | {"calls_per_message": r.calls_per_message, "total_429": r.total_429}
            for r in results
        ],
        "targets": found,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def report(args: argparse.Namespace, results: list[FlowResult], machine: dict[str, Any]) -> bool:
    naive = next((r for r in results if r.flow == "naive"), None)
    products = [r for r in results if r.flow != "naive"]
    found = {p.flow: verdicts(p, naive) for p in products}
    print("\n".join(notes(args, results, machine)))
    print()
    print(table(results))
    if naive and naive.calls_per_message:
        for p in products:
            if p.calls_per_message:
                ratio = naive.calls_per_message / p.calls_per_message
                print(f"naive/{p.flow} calls per message: {ratio:.0f}x")
    print("\n".join(endpoint_lines(results)))
    print("details:")
    print("\n".join(detail_lines(results)))
    print("targets:")
    for flow, verdict in found.items():
        print("\n".join(verdict_lines(flow, verdict)))
    print(f"results: {write_json(args, results, found, machine).relative_to(ROOT)}")
    return all(v["ok"] for v in found[products[0].flow])


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="webhooks for the product")
    parser.add_argument("--contacts", type=int, default=1000, help="customers (seeded in HubSpot)")
    parser.add_argument("--rate", type=float, default=100.0, help="webhooks per second")
    parser.add_argument("--naive-messages", type=int, default=600, help="0 skips the naive flow")
    parser.add_argument(
        "--unknown",
        type=int,
        default=100,
        help="customers without whatsapp_wa_id in HubSpot for the variant run (0 skips it)",
    )
    parser.add_argument(
        "--unknown-messages",
        type=int,
        default=3000,
        help="the variant run sends the first N messages of the stream",
    )
    parser.add_argument(
        "--serve-workers", type=int, default=1, help="wacrm serve --workers (its default: 1)"
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.contacts < 1 or args.rate <= 0:
        parser.error("--messages, --contacts and --rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(SEED)
    customers = make_customers(args.contacts, rng)
    stream = make_stream(args.messages, customers, rng)
    machine: dict[str, Any] = {"before": idle_check()}
    start = cpu_times()
    results = [run_product("product", stream, customers, args, 0)]
    if args.unknown:
        subset = stream[: args.unknown_messages]
        results.append(run_product("product+unknown", subset, customers, args, args.unknown))
    if args.naive_messages:
        results.append(run_naive(stream[: args.naive_messages], customers))
    machine["during"] = busy_share(start, cpu_times())
    return 0 if report(args, results, machine) else 1


if __name__ == "__main__":
    sys.exit(main())
