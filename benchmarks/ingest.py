"""Webhook ingest benchmark: the product's ack path against a bare and a minimal durable view.

    .venv/bin/python benchmarks/ingest.py [--duration 10] [--db sqlite,postgresql] [--rate 500]

For each database backend, three servers run under the same gunicorn settings:

* ``bare``     a Flask view that only returns 200 (the framework's ceiling);
* ``minimal``  HMAC check + ``json.loads`` + one INSERT/COMMIT (the floor of a correct receiver);
* ``product``  ``connector:create_app()``, web only (no queue consumer): what acknowledges.

Each gets signed POSTs of ``tests/fixtures/whatsapp/meta_text.json``: a closed loop (``wrk``
when installed, else a Python asyncio client) and an open loop at a fixed offered rate whose
latency is measured from the scheduled send time (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "whatsapp" / "meta_text.json"
RESULTS_DIR = ROOT / "benchmarks" / "results"
PATH = "/webhooks/whatsapp"
HOST = "127.0.0.1"
SECRET = "bench-app-secret"
BENCH_DB = "wacrm_bench"
BENCH_TABLE = "bench_inbox"
DEFAULT_PG = "postgresql://root@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
HUEY_KEYS = ("huey.redis.wacrm", "huey.schedule.wacrm", "huey.results.wacrm", "huey.counters.wacrm")
# reuse_port: each worker gets its own listening socket and the kernel spreads connections
# over them; without it wrk's 16 keep-alive connections often all land on one worker, which
# halves throughput at random from run to run.
GUNICORN = {
    "workers": 2,
    "worker_class": "gthread",
    "threads": 4,
    "keep_alive_s": 30,
    "reuse_port": True,
}
SERVERS = ("bare", "minimal", "product")
APP_SPECS = {
    "bare": "benchmarks.reference_apps:bare_app()",
    "minimal": "benchmarks.reference_apps:minimal_app()",
    "product": "connector:create_app()",
}
FOREIGN_ENV = ("WACRM_", "WHATSAPP_", "TWILIO_", "HUBSPOT_", "SALESFORCE_", "BENCH_")
WARMUP_S = 1.0
READY_TIMEOUT_S = 30.0
TARGET_RATIO = 0.8
TARGET_P99_MS = 50.0
TARGET_RATE = 500.0


# --------------------------------------------------------------------------- data


@dataclass(slots=True)
class Backend:
    name: str
    product_url: str  # SQLAlchemy URL for WACRM_DATABASE_URL
    minimal_url: str  # psycopg URL or SQLite path for the minimal view
    redis_url: str | None
    queue_path: str


@dataclass(slots=True)
class Load:
    """One load phase: request count, achieved rate, latency percentiles, failures."""

    ok: int = 0
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    client_cpu_pct: float | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(slots=True)
class Row:
    backend: str
    server: str
    closed: Load
    opened: Load
    rows_stored: int | None = None


@dataclass(slots=True)
class Request:
    host: str
    port: int
    body: bytes
    signature: str

    @property
    def raw(self) -> bytes:
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nX-Hub-Signature-256: {self.signature}\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def sign(body: bytes) -> str:
    sys.path.insert(0, str(ROOT))
    from whatsapp import meta_signature

    return meta_signature(SECRET, body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: list[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def cpu_times() -> list[int] | None:
    """Aggregate jiffies from /proc/stat (user nice system idle iowait irq softirq steal)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    return [int(v) for v in first[1:9]]


def busy_share(before: list[int] | None, after: list[int] | None) -> dict[str, float] | None:
    """Percent of all CPUs busy, and stolen by the hypervisor, between two samples."""
    if not before or not after:
        return None
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta) or 1
    idle = delta[3] + delta[4]
    return {"busy_pct": 100 * (total - idle) / total, "steal_pct": 100 * delta[7] / total}


def idle_check(seconds: float = 1.0) -> dict[str, float] | None:
    before = cpu_times()
    time.sleep(seconds)
    return busy_share(before, cpu_times())


def clean_env() -> dict[str, str]:
    """The inherited environment without any connector setting that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def product_env(backend: Backend) -> dict[str, str]:
    env = {
        "WACRM_DATABASE_URL": backend.product_url,
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench-verify",
        "WACRM_ADMIN_TOKEN": "bench-admin",
        "WACRM_QUEUE_PATH": backend.queue_path,
    }
    if backend.redis_url:
        env["WACRM_REDIS_URL"] = backend.redis_url
    return env


# --------------------------------------------------------------------------- databases


def migrate(backend: Backend, workdir: Path) -> None:
    """Apply the product's migrations with its own CLI (cwd is the temp dir: no .env)."""
    wacrm = Path(sys.executable).with_name("wacrm")
    subprocess.run(
        [str(wacrm), "db", "upgrade"],
        cwd=workdir,
        check=True,
        env=clean_env() | product_env(backend),
        capture_output=True,
        timeout=120,
    )


def prepare_sqlite(workdir: Path) -> Backend:
    minimal = workdir / "minimal.db"
    with contextlib.closing(sqlite3.connect(minimal)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            f"CREATE TABLE {BENCH_TABLE} (id INTEGER PRIMARY KEY, "
            "received_at TEXT NOT NULL, body BLOB NOT NULL)"
        )
    backend = Backend(
        "sqlite", f"sqlite:///{workdir / 'wacrm.db'}", str(minimal), None, str(workdir / "queue.db")
    )
    migrate(backend, workdir)
    return backend


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def ensure_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_psycopg_url(admin_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(f'CREATE DATABASE "{name}"')
        log(f"created database {name}")


def reset_pg_tables(url: str) -> None:
    """Drop the connector's tables (and ours) so every run starts from empty tables."""
    import psycopg

    sys.path.insert(0, str(ROOT))
    from connector.models import Base
    from crm_adapters import local

    names = [*Base.metadata.tables, *local.metadata.tables, "alembic_version", BENCH_TABLE]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS " + ", ".join(f'"{n}"' for n in names) + " CASCADE")


def create_pg_bench_table(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {BENCH_TABLE} (id BIGSERIAL PRIMARY KEY, "
            "received_at TIMESTAMPTZ NOT NULL, body BYTEA NOT NULL)"
        )


def clear_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.delete(*HUEY_KEYS)
    finally:
        client.close()


def prepare_postgres(workdir: Path) -> Backend:
    given = os.environ.get("WACRM_BENCH_DATABASE_URL")
    if given:
        url = _psycopg_url(given)
    else:
        ensure_pg_database(DEFAULT_PG, BENCH_DB)
        url = _with_database(DEFAULT_PG, BENCH_DB)
    reset_pg_tables(url)
    redis_url = os.environ.get("WACRM_BENCH_REDIS_URL", DEFAULT_REDIS)
    clear_redis(redis_url)
    backend = Backend("postgresql", url, url, redis_url, str(workdir / "queue.db"))
    migrate(backend, workdir)
    create_pg_bench_table(url)
    return backend


def count_rows(backend: Backend, server: str) -> int | None:
    if server == "bare":
        return None
    table = "webhook_events" if server == "product" else BENCH_TABLE
    if backend.name == "sqlite":
        path = (
            backend.product_url.removeprefix("sqlite:///")
            if server == "product"
            else backend.minimal_url
        )
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    import psycopg

    with psycopg.connect(backend.minimal_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else None


# --------------------------------------------------------------------------- servers


def server_env(server: str, backend: Backend) -> dict[str, str]:
    if server == "product":
        return clean_env() | product_env(backend)
    return clean_env() | {
        "BENCH_APP_SECRET": SECRET,
        "BENCH_DATABASE_URL": backend.minimal_url,
        "BENCH_TABLE": BENCH_TABLE,
    }


def gunicorn_argv(app_spec: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(ROOT),
        "--workers",
        str(GUNICORN["workers"]),
        "--worker-class",
        str(GUNICORN["worker_class"]),
        "--threads",
        str(GUNICORN["threads"]),
        "--keep-alive",
        str(GUNICORN["keep_alive_s"]),
        "--bind",
        f"{HOST}:{port}",
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        *(["--reuse-port"] if GUNICORN["reuse_port"] else []),
        app_spec,
    ]


@contextlib.contextmanager
def running_server(
    server: str, backend: Backend, request: Request, logfile: Path
) -> Iterator[None]:
    """Start gunicorn in its own process group, wait until it answers 200, stop it after."""
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            gunicorn_argv(APP_SPECS[server], request.port),
            cwd=ROOT,
            env=server_env(server, backend),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(proc, request, logfile)
            yield
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # stray workers, if any
        os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(proc: subprocess.Popen[bytes], request: Request, logfile: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            status = post_once(request)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    tail = logfile.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"server on port {request.port} not ready ({last}):\n{tail}")


def post_once(request: Request) -> int:
    import http.client

    conn = http.client.HTTPConnection(request.host, request.port, timeout=5)
    try:
        conn.request(
            "POST",
            PATH,
            body=request.body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": request.signature},
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


# --------------------------------------------------------------------------- wrk (closed loop)

WRK_SCRIPT = """
local f = assert(io.open(%(body_path)q, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Hub-Signature-256"] = %(signature)q

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  if status ~= 200 then statuses[status] = (statuses[status] or 0) + 1 end
end
function done(summary, latency, requests)
  local bad = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do
      local key = "http_" .. tostring(status)
      bad[#bad + 1] = string.format('"%%s": %%d', key, n)
    end
  end
  local e = summary.errors
  bad[#bad + 1] = string.format('"socket_connect": %%d, "socket_read": %%d, "socket_write": %%d, '
    .. '"timeout": %%d', e.connect, e.read, e.write, e.timeout)
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, '
    .. '"p99_us": %%.1f, "errors": {%%s}}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), table.concat(bad, ", ")))
end
"""


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_wrk_script(workdir: Path, request: Request) -> Path:
    body_path = workdir / "body.json"
    body_path.write_bytes(request.body)
    script = workdir / "post.lua"
    text = WRK_SCRIPT.replace("%(body_path)q", lua_string(str(body_path)))
    text = text.replace("%(signature)q", lua_string(request.signature)).replace("%%", "%")
    script.write_text(text)
    return script


def wrk_closed(wrk: str, script: Path, request: Request, duration: float, connections: int) -> Load:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://{request.host}:{request.port}{PATH}",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = {k: int(v) for k, v in data["errors"].items() if v}
    seconds = data["duration_us"] / 1e6
    bad = sum(v for k, v in errors.items() if k.startswith("http_"))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Load(
        ok=int(data["requests"]) - bad,
        seconds=seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        client_cpu_pct=100 * cpu / seconds if seconds else None,
    )


# --------------------------------------------------------------------------- asyncio client


class Connection:
    """A keep-alive HTTP/1.1 connection that sends one pre-built request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def roundtrip(self, raw: bytes) -> tuple[int, bool]:
        """Send ``raw``, read the whole response; return (status, connection reusable)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        keep = headers.get("connection", "").lower() != "close"
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            await self._read_chunked()
        else:
            await self.reader.read()
            keep = False
        return status, keep

    async def _read_chunked(self) -> None:
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        self.writer.close()


class Pool:
    """At most ``limit`` connections; a discarded one leaves a ``None`` slot to reopen."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: asyncio.LifoQueue[Connection | None] = asyncio.LifoQueue()
        self.opened = 0

    async def acquire(self) -> Connection:
        if self.idle.empty() and self.opened < self.limit:
            self.opened += 1
            conn: Connection | None = None
        else:
            conn = await self.idle.get()
        if conn is None:
            try:
                conn = await Connection.open(self.host, self.port)
            except OSError:
                self.idle.put_nowait(None)
                raise
        return conn

    def release(self, conn: Connection, reusable: bool) -> None:
        if reusable:
            self.idle.put_nowait(conn)
        else:
            conn.close()
            self.idle.put_nowait(None)

    def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                conn.close()


@dataclass(slots=True)
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    last_done: float = 0.0

    def load(self, started: float, cpu_s: float, wall_s: float) -> Load:
        ordered = sorted(self.latencies)
        seconds = max(self.last_done - started, 1e-9)
        return Load(
            ok=len(ordered),
            seconds=seconds,
            p50_ms=_ms(percentile(ordered, 50)),
            p99_ms=_ms(percentile(ordered, 99)),
            errors=dict(self.errors),
            client_cpu_pct=100 * cpu_s / wall_s if wall_s else None,
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def send(pool: Pool, raw: bytes, since: float, tally: Tally) -> None:
    """One request; latency counts from ``since`` (the scheduled time in the open loop)."""
    loop = asyncio.get_running_loop()
    try:
        conn = await pool.acquire()
    except OSError as exc:
        tally.errors[f"connect_{type(exc).__name__}"] += 1
        return
    try:
        status, reusable = await conn.roundtrip(raw)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        pool.release(conn, False)
        tally.errors[f"io_{type(exc).__name__}"] += 1
        return
    except asyncio.CancelledError:
        pool.release(conn, False)
        raise
    pool.release(conn, reusable)
    tally.last_done = loop.time()
    if status == 200:
        tally.latencies.append(tally.last_done - since)
    else:
        tally.errors[f"http_{status}"] += 1


async def open_loop(request: Request, rate: float, duration: float, limit: int = 64) -> Load:
    """Send at fixed intervals whatever the server does; latency from the scheduled time."""
    loop = asyncio.get_running_loop()
    pool, tally, raw = Pool(request.host, request.port, limit), Tally(), request.raw
    cpu0, started = time.process_time(), loop.time() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i in range(max(1, int(rate * duration))):
        scheduled = started + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(pool, raw, scheduled, tally)))
    _, pending = await asyncio.wait(tasks, timeout=max(10.0, duration))
    for task in pending:
        task.cancel()
    tally.errors.update({"unanswered": len(pending)} if pending else {})
    await asyncio.gather(*pending, return_exceptions=True)
    pool.close()
    return tally.load(started, time.process_time() - cpu0, loop.time() - started)


async def closed_loop(request: Request, duration: float, connections: int) -> Load:
    """``connections`` clients, each sending its next request as soon as one is answered."""
    loop = asyncio.get_running_loop()
    pool, tally, raw = Pool(request.host, request.port, connections), Tally(), request.raw
    cpu0, started = time.process_time(), loop.time()
    deadline = started + duration

    async def client() -> None:
        while loop.time() < deadline:
            await send(pool, raw, loop.time(), tally)

    await asyncio.gather(*(client() for _ in range(connections)))
    pool.close()
    return tally.load(started, time.process_time() - cpu0, loop.time() - started)


# --------------------------------------------------------------------------- one server


@dataclass(slots=True)
class Plan:
    duration: float
    rate: float
    connections: int
    wrk: str | None
    workdir: Path
    machine: dict[str, Any] = field(default_factory=dict)


def closed(plan: Plan, request: Request, duration: float) -> Load:
    if plan.wrk:
        script = write_wrk_script(plan.workdir, request)
        return wrk_closed(plan.wrk, script, request, duration, plan.connections)
    return asyncio.run(closed_loop(request, duration, plan.connections))


def measure(plan: Plan, backend: Backend, server: str, body: bytes, signature: str) -> Row:
    request = Request(HOST, free_port(), body, signature)
    logfile = plan.workdir / f"{backend.name}-{server}.log"
    log(f"{backend.name}/{server}: starting on port {request.port}")
    with running_server(server, backend, request, logfile):
        closed(plan, request, WARMUP_S)
        log(
            f"{backend.name}/{server}: closed loop, {plan.connections} connections, "
            f"{plan.duration:g}s"
        )
        closed_load = closed(plan, request, plan.duration)
        log(f"{backend.name}/{server}: open loop, {plan.rate:g} req/s offered, {plan.duration:g}s")
        open_load = asyncio.run(open_loop(request, plan.rate, plan.duration))
    return Row(backend.name, server, closed_load, open_load, count_rows(backend, server))


def run_backend(plan: Plan, name: str, body: bytes, signature: str) -> list[Row]:
    workdir = plan.workdir / name
    workdir.mkdir()
    backend = prepare_sqlite(workdir) if name == "sqlite" else prepare_postgres(workdir)
    sub = Plan(plan.duration, plan.rate, plan.connections, plan.wrk, workdir, plan.machine)
    try:
        return [measure(sub, backend, server, body, signature) for server in SERVERS]
    finally:
        if backend.redis_url:
            clear_redis(backend.redis_url)


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def align(lines: Sequence[Sequence[str]]) -> str:
    """Columns padded to width (the first two left-aligned), a rule under the header row."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [
        "  ".join(
            cell.rjust(w) if i > 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def table(rows: list[Row], rate: float) -> str:
    header = (
        "backend",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        f"p50@{rate:g}",
        f"p99@{rate:g}",
        "achieved/s",
        "errors",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.backend,
                r.server,
                fmt(r.closed.rate, ".0f"),
                fmt(r.closed.p50_ms),
                fmt(r.closed.p99_ms),
                fmt(r.opened.p50_ms),
                fmt(r.opened.p99_ms),
                fmt(r.opened.rate, ".0f"),
                str(r.closed.error_count + r.opened.error_count),
            )
        )
    return align(lines)


def error_details(rows: list[Row]) -> list[str]:
    details = []
    for r in rows:
        for phase, load in (("closed", r.closed), ("open", r.opened)):
            if load.errors:
                details.append(f"  {r.backend}/{r.server} {phase}: {load.errors}")
    return details


def verdicts(rows: list[Row], rate: float) -> list[dict[str, Any]]:
    found = []
    by_key = {(r.backend, r.server): r for r in rows}
    for backend in dict.fromkeys(r.backend for r in rows):
        product, minimal = by_key.get((backend, "product")), by_key.get((backend, "minimal"))
        if not product or not minimal:
            continue
        ratio = product.closed.rate / minimal.closed.rate if minimal.closed.rate else None
        p99 = product.opened.p99_ms
        found.append(
            {
                "backend": backend,
                "ratio_to_minimal": ratio,
                "ratio_target": TARGET_RATIO if backend == "postgresql" else None,
                "ratio_ok": None
                if backend != "postgresql" or ratio is None
                else ratio >= TARGET_RATIO,
                "p99_ack_ms": p99,
                "p99_target_ms": TARGET_P99_MS,
                "offered_rate": rate,
                "p99_ok": p99 is not None and p99 < TARGET_P99_MS and not product.opened.errors,
            }
        )
    return found


def verdict_lines(found: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in found:
        ratio = fmt(v["ratio_to_minimal"], ".2f")
        if v["ratio_target"] is None:
            ratio_text = f"product/minimal req/s = {ratio} (no target on {v['backend']})"
        else:
            mark = "PASS" if v["ratio_ok"] else "FAIL"
            ratio_text = f"product/minimal req/s = {ratio} (target >= {TARGET_RATIO}: {mark})"
        p99_mark = "PASS" if v["p99_ok"] else "FAIL"
        lines.append(
            f"  {v['backend']}: {ratio_text}; product p99 ack at "
            f"{v['offered_rate']:g} req/s = {fmt(v['p99_ack_ms'])} ms "
            f"(target < {TARGET_P99_MS:g} ms, no errors: {p99_mark})"
        )
    return lines


def machine_note(machine: dict[str, Any]) -> str:
    before, during = machine.get("before") or {}, machine.get("during") or {}
    text = (
        f"machine: {os.cpu_count()} CPUs shared by the servers, PostgreSQL/Redis and the load "
        "generator; all traffic on 127.0.0.1"
    )
    if before:
        text += f"; busy before start {before['busy_pct']:.0f}%"
        text += " (other load: results skewed)" if before["busy_pct"] > 10 else ""
    if during:
        text += f"; hypervisor steal during run {during['steal_pct']:.1f}%"
    return text


def notes(plan: Plan) -> list[str]:
    client = (
        f"wrk ({plan.wrk}), 1 thread"
        if plan.wrk
        else "Python asyncio client (wrk not found: closed-loop numbers may be client-bound)"
    )
    return [
        machine_note(plan.machine),
        f"gunicorn for all three: {GUNICORN['workers']} workers, {GUNICORN['worker_class']}, "
        f"{GUNICORN['threads']} threads each, keep-alive {GUNICORN['keep_alive_s']}s, "
        f"reuse-port {'on' if GUNICORN['reuse_port'] else 'off'}",
        f"closed loop: {client}, {plan.connections} keep-alive connections, {plan.duration:g}s; "
        "open loop: Python asyncio, fixed schedule, latency from the scheduled send time",
        "product: web only (gunicorn 'connector:create_app()', no queue consumer); "
        "ack = inbox row committed + enqueued (SqliteHuey on SQLite, Redis on PostgreSQL)",
        f"body: {FIXTURE.relative_to(ROOT)} ({FIXTURE.stat().st_size} bytes), signed",
    ]


def client_cpu_line(rows: list[Row]) -> str:
    closed_cpu = [r.closed.client_cpu_pct for r in rows if r.closed.client_cpu_pct is not None]
    open_cpu = [r.opened.client_cpu_pct for r in rows if r.opened.client_cpu_pct is not None]
    top_closed, top_open = max(closed_cpu, default=None), max(open_cpu, default=None)
    return (
        f"load generator CPU (% of one core): closed loop max {fmt(top_closed, '.0f')}, "
        f"open loop max {fmt(top_open, '.0f')}"
    )


def row_json(row: Row) -> dict[str, Any]:
    data = asdict(row)
    for phase, load in (("closed", row.closed), ("opened", row.opened)):
        data[phase]["rate"] = load.rate
        data[phase]["error_count"] = load.error_count
    data["open_loop"] = data.pop("opened")
    return data


def write_json(plan: Plan, rows: list[Row], found: list[dict[str, Any]]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"ingest-{stamp}.json"
    doc = {
        "timestamp": stamp,
        "duration_s": plan.duration,
        "offered_rate": plan.rate,
        "connections": plan.connections,
        "closed_loop_client": "wrk" if plan.wrk else "python",
        "gunicorn": GUNICORN,
        "cpus": os.cpu_count(),
        "machine": plan.machine,
        "python": platform.python_version(),
        "fixture": str(FIXTURE.relative_to(ROOT)),
        "notes": notes(plan),
        "results": [row_json(r) for r in rows],
        "targets": found,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def report(plan: Plan, rows: list[Row]) -> None:
    found = verdicts(rows, plan.rate)
    print("\n".join(notes(plan)))
    print()
    print(table(rows, plan.rate))
    print(client_cpu_line(rows))
    for r in rows:
        if r.rows_stored is not None:
            acked = r.closed.ok + r.opened.ok
            print(
                f"  {r.backend}/{r.server}: {r.rows_stored} rows stored, "
                f">= {acked} acknowledged in the measured phases (+ warm-up)"
            )
    details = error_details(rows)
    print("errors (non-200 and socket):" if details else "errors: none")
    if details:
        print("\n".join(details))
    print("targets:")
    print("\n".join(verdict_lines(found)))
    if plan.rate != TARGET_RATE:
        print(
            f"  note: the p99 target is defined at {TARGET_RATE:g} req/s; this run offered "
            f"{plan.rate:g}"
        )
    print(f"results: {write_json(plan, rows, found).relative_to(ROOT)}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--db", default="sqlite,postgresql", help="backends, comma-separated")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="open-loop req/s offered")
    parser.add_argument("--connections", type=int, default=16, help="closed-loop connections")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="closed-loop load generator (auto: wrk when installed)",
    )
    args = parser.parse_args(argv)
    args.db = [d.strip() for d in args.db.split(",") if d.strip()]
    unknown = set(args.db) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    return args


def pick_wrk(choice: str) -> str | None:
    found = shutil.which("wrk")
    if choice == "wrk" and not found:
        raise SystemExit("wrk not found: apt-get install -y wrk, or use --client python")
    return None if choice == "python" else found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    body = FIXTURE.read_bytes()
    signature = sign(body)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wacrm-bench-") as tmp:
        plan = Plan(args.duration, args.rate, args.connections, pick_wrk(args.client), Path(tmp))
        if not plan.wrk:
            log("wrk not found: closed loop uses the Python asyncio client")
        plan.machine["before"] = idle_check()
        start = cpu_times()
        for name in args.db:
            rows += run_backend(plan, name, body, signature)
        plan.machine["during"] = busy_share(start, cpu_times())
        report(plan, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
