"""The row-level facts every scope's KPIs are grouped from, worked out once.

- ``convs``: per conversation, its scope columns, first inbound/outbound/human message and
  the first human agent (``facts_select``), the FCR-reopen and conversion flags, the survey
  counts in the period and the durations;
- ``replies``: every customer wait ended by a human reply (end, replying agent, scope
  columns of its conversation);
- ``traffic``: message counts, statuses and cost in the period per (conversation, agent,
  campaign, contact, business number);
- ``touches``: every credited touch of a deal won in the period, with its credit;
- ``sends``: campaign sends in the period per (agent, number, deal, campaign, contact).

They are materialised as temporary tables (analysed on PostgreSQL): for a few ids, only
the conversations those ids touch; for a full recompute, every conversation once, shared
by all scopes, so ``messages`` is read a fixed number of times however many scopes there
are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from threading import Lock
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    null,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.util import find_tables

from connector.kpis import messaging, revenue, satisfaction
from connector.kpis.business_hours import Calendar
from connector.kpis.query import ID_TYPE as _ID
from connector.kpis.query import SCOPE_COLUMNS, Query
from connector.kpis.sql import (
    CreateTableAs,
    count_if,
    epoch,
    greatest,
    index_lookups,
    whole_tables,
)
from connector.models import Conversation, Message, UTCDateTime

# Survey questions/answers and Meta's system notices are not part of the conversation.
CONVERSATIONAL = ("customer", "agent", "bot", "campaign", "unknown")


def conversational() -> Any:
    return Message.sender_kind.in_(CONVERSATIONAL)


def _when(cond: Any, value: Any) -> Any:
    return case((cond, value))


_HUMAN = Message.sender_kind == "agent"


def _firsts() -> list[Any]:
    """Per group of messages: its first inbound, outbound and human message and its human
    messages (columns of the conversations' facts)."""
    m = Message
    return [
        func.min(_when(m.direction == "inbound", m.timestamp)).label("first_in"),
        func.min(_when(m.direction == "outbound", m.timestamp)).label("first_out"),
        func.min(_when(_HUMAN, m.timestamp)).label("first_human"),
        count_if(_HUMAN).label("humans"),
    ]


def facts_select(
    q: Query,
    own: Callable[[Any], Any] | None = None,
    traffic: FromClause | None = None,
    agents: bool = True,
) -> Select[Any]:
    """Per conversation (``own`` restricts the conversation ids; default: the touched);
    from the ``traffic`` table when given (``traffic_select(q, facts=True)``); the first
    human agent only with ``agents`` (only the agent scope reads it), else NULL.

    ``several_agents``: 1 when more than one agent wrote in it (two distinct values are
    told by their min and max: a DISTINCT count sorts each conversation's values)."""
    own = own or q.conversations
    if traffic is not None:
        return _facts_from_traffic(traffic, agents)
    m = Message
    per_conv = (
        select(
            m.conversation_id.label("cid"),
            *_firsts(),
            _several(_when(_HUMAN, m.agent_id)).label("several_agents"),
        )
        .where(m.conversation_id.is_not(None), conversational(), own(m.conversation_id))
        .group_by(m.conversation_id)
    )
    if not agents:
        return per_conv.add_columns(_NO_AGENT)
    if q.lookups:
        # A few conversations: one index probe each beats ranking every human message.
        first_agent = _first_human_agent(m.conversation_id)
        return per_conv.add_columns(first_agent.label("first_human_agent"))
    per_conv = per_conv.subquery("per_conv")
    ranked = (
        select(
            m.conversation_id.label("cid"),
            m.agent_id.label("agent_id"),
            func.row_number()
            .over(partition_by=m.conversation_id, order_by=(m.timestamp, m.id))
            .label("rn"),
        )
        .where(m.sender_kind == "agent", own(m.conversation_id))
        .subquery("ranked_humans")
    )
    return select(*per_conv.c, ranked.c.agent_id.label("first_human_agent")).outerjoin(
        ranked, and_(ranked.c.cid == per_conv.c.cid, ranked.c.rn == 1)
    )


_NO_AGENT = cast(null(), _ID).label("first_human_agent")


def _several(value: Any) -> Any:
    """1 when a group holds two distinct non-NULL ``value``s, else 0."""
    return case((func.min(value) != func.max(value), 1), else_=0)


def _first_human_agent(cid: Any) -> Any:
    """The agent of conversation ``cid``'s first human message (by time, then id): an
    index probe of its messages."""
    m = aliased(Message, name="first_human")
    return (
        select(m.agent_id)
        .where(m.conversation_id == cid, m.sender_kind == "agent")
        .order_by(m.timestamp, m.id)
        .limit(1)
        .scalar_subquery()
    )


def _first(value: Any, where: Any, *order: Any) -> Any:
    """PostgreSQL: ``value`` of the first row in ``order`` among those ``where`` holds (an
    aggregate; NULL when there is none)."""
    ordered = func.array_agg(postgresql.aggregate_order_by(value, *order)).filter(where)
    return type_coerce(ordered, postgresql.ARRAY(value.type))[1]


def _facts_from_traffic(traffic: FromClause, agents: bool) -> Select[Any]:
    """``facts_select`` over the traffic rows of each conversation (a few per conversation,
    their messages already read once for the traffic); the first human agent is the agent
    of the row whose first human message comes first.

    Rows of two agents whose first human messages share a timestamp are told apart by the
    message ids, which the traffic does not carry (ordering every conversation's messages
    for them cost more than all of this): such a conversation's messages are probed.
    """
    t = traffic.c
    humans = t.humans > 0
    first_agent: Any = _NO_AGENT
    if agents:
        lowest = _first(t.agent_id, humans, t.first_human, t.agent_id)
        highest = _first(t.agent_id, humans, t.first_human, t.agent_id.desc())
        first_agent = case(
            (lowest.is_not_distinct_from(highest), lowest),
            else_=_first_human_agent(t.conversation_id),
        ).label("first_human_agent")
    return (
        select(
            t.conversation_id.label("cid"),
            func.min(t.first_in).label("first_in"),
            func.min(t.first_out).label("first_out"),
            func.min(t.first_human).label("first_human"),
            func.sum(t.humans).label("humans"),
            _several(_when(humans, t.agent_id)).label("several_agents"),
            first_agent,
        )
        # Read whole, unindexed: it holds the same conversations (``traffic_select``).
        .group_by(t.conversation_id)
    )


def conversations_select(
    q: Query, cal: Calendar | None, traffic: FromClause | None = None, agents: bool = True
) -> Select[Any]:
    """One row per conversation with every conversation-level measure worked out once;
    the facts from ``traffic`` when given (filled first, with ``facts``).

    frt / frt_human only for customer-initiated conversations with a reply; art and the
    resolution flags only for resolved conversations a customer wrote in (DESIGN §4 [code]).
    """
    c = Conversation
    f, on_facts = _per_conversation(c, "facts", facts_select(q, traffic=traffic, agents=agents))
    customer = c.initiated_by == "customer"
    first_in, first_out, first_human = (
        epoch(f.c.first_in),
        epoch(f.c.first_out),
        epoch(f.c.first_human),
    )
    handoff = greatest(first_in, func.coalesce(epoch(c.handoff_at), first_in))
    opened, closed = epoch(c.opened_at), epoch(c.resolved_at)
    answered = and_(customer, f.c.first_in.is_not(None), f.c.first_out.is_not(None))
    human = and_(customer, f.c.first_in.is_not(None), f.c.first_human.is_not(None))
    resolved = and_(c.resolved_at.is_not(None), f.c.first_in.is_not(None))
    fcr_window = q.opts.fcr_window.total_seconds()
    repeat = _flag(q, c, "reopened", lambda x: _reopened(x, fcr_window), q.lookups)
    won_window = q.opts.attribution_window.total_seconds()
    if q.probes:
        # Won deals are few and their contacts a small table: hashed once and joined on
        # the contact, where a probe per conversation cost a quarter of this statement.
        won = revenue.won_by_contact()
        joined = (won, won.c.contact_id == c.contact_id)
        converted = _Flag(revenue.won_within(won, c, won_window), joined)
    else:
        converted = _flag(q, c, "converted", lambda x: revenue.won_after(x, won_window), q.lookups)
    spans = {"frt": (first_in, first_out, answered), "frt_human": (handoff, first_human, human)}
    spans["art"] = (opened, closed, resolved)
    columns = [
        c.id.label("cid"),
        c.contact_id,
        c.agent_id,
        c.campaign_id,
        c.deal_id,
        c.business_number_id,
        c.opened_at,
        c.resolved_at,
        case(
            (and_(customer, f.c.first_in.is_not(None), f.c.first_out.is_(None)), 1), else_=0
        ).label("unanswered"),
        f.c.first_human_agent,
        case(
            # The probe last: evaluated only when the rest does not decide.
            (and_(resolved, or_(c.transfers > 0, f.c.several_agents == 1, repeat.flag)), 1),
            else_=0,
        ).label("not_fcr"),
        case((and_(resolved, f.c.humans == 0, f.c.first_out.is_not(None)), 1), else_=0).label(
            "automated"
        ),
        case((converted.flag, 1), else_=0).label("converted"),
    ]
    surveyed = [
        _per_conversation(c, "answers", satisfaction.answers_select(q, q.conversations)),
        _per_conversation(c, "surveys", satisfaction.surveys_select(q, q.conversations)),
    ]
    counts = [col for sub, _ in surveyed for col in sub.c if col.name != "cid"]
    columns += [func.coalesce(col, 0).label(col.name) for col in counts]
    for name, (start, end, when) in spans.items():
        columns.append(case((when, end - start)).label(name))
        if cal is not None:
            columns.append(case((when, cal.clock(end) - cal.clock(start))).label(f"{name}_bh"))
    # Every conversation, with or without conversational messages (surveys and conversion
    # count on the conversation itself).
    stmt = select(*columns).select_from(c).where(q.conversations(c.id))
    flagged = [flag.joined for flag in (repeat, converted) if flag.joined is not None]
    for sub, on in ((f, on_facts), *flagged, *surveyed):
        stmt = stmt.outerjoin(sub, on)
    return stmt


def _per_conversation(c: Any, name: str, stmt: Select[Any]) -> tuple[Any, Any]:
    """A per-conversation ``stmt`` over the touched conversations as a subquery to
    outer-join to conversations ``c``, and the join condition.

    For a few conversations on PostgreSQL, merged or hashed with them (the fill allows no
    nested loop: ``Fill.run``); a LATERAL probe per conversation cost a quarter more.
    """
    sub = stmt.subquery(name)
    return sub, sub.c.cid == c.id


@dataclass(frozen=True, slots=True)
class _Flag:
    flag: Any  # true for a conversation the condition holds for
    joined: tuple[Any, Any] | None = None  # the subquery of those conversations, and its join


def _flag(
    q: Query, c: Any, name: str, conditions: Callable[[Any], list[Any]], probe: bool
) -> _Flag:
    """Whether some related row meets ``conditions(conversation)``.

    ``probe`` (a few conversations): a correlated EXISTS, an index probe each; else one
    set-based join over all of them, outer-joined back (a probe per conversation over a
    million conversations costs several seconds per flag).
    """
    if probe:
        return _Flag(exists().where(*conditions(c)))
    x = aliased(Conversation, name=f"{name}_conv")
    ids = (
        select(x.id.label("cid"))
        .where(*conditions(x), q.conversations(x.id))
        .distinct()
        .subquery(name)
    )
    return _Flag(ids.c.cid.is_not(None), (ids, ids.c.cid == c.id))


def _reopened(c: Any, window: float) -> list[Any]:
    """A later customer-initiated conversation of the contact within ``window`` seconds of
    ``c``'s resolution (``c`` is not a first-contact resolution)."""
    later = aliased(Conversation, name="later")
    return [
        later.contact_id == c.contact_id,
        later.id != c.id,
        later.initiated_by == "customer",
        later.opened_at > c.resolved_at,
        epoch(later.opened_at) <= epoch(c.resolved_at) + window,
    ]


def replies_select(q: Query, cal: Calendar | None = None) -> Select[Any]:
    """A wait starts at the first customer message after a business message (or the start)
    and ends at the next business message; only waits a human ended are kept.

    One ordered pass: a customer message after a business one (or first) starts a wait, a
    running max carries the latest start, and a business message right after a customer
    one ends that wait.
    """
    m = Message
    order = {"partition_by": m.conversation_id, "order_by": (m.timestamp, m.id)}
    lagged = (
        select(
            m.conversation_id.label("cid"),
            m.id.label("id"),
            m.timestamp.label("ts"),
            m.direction.label("direction"),
            m.sender_kind.label("kind"),
            m.agent_id.label("agent_id"),
            func.lag(m.direction).over(**order).label("previous"),
        )
        .where(m.conversation_id.is_not(None), conversational(), q.conversations(m.conversation_id))
        .subquery("lagged")
    )
    # The previous direction is computed once, then read twice (inlined, it was three lags).
    previous = lagged.c.previous
    opens = and_(lagged.c.direction == "inbound", or_(previous.is_(None), previous == "outbound"))
    flagged = select(*lagged.c, case((opens, lagged.c.ts)).label("opens")).subquery("flagged")
    waited = select(
        flagged.c.cid,
        flagged.c.ts,
        flagged.c.direction,
        flagged.c.kind,
        flagged.c.agent_id,
        flagged.c.previous,
        func.max(flagged.c.opens)
        .over(
            partition_by=flagged.c.cid,
            order_by=(flagged.c.ts, flagged.c.id),
            rows=(None, 0),
        )
        .label("start"),
    ).subquery("waited")
    start, end = epoch(waited.c.start), epoch(waited.c.ts)
    bh = [] if cal is None else [(cal.clock(end) - cal.clock(start)).label("reply_time_bh")]
    c = Conversation
    return (
        select(
            waited.c.cid,
            waited.c.agent_id,
            waited.c.ts.label("end"),
            (end - start).label("reply_time"),
            *bh,
            *(getattr(c, name) for name in _WAIT_SCOPES),
        )
        .join(c, c.id == waited.c.cid)
        .where(
            # Said of the conversations too: then they are read once, in id order beside
            # the waits, not probed once per wait.
            q.conversations(c.id),
            waited.c.direction == "outbound",
            waited.c.previous == "inbound",
            waited.c.kind == "agent",
        )
    )


# A conversation's scope columns copied onto its waits (no join per scope later); the
# agent of a wait is the one who replied.
_WAIT_SCOPES = tuple(name for name in SCOPE_COLUMNS if name != "agent_id")


def traffic_select(q: Query, facts: bool = False) -> Select[Any]:
    """Message counts, statuses and cost in the period per (conversation, agent, campaign,
    contact, business number).

    ``facts``: every message of the conversations, not only the period's (rows with none in
    the period count zero), and per row its first inbound, outbound and human message and
    its human messages, from which ``facts_select`` takes each conversation's facts: the
    touched conversations' messages are then read once for both.
    """
    m = Message
    inbound, outbound = m.direction == "inbound", m.direction == "outbound"
    sent = and_(outbound, m.status.is_not(None))
    period = q.in_period(m.timestamp)
    # With the facts the period moves from the rows read to what is counted.
    where = [conversational(), q.conversations(m.conversation_id)]
    if not facts:
        where.append(period)

    def counted(cond: Any) -> Any:
        return and_(period, cond) if facts else cond

    return (
        select(
            m.conversation_id,
            m.agent_id,
            m.campaign_id,
            m.contact_id,
            m.business_number_id,
            count_if(counted(inbound)).label("inbound"),
            count_if(counted(outbound)).label("outbound"),
            count_if(counted(sent)).label("sent"),
            count_if(
                counted(and_(sent, func.coalesce(m.delivered_at, m.read_at).is_not(None)))
            ).label("reached"),
            count_if(counted(and_(outbound, m.read_at.is_not(None)))).label("read"),
            count_if(counted(and_(outbound, m.failed_at.is_not(None)))).label("failed"),
            func.sum(_when(counted(outbound), m.cost)).label("cost"),
            *(_firsts() if facts else ()),
        )
        .where(*where)
        .group_by(m.conversation_id, m.agent_id, m.campaign_id, m.contact_id, m.business_number_id)
    )


class Memo:
    """Results shared between the scopes of one full recompute (e.g. utilization per
    agent), computed once even when two scopes ask at the same time."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._lock = Lock()

    def once(self, name: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._values:
                self._values[name] = make()
            return self._values[name]


@dataclass(frozen=True, slots=True)
class Sources:
    convs: FromClause
    replies: FromClause
    traffic: FromClause
    touches: FromClause
    sends: FromClause
    memo: Memo = field(default_factory=Memo)
    # Scopes computed together over given ids: each scope's own campaign sends (they are
    # found through that scope's ids; the other sources are shared).
    scoped_sends: dict[str, FromClause] = field(default_factory=dict)

    def of(self, scope: str) -> Sources:
        """The sources one scope's statement reads."""
        sends = self.scoped_sends.get(scope)
        return self if sends is None else replace(self, sends=sends)


_DURATIONS = ("frt", "frt_human", "art")


def _scope_key_columns(*names: str) -> list[Column[Any]]:
    return [Column(n, String(64) if n == "business_number_id" else _ID) for n in names]


def _tables(
    cal: Calendar | None,
    stem: str = "kpi",
    kind: str = "TEMPORARY",
    scopes: Sequence[str] = (),
    facts: bool = False,
) -> dict[str, Table]:
    """The tables ``stem_<name>`` (their columns depend on whether business hours are on),
    with ``stem_sends_<scope>`` for each of ``scopes`` instead of one ``stem_sends``, and
    the conversations' facts in the traffic with ``facts`` (``traffic_select``).

    No secondary indexes: every scope reads each of them whole, grouped by its key (an
    incremental run's tables hold only the touched conversations).
    """
    meta = MetaData()
    bh = cal is not None
    temporary = {"prefixes": [kind]}
    convs = Table(
        f"{stem}_convs",
        meta,
        Column("cid", _ID),
        *_scope_key_columns(*SCOPE_COLUMNS),
        Column("opened_at", UTCDateTime()),
        Column("resolved_at", UTCDateTime()),
        Column("unanswered", Integer),
        Column("first_human_agent", _ID),
        Column("not_fcr", Integer),
        Column("automated", Integer),
        Column("converted", Integer),
        *satisfaction.survey_columns(),
        *(Column(name, Float) for d in _DURATIONS for name in ((d, f"{d}_bh") if bh else (d,))),
        **temporary,
    )
    replies = Table(
        f"{stem}_replies",
        meta,
        Column("cid", _ID),
        Column("agent_id", _ID),  # who replied
        Column("end", UTCDateTime()),
        Column("reply_time", Float),
        *([Column("reply_time_bh", Float)] if bh else []),
        *_scope_key_columns(*_WAIT_SCOPES),
        **temporary,
    )
    traffic = Table(
        f"{stem}_traffic",
        meta,
        Column("conversation_id", _ID),
        *_scope_key_columns("agent_id", "campaign_id", "contact_id", "business_number_id"),
        *(
            Column(name, Integer)
            for name in ("inbound", "outbound", "sent", "reached", "read", "failed")
        ),
        Column("cost", Float),
        *(
            [
                *(Column(name, UTCDateTime()) for name in ("first_in", "first_out", "first_human")),
                Column("humans", Integer),
            ]
            if facts
            else []
        ),
        **temporary,
    )
    touches = Table(
        f"{stem}_touches",
        meta,
        *_scope_key_columns(*SCOPE_COLUMNS),
        Column("credit", Float),
        Column("new_customer", _ID),
        **temporary,
    )
    sends = {
        name: Table(
            f"{stem}_{name}",
            meta,
            *_scope_key_columns(*SCOPE_COLUMNS),
            Column("delivered", UTCDateTime()),
            *(Column(name, Integer) for name in ("replied", "clicked")),
            **temporary,
        )
        for name in _send_names(scopes)
    }
    return {
        "convs": convs,
        "replies": replies,
        "traffic": traffic,
        "touches": touches,
        **sends,
    }


def _send_names(scopes: Sequence[str]) -> list[str]:
    """The campaign-sends tables: one per scope computed together, else one for all."""
    return [f"sends_{scope}" for scope in scopes] or ["sends"]


def _selects(
    q: Query, cal: Calendar | None, scoped: Sequence[Query], tables: dict[str, Table]
) -> dict[str, Select[Any]]:
    sends = {f"sends_{each.scope}": messaging.sends_select(each) for each in scoped}
    facts = _facts_in_traffic(q)
    # Scopes computed together say which they are; shared by every scope, any may read it.
    agents = not scoped or any(each.scope == "agent" for each in scoped)
    return {
        "convs": conversations_select(q, cal, tables["traffic"] if facts else None, agents),
        "replies": replies_select(q, cal),
        "traffic": traffic_select(q, facts),
        # With the facts in the traffic, filled after the conversations on their connection.
        "touches": revenue.touches_select(q, tables["convs"] if facts else None),
        **(sends or {"sends": messaging.sends_select(q)}),
    }


# Statements whose joins the planner misjudges (see whole_tables): the waits, millions of
# them when they read everything, joined to their conversations; for a few conversations,
# merged with them (both come in conversation id order) instead of a probe per wait. With
# the facts in the traffic, the conversations too: merged with their facts and surveys
# (the touched conversations are estimated at a handful, so a nested loop would be chosen
# and compare every pair).
_WHOLE = ("replies",)
_WHOLE_FACTS = (*_WHOLE, "convs")
# The fills, slowest first (so that fills side by side end close together).
FILLS = ("replies", "convs", "traffic", "sends", "touches")
# With the facts in the traffic, the conversations are filled right after the traffic on
# the same connection (the only one that sees it before it commits), and the touches right
# after the conversations (whose contacts they read): one unit, the first.
FILLS_FACTS = ("traffic", "replies", "sends")


def _facts_in_traffic(q: Query) -> bool:
    """A few touched conversations on PostgreSQL: their messages read once for the
    traffic and the facts (each conversation's facts are then a probe of its traffic rows,
    cheaper than one of its messages)."""
    return q.probes


@dataclass(frozen=True, slots=True)
class Fill:
    """``CREATE … TABLE AS`` one source, then ANALYZE it (PostgreSQL, unless it holds a
    few conversations' rows), then run ``then`` (fills that read it)."""

    name: str
    create: CreateTableAs
    lookups: bool
    whole: bool = False  # no nested loops (``whole_tables``)
    then: tuple[Fill, ...] = ()

    @property
    def tables(self) -> list[str]:
        """The tables this fill (and what it runs next) creates."""
        return [self.create.name, *(name for fill in self.then for name in fill.tables)]

    @property
    def reads(self) -> set[Any]:
        """The tables this fill (and what it runs next) reads."""
        return {*find_tables(self.create.select), *(t for fill in self.then for t in fill.reads)}

    def run(self, conn: Connection) -> None:
        if self.whole:
            strategy = whole_tables(conn)
        else:
            strategy = index_lookups(conn) if self.lookups else nullcontext()
        with strategy:
            conn.execute(self.create)
        if conn.dialect.name == "postgresql" and not self.lookups:
            # Autovacuum never analyses temporary tables; the planner needs row counts. A
            # few conversations' tables are read whole, and an unanalysed table's size is
            # still taken from its pages: ANALYZE would cost more than it saves there.
            conn.execute(text(f"ANALYZE {self.create.name}"))
        for fill in self.then:
            fill.run(conn)


def fills(
    q: Query,
    cal: Calendar | None,
    stem: str = "kpi",
    kind: str = "TEMPORARY",
    scoped: Sequence[Query] = (),
) -> tuple[Sources, list[Fill]]:
    """The tables for ``q``'s period and conversations (what the families read), and the
    statements that fill them, in ``FILLS`` order (``FILLS_FACTS`` with the facts in the
    traffic).

    ``scoped``: queries of a group computed together (they share ``q``'s conversations);
    each gets its own campaign sends (``Sources.of``).
    """
    scopes = [each.scope for each in scoped]
    facts = _facts_in_traffic(q)
    tables = _tables(cal, stem, kind, scopes, facts)
    selects = _selects(q, cal, scoped, tables)

    def fill(each: str, name: str, **more: Any) -> Fill:
        table = tables[each]
        found = selects[each].subquery(name)
        # Columns in the order and with the names the table describes.
        stmt = select(*(found.c[c.name] for c in table.c))
        whole = each in (_WHOLE_FACTS if facts else _WHOLE)
        return Fill(each, CreateTableAs(table.name, stmt, kind), q.lookups, whole, **more)

    out = []
    for name in FILLS_FACTS if facts else FILLS:
        if facts and name == "traffic":
            convs = fill("convs", "convs", then=(fill("touches", "touches"),))
            out.append(fill(name, name, then=(convs,)))
            continue
        out += [fill(each, name) for each in (_send_names(scopes) if name == "sends" else [name])]
    shared = {name: tables[name] for name in ("convs", "replies", "traffic", "touches")}
    sends = {scope: tables[f"sends_{scope}"] for scope in scopes}
    # Scoped, ``sends`` is the first scope's: every statement reads its own (``plan`` asks
    # ``Sources.of``).
    default = tables["sends"] if not scopes else sends[scopes[0]]
    return Sources(**shared, sends=default, scoped_sends=sends), out


def materialize(
    session: Session, q: Query, cal: Calendar | None, scoped: Sequence[Query] = ()
) -> Sources:
    """Create and fill the temporary tables on ``session``'s connection; see ``drop``."""
    conn = session.connection()
    drop(session, scoped)
    src, todo = fills(q, cal, scoped=scoped)
    for fill in todo:
        fill.run(conn)
    return src


def drop(session: Session, scoped: Sequence[Query] = ()) -> None:
    conn = session.connection()
    for table in _tables(None, scopes=[q.scope for q in scoped]).values():
        table.drop(conn, checkfirst=True)
