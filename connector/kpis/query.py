"""The shared context of one computation: scope, period, ids, options, clock."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    true,
    union,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from connector.kpis.options import SCOPES, KpiOptions, Period
from connector.kpis.sql import any_id, index_lookups
from connector.models import Conversation, Message

ACCOUNT = "account"

# Which column of a conversation (or of a message) says which scope it belongs to.
_CONVERSATION_COLUMNS = {
    "agent": Conversation.agent_id,
    "campaign": Conversation.campaign_id,
    "deal": Conversation.deal_id,
    "contact": Conversation.contact_id,
    "phone_number": Conversation.business_number_id,
}

# A conversation's scope columns, carried by every materialised row about it.
SCOPE_COLUMNS = tuple(column.key for column in _CONVERSATION_COLUMNS.values())

_TEMP = MetaData()
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")  # ids of the temporary tables
# The wanted ids of each scope, and the conversations they touch, of a computation over a
# few ids: joined instead of inlined as IN lists (thousands of bound parameters in every
# statement cost more to send and plan than the statement costs to run). One table per
# scope, so several scopes computed together each find their own ids.
KEYS = {
    scope: Table(
        f"kpi_keys_{scope}",
        _TEMP,
        # Only the column the scope's keys are in is indexed (each index is one more DDL
        # statement on every connection that loads a copy): business numbers are text.
        Column("id", ID_TYPE, index=scope != "phone_number"),
        Column("key", String(64), index=scope == "phone_number"),
        prefixes=["TEMPORARY"],
        # Connections that load a copy of the keys (side by side) commit and go back to the
        # pool.
        postgresql_on_commit="DROP",
    )
    for scope in SCOPES
}
# Index lookups pay while the touched conversations are a small share of all of them
# (an agent or a business number touches most conversations: those are scanned).
LOOKUP_SHARE = 0.05
SCAN_SHARE = 0.5
LOOKUP_KEYS = 50_000
# Up to this many keys, count their own conversations before listing what they touch.
FEW_KEYS = 1_000
TOUCHED = Table(
    "kpi_touched",
    _TEMP,
    # No key or index: the ids come distinct (a UNION) and are read whole (``= ANY`` of
    # all of them, or a hashed IN), and on every connection that loads a copy a primary key
    # cost more than the rest of the copy (40 000 ids: 25 ms against 10 ms).
    Column("cid", ID_TYPE),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


@dataclass(frozen=True, slots=True)
class Query:
    session: Session
    opts: KpiOptions
    scope: str
    period: Period
    ids: frozenset[str] | None
    now: datetime
    # The ids are loaded into KEYS and their conversations into TOUCHED (see ``load``).
    keyed: bool = False
    # ...and those conversations are few enough to be read through the indexes, or so many
    # that reading them all is cheaper than picking them out.
    lookups: bool = False
    everything: bool = False
    # A full recompute's share of the keys, ``[low, high)`` (None: unbounded): one of the
    # statements that compute a scope with many keys range by range (``side_by_side``).
    key_range: tuple[int | None, int | None] | None = None

    @classmethod
    def build(
        cls,
        session: Session,
        opts: KpiOptions,
        scope: str,
        period: Period,
        ids: Collection[str] | None,
        now: datetime,
    ) -> Query:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
        wanted = None if ids is None else frozenset(str(i) for i in ids)
        return cls(session, opts, scope, period, wanted, now)

    @property
    def keys(self) -> Table:
        """The temporary table of this scope's wanted ids (see ``load``)."""
        return KEYS[self.scope]

    @property
    def probes(self) -> bool:
        """A few touched conversations on PostgreSQL: read through index probes (``any_id``,
        LATERAL subqueries)."""
        return self.lookups and self.session.get_bind().dialect.name == "postgresql"

    def own_conversations(self, cid: Any) -> ColumnElement[bool]:
        """Restrict a conversation-id column to the wanted keys' own conversations."""
        mine = aliased(Conversation, name="own_conversation")  # never correlated outwards
        # The keys' own conversations are among the touched ones (``touching``): said
        # through the keys alone, their index leads (293 deals: 293 probes, not one per
        # touched conversation of every scope computed together, 40 000).
        own = select(mine.id).where(self.only(self.conv_column(mine)))
        return any_id(cid, own) if self.probes else cid.in_(own)

    @property
    def is_account(self) -> bool:
        return self.scope == ACCOUNT

    def key(self, column: Any) -> ColumnElement[Any]:
        """The scope key expression for a row whose scope column is ``column``."""
        if self.is_account:
            # An expression, not a bare constant: PostgreSQL refuses GROUP BY 'literal'.
            return func.lower(literal_column(f"'{ACCOUNT}'"))
        # The raw column: grouping and sorting on integers is cheaper than on their text;
        # callers turn keys into strings in Python.
        return column

    def conv_key(self, conv: Any = Conversation) -> ColumnElement[Any]:
        return self.key(self.conv_column(conv))

    def conv_column(self, conv: Any = Conversation) -> Any:
        """The scope column of the ORM ``Conversation`` or of a relation with its columns."""
        if self.is_account:
            return None
        name = _CONVERSATION_COLUMNS[self.scope].key
        return conv.c[name] if hasattr(conv, "c") else getattr(conv, name)

    def message_column(self, msg: Any = Message, conv: Any = Conversation) -> Any:
        """Messages carry their own agent and campaign; the rest comes from the conversation."""
        if self.is_account:
            return None
        if self.scope == "agent":
            return msg.agent_id
        if self.scope == "contact":
            return msg.contact_id
        if self.scope == "phone_number":
            return msg.business_number_id
        if self.scope == "campaign":
            return msg.campaign_id  # the send's own campaign; callers coalesce if they want
        return conv.deal_id

    def only(self, column: Any) -> ColumnElement[bool]:
        """Restrict to the wanted ids (and to rows that have a key at all)."""
        if self.is_account or column is None:
            return true()
        if self.ids is None:
            return and_(column.is_not(None), *self._in_range(column))
        if self.keyed:
            return column.in_(select(self.key_column()))
        if self.scope == "phone_number":
            return column.in_(sorted(self.ids))
        return column.in_(self.int_ids())

    def _in_range(self, column: Any) -> list[ColumnElement[bool]]:
        if self.key_range is None:
            return []
        low, high = self.key_range
        return [
            *([] if low is None else [column >= low]),
            *([] if high is None else [column < high]),
        ]

    def int_ids(self) -> list[int]:
        return sorted(int(i) for i in self.ids or () if i.lstrip("-").isdigit())

    def own(self, conv: Any = Conversation) -> ColumnElement[bool]:
        """Conversations of the wanted keys; for a few ids, also said through the touched
        conversations so the planner can start from that small table."""
        column = self.conv_column(conv)
        if self.keyed and not self.everything:
            return and_(self.only(column), self.conversations(conv.id))
        return self.only(column)

    def conversations(self, cid: Any) -> ColumnElement[bool]:
        """Restrict a conversation-id column to the conversations the wanted ids touch.

        Pushed into the per-conversation subqueries so an incremental run over a few ids
        reads their conversations' messages through the indexes, not every message. An
        agent is also touched by the conversations they replied in, a campaign by the
        conversations its sends landed in.
        """
        if self.is_account or self.everything or self.ids is None:
            return true()
        if self.keyed and self.probes:
            return any_id(cid, select(TOUCHED.c.cid))
        if self.keyed:
            return cid.in_(select(TOUCHED.c.cid))
        return cid.in_(self.touched())

    def touched(self) -> Any:
        """The ids of the conversations the wanted ids touch."""
        found = self.touching()
        return union(*found) if len(found) > 1 else found[0]

    def touching(self) -> list[Select[Any]]:
        """The selects whose union is ``touched`` (flat: SQLite takes no nested UNION)."""
        own = [select(Conversation.id).where(self.only(self.conv_column()))]
        if self.scope == "agent":
            own.append(select(Message.conversation_id).where(self.only(Message.agent_id)))
        elif self.scope == "campaign":
            own.append(select(Message.conversation_id).where(self.only(Message.campaign_id)))
        return own

    def key_column(self) -> Column[Any]:
        return self.keys.c.key if self.scope == "phone_number" else self.keys.c.id

    def key_values(self) -> list[Any]:
        return sorted(self.ids or ()) if self.scope == "phone_number" else self.int_ids()

    def in_period(self, column: Any) -> ColumnElement[bool]:
        conds = []
        if self.period.start is not None:
            conds.append(column >= self.period.start)
        if self.period.end is not None:
            conds.append(column < self.period.end)
        return and_(*conds) if conds else true()


def load(queries: Sequence[Query]) -> list[list[Query]]:
    """Load each query's ids into its keys table and the conversations they touch into
    ``TOUCHED``, and group the queries that can share their sources (see ``drop_keys``).

    Two groups at most: the queries that read every conversation (no ids, the account, a
    key that owns most conversations, or touched conversations that are most of them), and
    the rest, whose touched conversations together are in ``TOUCHED``, read through the
    indexes when they are a small share of all conversations.
    """
    if not queries:
        return []
    session = queries[0].session
    conn = session.connection()
    total = _conversations(conn)
    everything: list[Query] = []
    few: list[Query] = []
    for q in queries:
        if q.ids is None or q.is_account:
            everything.append(q)
            continue
        _load(conn, q.key_column(), q.key_values())
        keyed = replace(q, keyed=True)
        if len(q.ids) <= FEW_KEYS:  # an agent or a number may own most conversations
            own = session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(keyed.only(keyed.conv_column()))
            )
            if own and own >= SCAN_SHARE * total:  # then listing them is wasted work
                everything.append(replace(keyed, everything=True))
                continue
        few.append(keyed)
    if not few:
        return [everything]
    _create(conn, TOUCHED)
    keys = sum(len(q.ids or ()) for q in few)
    parts = [part for q in few for part in q.touching()]
    touched = (union(*parts) if len(parts) > 1 else parts[0]).subquery()
    # In id order: every fill probes the messages of these conversations in the order they
    # are stored here, and in id order those probes walk the index and the table forwards.
    ordered = select(touched.c[0]).order_by(touched.c[0])
    with index_lookups(conn, keys <= LOOKUP_KEYS):
        found = conn.execute(TOUCHED.insert().from_select(["cid"], ordered))
    _analyze(conn, TOUCHED)
    share = found.rowcount / total if total else 0.0
    if share >= SCAN_SHARE:
        return [everything + [replace(q, everything=True) for q in few]]
    few = [replace(q, lookups=share <= LOOKUP_SHARE) for q in few]
    return [group for group in (everything, few) if group]


def keys_loader(groups: Sequence[Sequence[Query]]) -> KeysCopy:
    """What ``load`` loaded, for other connections' own temporary tables (a computation
    spread over several connections)."""
    keyed = [q for group in groups for q in group if q.keyed]
    touched: list[int] | None = None
    if any(not q.everything for q in keyed):  # then TOUCHED is read (``own``, ``conversations``)
        # One row holding them all (fetched as rows, 40 000 ids cost a tenth of a second).
        ids = func.array_agg(postgresql.aggregate_order_by(TOUCHED.c.cid, TOUCHED.c.cid))
        touched = list(keyed[0].session.scalar(select(ids)) or ())
    return KeysCopy([(q.key_column(), q.key_values()) for q in keyed], touched)


@dataclass(frozen=True, slots=True)
class KeysCopy:
    """The ids ``load`` loaded (per keys table) and the touched conversations."""

    ids: list[tuple[Column[Any], list[Any]]]
    touched: list[int] | None

    def with_ids(self, column: Column[Any], values: list[Any]) -> KeysCopy:
        """The same copy with ``values`` as the ids of ``column``'s keys table."""
        ids = [(c, values if c is column else v) for c, v in self.ids]
        return KeysCopy(ids, self.touched)

    def __call__(self, conn: Connection, tables: Collection[Any] | None = None) -> None:
        """Load copies of them on ``conn``: all, or those of ``tables`` (what one statement
        reads: copying the touched conversations for a statement that never reads them
        costs about a tenth of a second at 1 M conversations)."""
        for column, values in self.ids:
            if tables is None or column.table in tables:
                _load(conn, column, values)
        if self.touched is not None and (tables is None or TOUCHED in tables):
            _load(conn, TOUCHED.c.cid, self.touched)


def _conversations(conn: Connection) -> int:
    """How many conversations there are: PostgreSQL's estimate (a count reads them all, and
    the strategy only needs the order of magnitude), or a count."""
    if conn.dialect.name == "postgresql":
        estimate = conn.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = 'conversations'::regclass")
        )
        if estimate is not None and estimate > 0:  # -1: never analysed; 0: maybe empty
            return int(estimate)
    return int(conn.scalar(select(func.count()).select_from(Conversation)) or 0)


def _create(conn: Connection, table: Table) -> None:
    table.drop(conn, checkfirst=True)
    table.create(conn)


def _load(conn: Connection, column: Column[Any], values: list[Any]) -> None:
    """A fresh temporary table holding ``values`` in ``column``, analysed."""
    _create(conn, column.table)
    _insert_ids(conn, column, values)
    _analyze(conn, column.table)


def _insert_ids(conn: Connection, column: Column[Any], values: list[Any]) -> None:
    """One statement on PostgreSQL (an array unnested: thousands of rows in one round trip)."""
    if not values:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(column.table.insert(), [{column.key: v} for v in values])
        return
    array = postgresql.ARRAY(column.type)
    if isinstance(values[0], int):
        # Integers sent as one array literal: psycopg dumps a list element by element in
        # Python, holding the GIL (40 000 ids: tens of milliseconds on every connection).
        literal = "{" + ",".join(map(str, values)) + "}"
        found: Any = cast(bindparam("values", literal, type_=String), array)
    else:
        found = bindparam("values", values, type_=array)
    rows = select(func.unnest(found))
    conn.execute(column.table.insert().from_select([column.key], rows))


def _analyze(conn: Connection, table: Table) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {table.name}"))


def drop_keys(session: Session, queries: Sequence[Query]) -> None:
    conn = session.connection()
    for table in (*{q.scope: q.keys for q in queries}.values(), TOUCHED):
        table.drop(conn, checkfirst=True)
