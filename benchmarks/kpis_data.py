"""Seeded KPI benchmark data: contacts, agents, campaigns, deals, conversations, messages.

One pass in Python writes identical rows (ids included) to PostgreSQL (``COPY``) or SQLite
(``executemany`` in large transactions), in chunks of conversations so memory stays flat.
Conversations get ids in the order they open, their messages follow one another, as
the product's ingest would leave them (except that real messages of concurrent
conversations interleave). Shape, per 1 M conversations:

* about 555 000 contacts, 40 % with 2-4 conversations (at least 36 h apart, so some
  reopen within the 7-day FCR window), spread over the 365 days before ``END``;
* 50 agents (48 humans, 2 bots), 200 campaigns active 30 days each, 3 business numbers;
* 80 % customer-initiated: 1-3 customer messages, a bot in 45 % of them (a third of those
  resolve without a human), otherwise a human agent (the contact's owner, 5 % transferred)
  answering after a log-normal delay, ~11 messages; 3 % never answered;
* 20 % business-initiated: a marketing template (campaign, status sent/delivered/read/
  failed, priced from the rate card), a reply in 30 % of the delivered ones, a tracked
  link click in 8 %;
* 5 % of contacts win a deal (amount 50-5 000) some days after one of their
  conversations (10 % outside the 30-day attribution window), 3 % have an open or lost
  one; CSAT surveys after 30 % of human-handled resolutions (45 % answered), NPS after 10 %;
  agent presence: one 8-hour shift per human agent per weekday.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from benchmarks.crm_calls import FIRST, LAST, TEXTS
from connector.costs import COUNTRY_RATES, DEFAULT_RATES

SEED = 20260302
END = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())  # the data's "now"
DAY, HOUR = 86400, 3600
START = END - 365 * DAY
CHUNK = 20_000  # conversations per flush
SHIFT = 1 << 24  # plan entries pack (opened_at, contact id) into one int

HUMANS, BOTS, CAMPAIGNS = 48, 2, 200
NUMBERS = ("109876543210001", "109876543210002", "109876543210003")
NUMBER_WEIGHTS = (6, 3, 1)
# Calling codes by share of contacts (one entry = 5 %).
COUNTRIES = ("1", "1", "1", "44", "44", "49", "49", "55", "55", "55", "91", "91", "91", "91")
COUNTRIES += ("34", "34", "52", "52", "62", "234")
# Names and message texts: the same as the CRM-calls benchmark (they do not move a KPI).
CSAT_SCORES = (1, 2, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5)
NPS_SCORES = (0, 3, 5, 6, 6, 7, 7, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10)

COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": ("id", "wa_id", "name", "marketing_opt_out", "created_at"),
    "agents": ("id", "external_id", "name", "is_bot"),
    "campaigns": (
        "id",
        "key",
        "name",
        "crm",
        "crm_id",
        "status",
        "spend",
        "currency",
        "updated_at",
        "template_name",
        "created_at",
    ),
    "deals": (
        "id",
        "key",
        "name",
        "crm",
        "amount",
        "currency",
        "stage",
        "is_closed",
        "is_won",
        "close_date",
        "won_at",
        "updated_at",
    ),
    "deal_contacts": ("deal_id", "contact_id"),
    "agent_presence": ("id", "agent_id", "started_at", "ended_at"),
    "conversations": (
        "id",
        "contact_id",
        "business_number_id",
        "status",
        "initiated_by",
        "opened_at",
        "last_message_at",
        "resolved_at",
        "resolved_by",
        "agent_id",
        "deal_id",
        "campaign_id",
        "attribution_source",
        "deal_source",
        "handoff_at",
        "transfers",
    ),
    "messages": (
        "id",
        "wamid",
        "provider",
        "business_number_id",
        "contact_id",
        "conversation_id",
        "direction",
        "type",
        "text",
        "sender_kind",
        "agent_id",
        "campaign_id",
        "is_template",
        "timestamp",
        "status",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "error_code",
        "pricing_category",
        "pricing_model",
        "billable",
        "cost",
        "forwarded",
        "created_at",
    ),
    "surveys": (
        "id",
        "conversation_id",
        "contact_id",
        "kind",
        "scale",
        "wamid",
        "sent_at",
        "delivered_at",
        "expires_at",
    ),
    "survey_responses": (
        "id",
        "conversation_id",
        "contact_id",
        "kind",
        "score",
        "scale",
        "answered_at",
        "source",
        "wamid",
    ),
    "tracked_links": ("id", "token", "url", "campaign_id", "contact_id", "created_at"),
    "link_clicks": ("id", "link_id", "campaign_id", "contact_id", "clicked_at", "user_agent"),
}
# Parents before children, so a chunk never references a row of a later one.
ORDER = tuple(COLUMNS)
SEQUENCED = tuple(t for t in ORDER if t != "deal_contacts")

_DAYS: dict[int, str] = {}
_CLOCK = [
    f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)
]


def stamp(t: int | None) -> str | None:
    """Naive UTC text in SQLAlchemy's SQLite format (PostgreSQL parses it as well)."""
    if t is None:
        return None
    d, s = divmod(t, DAY)
    prefix = _DAYS.get(d)
    if prefix is None:
        prefix = _DAYS[d] = datetime.fromtimestamp(d * DAY, UTC).strftime("%Y-%m-%d ")
    return prefix + _CLOCK[s]


def mix(x: int) -> int:
    """A fixed scramble of an id (Knuth's multiplicative hash) for per-contact traits."""
    return (x * 2654435761) & 0xFFFFFFFF


def country_of(contact: int) -> str:
    return COUNTRIES[mix(contact) % len(COUNTRIES)]


def number_of(contact: int) -> str:
    h = mix(contact + 7) % sum(NUMBER_WEIGHTS)
    for number, weight in zip(NUMBERS, NUMBER_WEIGHTS, strict=True):
        if h < weight:
            return number
        h -= weight
    return NUMBERS[0]


def owner_of(contact: int) -> int:
    return 1 + mix(contact + 13) % HUMANS


def marketing_price(contact: int) -> str:
    return str(COUNTRY_RATES.get(country_of(contact), DEFAULT_RATES)["marketing"])


# --------------------------------------------------------------------------- sinks


class Sink(Protocol):
    name: str

    def write(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None: ...
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


class PostgresSink:
    """COPY into the migrated tables; foreign-key triggers off (the rows are consistent)."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
        self.conn.execute("SET session_replication_role = replica")

    def write(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = ", ".join(f'"{c}"' for c in COLUMNS[table])
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql.replace("?", "%s"), params)
        return list(cur.fetchall()) if cur.description else []

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.commit()  # as SqliteSink: what was written stays
        self.conn.close()


class SqliteSink:
    """executemany in one transaction per chunk, journal and syncs relaxed for the load."""

    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=OFF",
            "cache_size=-524288",  # 512 MiB: random inserts into the contact index
            "temp_store=MEMORY",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("BEGIN")

    def write(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = COLUMNS[table]
        marks = ", ".join("?" * len(cols))
        names = ", ".join(f'"{c}"' for c in cols)
        self.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.execute("BEGIN")

    def close(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


# --------------------------------------------------------------------------- generator


@dataclass(slots=True)
class Ids:
    """The next id of every table (explicit ids: both backends get the same rows)."""

    next: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEQUENCED, 1))

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


@dataclass(slots=True)
class Touched:
    """Scope keys an increment touched, as the KPI engine names them."""

    contact: set[str] = field(default_factory=set)
    agent: set[str] = field(default_factory=set)
    campaign: set[str] = field(default_factory=set)
    deal: set[str] = field(default_factory=set)
    phone_number: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, list[str]]:
        out = {"account": ["account"]}
        for scope in ("agent", "campaign", "deal", "contact", "phone_number"):
            out[scope] = sorted(getattr(self, scope), key=lambda k: (len(k), k))
        return out


@dataclass(frozen=True, slots=True)
class Open:
    """A contact's open conversation, as stored."""

    id: int
    number: str
    last: int
    agent: int | None
    deal: int | None
    campaign: int | None


@dataclass(slots=True)
class Conv:
    """A conversation being generated; ``row`` is built when it is complete."""

    id: int
    contact: int
    number: str
    opened: int
    initiated_by: str
    agent: int | None = None
    deal: int | None = None
    deal_source: str | None = None
    campaign: int | None = None
    attribution: str | None = None
    handoff: int | None = None
    transfers: int = 0
    humans: int = 0
    last: int = 0


class Generator:
    def __init__(self, sink: Sink, conversations: int, seed: int = SEED) -> None:
        self.sink = sink
        self.target = conversations
        self.rng = random.Random(seed)
        self.ids = Ids()
        self.buffers: dict[str, list[tuple[Any, ...]]] = {t: [] for t in ORDER}
        self.counts: dict[str, int] = dict.fromkeys(ORDER, 0)
        self.active: list[list[int]] = []  # campaigns running on each day since START
        self.deal_of: dict[int, tuple[int, str]] = {}  # plan entry -> (deal id, source)
        self.limit = END
        self.touched: Touched | None = None
        self.undo: dict[str, Any] = {}

    # ----------------------------------------------------------------- buffers

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.buffers[table].append(row)

    def flush(self) -> None:
        for table in ORDER:
            rows = self.buffers[table]
            if rows:
                self.sink.write(table, rows)
                self.counts[table] += len(rows)
                rows.clear()
        self.sink.commit()

    # ----------------------------------------------------------------- fixed rows

    def people(self) -> None:
        for i in range(1, HUMANS + BOTS + 1):
            bot = i > HUMANS
            name = f"Bot {i - HUMANS}" if bot else f"{FIRST[i % 11]} {LAST[i % 9]} {i}"
            ext = f"bot-{i - HUMANS}" if bot else f"owner-{1000 + i}"
            self.add("agents", (self.ids.take("agents"), ext, name, int(bot)))
        rng = self.rng
        day = START
        while day < END:
            if datetime.fromtimestamp(day, UTC).weekday() < 5:
                for agent in range(1, HUMANS + 1):
                    if rng.random() < 0.1:  # leave, sickness
                        continue
                    start = day + 8 * HOUR + rng.randrange(-1800, 1800)
                    end = start + 8 * HOUR + rng.randrange(-1800, 1800)
                    row = (self.ids.take("agent_presence"), agent, stamp(start), stamp(end))
                    self.add("agent_presence", row)
            day += DAY

    def campaigns(self) -> None:
        rng = self.rng
        self.active = [[] for _ in range(366 + 2)]
        for i in range(1, CAMPAIGNS + 1):
            created = rng.randrange(START - 30 * DAY, END - 7 * DAY)
            row = (
                self.ids.take("campaigns"),
                f"cmp-{i:04d}",
                f"Campaign {i}",
                "hubspot",
                f"70{i:06d}",
                "sent",
                f"{rng.randrange(100, 5000)}.00",
                "USD",
                stamp(created),
                f"promo_{i:03d}",
                stamp(created),
            )
            self.add("campaigns", row)
            for d in range(
                max(0, (created - START) // DAY), min(366, (created - START) // DAY + 30)
            ):
                self.active[d].append(i)

    def _activate(self, campaign: int, created: int) -> None:
        """A campaign runs for 30 days from its creation."""
        first = (created - START) // DAY
        for d in range(max(0, first), min(366, first + 30)):
            self.active[d].append(campaign)

    def campaign_at(self, t: int) -> int | None:
        running = self.active[max(0, min(366, (t - START) // DAY))]
        return self.rng.choice(running) if running else None

    # ----------------------------------------------------------------- plan

    def plan(self) -> list[int]:
        """Contacts and their conversation opening times (sorted), deals decided per contact."""
        rng = self.rng
        entries: list[int] = []
        contact = 0
        while len(entries) < self.target:
            contact += 1
            k = 1 if rng.random() < 0.6 else rng.randint(2, 4)
            k = min(k, self.target - len(entries))
            times = sorted(rng.randrange(START, END - HOUR) for _ in range(k))
            for j in range(1, len(times)):
                times[j] = max(times[j], times[j - 1] + 36 * HOUR)
            times = [t for t in times if t < END - HOUR] or [times[0]]
            first = times[0]
            created = first - rng.randrange(0, 30 * DAY)
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            wa_id = f"{country_of(contact)}7{contact:09d}"
            self.add("contacts", (contact, wa_id, name, 0, stamp(created)))
            self._deal(contact, times)
            entries.extend(t * SHIFT + contact for t in times)
            if len(self.buffers["contacts"]) >= CHUNK * 4:
                self.flush()
        self.ids.next["contacts"] = contact + 1
        entries.sort()
        return entries

    def _deal(self, contact: int, times: list[int]) -> None:
        rng = self.rng
        r = rng.random()
        if r >= 0.08:
            return
        j = rng.randrange(len(times))
        touch = times[j]
        deal = self.ids.take("deals")
        amount = f"{rng.randrange(50, 5000)}.00"
        won_at: int | None = None
        if r < 0.05:  # won: mostly inside the 30-day attribution window
            delay = (
                rng.randrange(HOUR, 25 * DAY) if rng.random() < 0.9 else rng.randrange(31, 60) * DAY
            )
            won_at = touch + delay if touch + delay < END else None
        if won_at is not None:
            stage, closed, won, source = "closedwon", 1, 1, "crm"
        elif r < 0.065:
            stage, closed, won, source = "closedlost", 1, 0, "crm"
        else:
            stage, closed, won, source = "negotiation", 0, 0, "single_open_deal"
        updated = won_at or touch + DAY
        row = (
            deal,
            f"deal-{deal}",
            f"Order {deal}",
            "hubspot",
            amount,
            "USD",
            stage,
            closed,
            won,
            stamp(won_at) if won_at else None,
            stamp(won_at),
            stamp(min(updated, END)),
        )
        self.add("deals", row)
        self.add("deal_contacts", (deal, contact))
        self.deal_of[touch * SHIFT + contact] = (deal, source)

    # ----------------------------------------------------------------- conversations

    def run(self) -> dict[str, int]:
        self.people()
        self.campaigns()
        entries = self.plan()
        self.flush()
        for n, entry in enumerate(entries, 1):
            opened, contact = divmod(entry, SHIFT)
            deal = self.deal_of.get(entry)
            self.conversation(contact, opened, deal)
            if n % CHUNK == 0:
                self.flush()
        self.flush()
        return dict(self.counts)

    def conversation(
        self, contact: int, opened: int, deal: tuple[int, str] | None, *, number: str | None = None
    ) -> Conv:
        rng = self.rng
        c = Conv(
            self.ids.take("conversations"),
            contact,
            number or number_of(contact),
            opened,
            "customer" if rng.random() < 0.8 else "business",
        )
        if deal:
            c.deal, c.deal_source = deal
        msgs: list[tuple[Any, ...]] = []
        if c.initiated_by == "business":
            self._business(c, msgs)
        else:
            self._customer(c, msgs)
        self._close(c, msgs)
        return c

    def _msg(
        self,
        c: Conv,
        msgs: list[tuple[Any, ...]],
        t: int,
        kind: str,
        agent: int | None = None,
        *,
        campaign: int | None = None,
    ) -> bool:
        """Append one message unless it falls after the data's end; False when it does."""
        if t >= self.limit:
            return False
        rng = self.rng
        mid = self.ids.take("messages")
        ts = stamp(t)
        inbound = kind == "customer"
        if inbound:
            status = sent = delivered = read = failed = err = category = model = None
            billable = cost = None
        else:
            template = campaign is not None
            r = rng.random()
            sent = ts
            failed = err = delivered = read = None
            if r < 0.04:
                status, failed, err = "failed", stamp(t + 3), 131049 if template else 131047
            else:
                delivered = stamp(t + rng.randrange(1, 60))
                if r < 0.65 or not template:
                    status, read = "read", stamp(t + 60 + int(rng.expovariate(1 / 900)))
                    if r > 0.9:  # receipts off
                        status, read = "delivered", None
                else:
                    status = "delivered"
            category = "marketing" if template else "service"
            model = "PMP"
            billable = 1 if template and failed is None else 0
            cost = marketing_price(c.contact) if billable else None
        msgs.append(
            (
                mid,
                f"wamid.BENCH{mid:012d}",
                "meta",
                c.number,
                c.contact,
                c.id,
                "inbound" if inbound else "outbound",
                "template" if campaign is not None else "text",
                TEXTS[mid % len(TEXTS)],
                kind,
                agent,
                campaign,
                int(campaign is not None),
                ts,
                status,
                sent,
                delivered,
                read,
                failed,
                err,
                category,
                model,
                billable,
                cost,
                0,
                ts,
            )
        )
        c.last = t
        if kind == "agent":
            c.humans += 1
        if self.touched is not None:
            self.touched.contact.add(str(c.contact))
            self.touched.phone_number.add(c.number)
            if agent is not None:
                self.touched.agent.add(str(agent))
            if campaign is not None:
                self.touched.campaign.add(str(campaign))
        return True

    def _customer(self, c: Conv, msgs: list[tuple[Any, ...]]) -> None:
        rng = self.rng
        t = c.opened
        if rng.random() < 0.08:
            c.campaign = self.campaign_at(t)
            c.attribution = "ctwa_referral" if c.campaign else None
        for _ in range(1 + (rng.random() < 0.4) + (rng.random() < 0.1)):
            if not self._msg(c, msgs, t, "customer"):
                return
            t += rng.randrange(5, 90)
        if rng.random() < 0.03:  # never answered
            return
        if rng.random() < 0.45:
            bot = HUMANS + 1 + (c.contact % BOTS)
            for _ in range(rng.randint(1, 3)):
                t += rng.randrange(1, 5)
                if not self._msg(c, msgs, t, "bot", bot):
                    return
                t += rng.randrange(10, 120)
                if not self._msg(c, msgs, t, "customer"):
                    return
            if rng.random() < 0.35:  # the bot solved it
                t += rng.randrange(1, 5)
                self._msg(c, msgs, t, "bot", bot)
                return
            c.handoff = t + 2
        self._humans(c, msgs, t, rng.randint(3, 7))

    def _humans(self, c: Conv, msgs: list[tuple[Any, ...]], t: int, exchanges: int) -> None:
        """A human agent's replies after log-normal waits, the customer answering between."""
        rng = self.rng
        agent = owner_of(c.contact) if rng.random() < 0.8 else rng.randint(1, HUMANS)
        c.agent = agent
        transfer_at = rng.randrange(1, exchanges) if exchanges > 1 and rng.random() < 0.05 else -1
        for i in range(exchanges):
            if i == transfer_at:
                c.transfers += 1
                agent = c.agent = 1 + (agent % HUMANS)
            wait = rng.lognormvariate(5.2, 1.2) if i == 0 else rng.lognormvariate(4.5, 1.0)
            t += min(int(wait) + 1, 8 * HOUR)
            if not self._msg(c, msgs, t, "agent", agent):
                return
            if i < exchanges - 1 or rng.random() < 0.5:
                t += min(int(rng.lognormvariate(4.0, 1.0)) + 5, 4 * HOUR)
                if not self._msg(c, msgs, t, "customer"):
                    return

    def _business(self, c: Conv, msgs: list[tuple[Any, ...]]) -> None:
        rng = self.rng
        t = c.opened
        campaign = self.campaign_at(t)
        c.campaign, c.attribution = campaign, "template" if campaign else None
        if not self._msg(c, msgs, t, "campaign", campaign=campaign):
            return
        template = msgs[-1]
        if template[16] is None:  # failed, never delivered
            return
        if rng.random() < 0.08:
            link = self.ids.take("tracked_links")
            clicked = t + 120 + int(rng.expovariate(1 / 3600))
            if clicked < self.limit:
                token = f"bench{link:010d}"
                url = f"https://shop.example/p/{link}"
                self.add("tracked_links", (link, token, url, campaign, c.contact, stamp(t)))
                click = (self.ids.take("link_clicks"), link, campaign, c.contact, stamp(clicked))
                self.add("link_clicks", (*click, "Mozilla/5.0 (Linux; Android 14)"))
        if rng.random() >= 0.3:
            return
        t += 60 + min(int(rng.lognormvariate(8.0, 1.5)), 20 * HOUR)
        if not self._msg(c, msgs, t, "customer"):
            return
        self._humans(c, msgs, t, rng.randint(2, 6))

    def _close(self, c: Conv, msgs: list[tuple[Any, ...]]) -> None:
        rng = self.rng
        last = c.last or c.opened
        status, resolved, how = "resolved", None, None
        if c.humans and rng.random() < 0.6:
            resolved, how = last + rng.randrange(30, 900), "agent"
            if resolved >= self.limit:
                resolved = None
        elif self.limit - last > DAY:
            resolved, how = last, "timeout"
        if resolved is None:
            status, how = "open", None
        row = (
            c.id,
            c.contact,
            c.number,
            status,
            c.initiated_by,
            stamp(c.opened),
            stamp(last),
            stamp(resolved),
            how,
            c.agent,
            c.deal,
            c.campaign,
            c.attribution,
            c.deal_source,
            stamp(c.handoff),
            c.transfers,
        )
        self.add("conversations", row)
        self.buffers["messages"].extend(msgs)
        if resolved is not None and c.humans:
            self._surveys(c, resolved)
        if self.touched is not None:
            for scope, key in (("agent", c.agent), ("campaign", c.campaign), ("deal", c.deal)):
                if key is not None:
                    getattr(self.touched, scope).add(str(key))

    def _surveys(self, c: Conv, resolved: int) -> None:
        rng = self.rng
        for kind, scale, share, scores in (
            ("csat", 5, 0.3, CSAT_SCORES),
            ("nps", 10, 0.1, NPS_SCORES),
        ):
            if rng.random() >= share:
                continue
            sent = resolved + 60
            if sent >= self.limit:
                continue
            sid = self.ids.take("surveys")
            delivered = sent + 3 if rng.random() < 0.95 else None
            row = (
                sid,
                c.id,
                c.contact,
                kind,
                scale,
                f"wamid.SURVEY{sid:010d}",
                stamp(sent),
                stamp(delivered),
                stamp(sent + DAY),
            )
            self.add("surveys", row)
            answered = sent + 30 + int(rng.lognormvariate(6.0, 1.0))
            if delivered is None or rng.random() >= 0.45 or answered >= self.limit:
                continue
            rid = self.ids.take("survey_responses")
            score = rng.choice(scores)
            source = "interactive" if rng.random() < 0.8 else "text"
            response = (rid, c.id, c.contact, kind, score, scale, stamp(answered), source, None)
            self.add("survey_responses", response)

    # ----------------------------------------------------------------- increment

    def resume(self) -> None:
        """Continue ids after the rows already stored (for an increment)."""
        for table in SEQUENCED:
            (value,) = self.sink.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")[0]
            self.ids.next[table] = int(value) + 1
        self.campaigns_from_db()

    def campaigns_from_db(self) -> None:
        self.active = [[] for _ in range(366 + 2)]
        for cid, created in self.sink.execute("SELECT id, created_at FROM campaigns"):
            when = created if isinstance(created, datetime) else datetime.fromisoformat(created)
            t = int(when.replace(tzinfo=UTC).timestamp())
            self._activate(int(cid), t)

    def increment(self, share: float, start: int, length: int) -> Touched:
        """New traffic in ``[start, start + length)``: ``share`` of the conversation count
        as new conversations of distinct existing contacts, or new messages in the contact's
        still-open conversation; 3 % of those contacts win a deal."""
        rng = self.rng
        self.touched = touched = Touched()
        self.limit = start + length
        self.resume()
        # What ``revert`` needs to take the increment back out (the benchmark reruns).
        self.undo: dict[str, Any] = {
            "max_ids": {t: n - 1 for t, n in self.ids.next.items()},
            "updated": [],
        }
        contacts = self.ids.next["contacts"] - 1
        (total,) = self.sink.execute("SELECT COUNT(*) FROM conversations")[0]
        picked = sorted(rng.sample(range(1, contacts + 1), min(contacts, int(total * share))))
        latest = self._latest(picked)
        updates: list[tuple[str | None, int | None, int]] = []
        new = 0
        for contact in picked:
            t = start + rng.randrange(0, length - HOUR // 2)
            open_conv = latest.get(contact)
            if open_conv is not None and t - open_conv.last <= DAY:
                updates.append(self._append(contact, open_conv, t))
                self.undo["updated"].append((stamp(open_conv.last), open_conv.agent, open_conv.id))
            else:
                deal = self._won_deal(contact, t) if rng.random() < 0.03 else None
                self.conversation(contact, t, deal)
                new += 1
            if len(self.buffers["messages"]) >= CHUNK * 10:
                self.flush()
        self.flush()
        for update in updates:  # after the flush: the messages exist
            self.sink.execute(
                "UPDATE conversations SET last_message_at = ?, agent_id = ? WHERE id = ?", update
            )
        self.sink.commit()
        self.counts["appended_conversations"] = len(updates)
        self.counts["new_conversations"] = new
        return touched

    def _latest(self, contacts: list[int]) -> dict[int, Open]:
        """Each picked contact's still-open conversation."""
        found: dict[int, Open] = {}
        for i in range(0, len(contacts), 5000):
            part = contacts[i : i + 5000]
            marks = ", ".join("?" * len(part))
            rows = self.sink.execute(
                "SELECT id, contact_id, business_number_id, last_message_at, agent_id, deal_id, "
                f"campaign_id FROM conversations WHERE status = 'open' AND contact_id IN ({marks})",
                part,
            )
            for cid, contact, number, last, agent, deal, campaign in rows:
                when = last if isinstance(last, datetime) else datetime.fromisoformat(last)
                seconds = int(when.replace(tzinfo=UTC).timestamp())
                found[int(contact)] = Open(int(cid), str(number), seconds, agent, deal, campaign)
        return found

    def _append(self, contact: int, conv: Open, t: int) -> tuple[str | None, int | None, int]:
        """A customer writes again in a still-open conversation and an agent answers."""
        c = Conv(conv.id, contact, conv.number, t, "customer", agent=conv.agent)
        msgs: list[tuple[Any, ...]] = []
        self._msg(c, msgs, t, "customer")
        self._humans(c, msgs, t, self.rng.randint(2, 5))
        self.buffers["messages"].extend(msgs)
        assert self.touched is not None
        for scope, key in (("agent", c.agent), ("deal", conv.deal), ("campaign", conv.campaign)):
            if key is not None:
                getattr(self.touched, scope).add(str(key))
        return stamp(c.last), c.agent, conv.id

    def _won_deal(self, contact: int, t: int) -> tuple[int, str]:
        deal = self.ids.take("deals")
        won = t + HOUR // 4
        amount = f"{self.rng.randrange(50, 5000)}.00"
        row = (deal, f"deal-{deal}", f"Order {deal}", "hubspot", amount, "USD", "closedwon")
        self.add("deals", (*row, 1, 1, stamp(won), stamp(won), stamp(won)))
        self.add("deal_contacts", (deal, contact))
        assert self.touched is not None
        self.touched.deal.add(str(deal))
        return deal, "crm"


def generate(sink: Sink, conversations: int, seed: int = SEED) -> tuple[dict[str, int], float]:
    started = time.perf_counter()
    counts = Generator(sink, conversations, seed).run()
    return counts, time.perf_counter() - started


def revert(sink: Sink, undo: dict[str, Any]) -> None:
    """Delete the rows an increment added and restore the conversations it extended."""
    for table in reversed(ORDER):
        if table == "deal_contacts":
            sink.execute("DELETE FROM deal_contacts WHERE deal_id > ?", (undo["max_ids"]["deals"],))
        else:
            sink.execute(f"DELETE FROM {table} WHERE id > ?", (undo["max_ids"][table],))
    for last, agent, cid in undo["updated"]:
        sink.execute(
            "UPDATE conversations SET last_message_at = ?, agent_id = ? WHERE id = ?",
            (last, agent, cid),
        )
    sink.execute("DELETE FROM kpi_dirty")
    sink.commit()
