"""The store on PostgreSQL: one database shared by every process on every host that can reach it.

It keeps the store contract (provtui.store.contract) the way the journal store does, with the
database in the place of the directory's files and its lock:

- ``docs`` holds every document (table, key, JSONB), the directory as it is now; ``commits`` each
  commit's number and time, and ``commit_ops`` its ops, a row each (what another process applies
  to catch up); ``audit`` the trail, in order; ``head`` one row: the newest commit's number and
  the audit chain's head; ``table_counts`` the rows each table holds (provtui.store.postgres_writes).
- A transaction locks the head row (``SELECT … FOR UPDATE``): writers take turns, on every host,
  as they take the journal store's file lock; under it the process catches up, the block stages
  its writes, and the commit writes docs, the commit's ops, its chained audit events and the new
  head in one database transaction.  So the audit chain stays one linear chain whatever the
  number of writers, and a commit is acknowledged only once PostgreSQL has it.  A block that
  raises rolls everything back.
- A process holds the tables in memory for the read model (as the journal store does), loaded at
  open and kept up to date from ``commits`` — all but those it opens ``queried``
  (provtui.store.queried): those it reads by query (``get``, ``lookup``, ``count``, ``search_page``)
  and keeps only what it read lately, so its memory stays a page's worth whatever the directory's
  size.  What needs a whole queried table (``all``) makes this process hold it (``hold``); a worker
  holds them all, as it plans every key.

The schema and its migrations: provtui.store.postgres_schema.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from psycopg import sql

from provtui.store.errors import StoreError, StoreUnreadable
from provtui.store.postgres_schema import (
    ACCOUNT_SEPARATOR,
    LOOKUP_FIELDS,
    create_schema,
    create_schema_in,
    field_condition,
    schema_version,
    upgrade,
)
from provtui.store.postgres_search import search_page, warm_search_rows
from provtui.store.postgres_writes import index_damage, table_count, write_commit, write_holding
from provtui.store.queried import QueriedTable
from provtui.store.records import GENESIS_HASH
from provtui.store.tables import Tables, Transaction, capped, chain
from provtui.store.urls import redacted

if TYPE_CHECKING:
    import psycopg

COMMITS_KEPT = 20_000  # commits a lagging process can catch up by; further behind, it reloads the docs
AUDIT_PAGE = 1000  # events read at a time, newest first
READS_BEFORE_HOLDING = 300  # reads by query one transaction makes before this process holds the tables
_SERVER_LOCK = 0x70726F77  # the one a `provtui server` holds while it serves the store


def _connect(url: str) -> psycopg.Connection:
    import psycopg
    from psycopg.types.json import set_json_dumps, set_json_loads

    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as error:
        raise StoreUnreadable(f"{redacted(url)}: {str(error).strip()}") from None
    set_json_loads(orjson.loads, conn)
    set_json_dumps(orjson.dumps, conn)
    return conn


class PostgresStore(Tables):
    """A store in one PostgreSQL database (``url``: a libpq URI)."""

    def __init__(self, url: str, conn: psycopg.Connection, clock: Callable[[], str], queried: Collection[str] = ()):
        super().__init__()
        self._queried = {name: QueriedTable(name, self._fetch) for name in queried}
        self._reads: int | None = None  # reads by query in the transaction under way (None: none under way)
        self.url = url
        self.path = Path(redacted(url).replace("//", "/", 1))  # the contract's name for it; ``location`` prints the URL
        self.location = redacted(url)
        self.clock = clock
        self._conn = conn
        self._listener: psycopg.Connection | None = None  # LISTEN provtui_commit, made on first commit_signal()
        self._server_lock: psycopg.Connection | None = None  # holds the server lock (take_for_server)
        self.seq = 0
        self.audit_head = GENESIS_HASH

    # -- opening -------------------------------------------------------------------

    @classmethod
    def exists(cls, url: str) -> bool:
        with _connect(url) as conn:
            return schema_version(conn) > 0

    @classmethod
    def open(
        cls, url: str, *, create: bool = False, clock: Callable[[], str] | None = None, queried: Collection[str] = ()
    ) -> PostgresStore:
        """The store at ``url`` (with ``create``, a new one); ``queried``: the tables read by query, not held."""
        from provtui.clock import utc_now_iso

        conn = _connect(url)
        try:
            if create:
                create_schema(conn, url)
            if upgrade(conn, url) == 0:
                raise StoreError(f"no store at {redacted(url)} (run `provtui init` first)")
            store = cls(url, conn, clock or utc_now_iso, queried)
            store._load()
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def create_holding(
        cls, url: str, seq: int, audit_head: str, tables: dict[str, dict[str, dict[str, Any]]], events: list[dict[str, Any]]
    ) -> None:
        """A new store at ``url`` holding ``tables`` as of commit ``seq`` and the trail ``events`` (a migration):
        written in one transaction with the schema, so a failed copy leaves nothing behind."""
        conn = _connect(url)
        try:
            with conn.transaction(), conn.cursor() as cur:
                create_schema_in(cur, url)
                write_holding(cur, seq, audit_head, tables, events)
        finally:
            conn.close()

    def _load(self) -> None:
        """Every document and the head, as of one moment (a repeatable-read snapshot)."""
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self._reload(cur)

    def _reload(self, cur: psycopg.Cursor) -> None:
        cur.execute("SELECT seq, audit_head FROM head WHERE id = 1")
        self.seq, self.audit_head = cur.fetchone() or (0, GENESIS_HASH)
        tables: dict[str, dict[str, dict[str, Any]]] = {}
        if self._queried:  # the held tables by name (table_counts knows them): not a scan past a million people
            cur.execute("SELECT tbl FROM table_counts WHERE n > 0 AND tbl <> ALL(%s)", (list(self._queried),))
            cur.execute("SELECT tbl, key, doc FROM docs WHERE tbl = ANY(%s)", ([row[0] for row in cur.fetchall()],))
        else:
            cur.execute("SELECT tbl, key, doc FROM docs")
        for table, key, doc in cur.fetchall():
            tables.setdefault(table, {})[key] = doc
        for queried in self._queried.values():
            queried.clear()  # (what it kept may be older than what was reloaded)
        self._replace_tables(tables)

    def _sync(self, cur: psycopg.Cursor, head_seq: int, head_hash: str) -> None:
        """Apply the commits up to the head read in this (consistent or locked) view; further behind than
        the commits kept (compact), reload."""
        if head_seq != self.seq:
            cur.execute("SELECT count(*), min(seq) FROM commits WHERE seq > %s AND seq <= %s", (self.seq, head_seq))
            kept, first = cur.fetchone() or (0, None)
            if kept != head_seq - self.seq or first != self.seq + 1:
                self._reload(cur)
                return
            cur.execute("SELECT seq, op FROM commit_ops WHERE seq > %s AND seq <= %s ORDER BY seq, n", (self.seq, head_seq))
            for seq, rows in itertools.groupby(cur.fetchall(), key=lambda row: row[0]):
                ops = [row[1] for row in rows]
                self._apply_ops(ops)
                self.seq = seq
                self._notify(ops)
            self.seq = head_seq  # (a commit may hold no op: only audit events)
        self.audit_head = head_hash

    @property
    def journal(self) -> str:
        """Where commits go (the journal store's journal file): named in damage reports."""
        return f"{self.location} (commits)"

    def close(self) -> None:
        self._conn.close()
        for conn in (self._listener, self._server_lock):
            if conn is not None:
                conn.close()

    def take_for_server(self) -> bool:
        """Hold the database's server lock for as long as this process lives (a session advisory lock, freed by
        PostgreSQL when the process or its connection dies): False if another server holds it."""
        if self._server_lock is None:
            conn = _connect(self.url)
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_SERVER_LOCK,)).fetchone()
            if not (row and row[0]):
                conn.close()
                return False
            self._server_lock = conn
        return True

    def warm_search(self) -> tuple[str, int]:
        with _connect(self.url) as conn:  # (postgres_search.warm_search_rows says why)
            return warm_search_rows(conn)

    def commit_signal(self) -> int:
        """A file descriptor that turns readable when any process commits (LISTEN provtui_commit): a worker
        waits on it instead of polling the head.  ``drain_commit_signal`` empties it."""
        if self._listener is None:
            self._listener = _connect(self.url)
            self._listener.execute("LISTEN provtui_commit")
        return self._listener.fileno()

    def drain_commit_signal(self) -> int:
        """The commits notified since the last drain (their seqs are in the payloads; the head says the rest)."""
        if self._listener is None:
            return 0
        return sum(1 for _ in self._listener.notifies(timeout=0))

    # -- reading -------------------------------------------------------------------

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        docs = self.tables.get(table)
        if docs is not None:
            return docs.get(key)
        queried = self._queried.get(table)
        if queried is None:
            return None
        if self._reading_much():
            return self.get(table, key)
        return queried.get(key)

    def _reading_much(self) -> bool:
        """Count a read by query in a transaction; past READS_BEFORE_HOLDING, hold every queried table and say
        so: a big change (an import, a group's thousand members) reads one document after another, and as many
        round trips would cost seconds where holding the tables costs a read of each."""
        if self._reads is None:
            return False
        self._reads += 1
        if self._reads <= READS_BEFORE_HOLDING:
            return False
        self._reads = None
        self.hold()
        return True

    def get_many(self, table: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        queried = self._queried.get(table)
        return super().get_many(table, keys) if queried is None else queried.many(keys)

    def all(self, table: str) -> dict[str, dict[str, Any]]:
        if table in self._queried:
            self.hold(table)
        return super().all(table)

    def queried(self, table: str) -> bool:
        return table in self._queried

    def _hold_unless_indexed(self, table: str, fieldname: str | None, value: Any) -> None:
        """A lookup or count by a field no index answers (not a string, or not in LOOKUP_FIELDS) holds the table."""
        if table in self._queried and fieldname is not None and not (isinstance(value, str) and fieldname in LOOKUP_FIELDS):
            self.hold(table)

    def lookup(self, table: str, fieldname: str, value: Any) -> set[str]:
        self._hold_unless_indexed(table, fieldname, value)
        if table not in self._queried or self._reading_much():
            return super().lookup(table, fieldname, value)
        with self._conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT key FROM docs WHERE tbl = %s AND {}").format(field_condition(fieldname)), (table, value))
            return {row[0] for row in cur.fetchall()}

    def count(self, table: str, fieldname: str | None = None, value: Any = None) -> int:
        self._hold_unless_indexed(table, fieldname, value)
        queried = self._queried.get(table)
        if queried is None:
            return super().count(table, fieldname, value)
        found = queried.counts.get((fieldname, value))
        if found is None:
            with self._conn.cursor() as cur:
                if fieldname is None:
                    found = table_count(cur, table)  # one row (table_counts), not a scan of the table
                else:
                    cur.execute(
                        sql.SQL("SELECT count(*) FROM docs WHERE tbl = %s AND {}").format(field_condition(fieldname)), (table, value)
                    )
                    row = cur.fetchone()
                    found = int(row[0]) if row else 0
            queried.counts[(fieldname, value)] = found
        return found

    def search_page(
        self,
        table: str,
        *,
        order_by: str,
        text: str = "",
        fields: tuple[tuple[str, ...], ...] = (),
        equals: dict[str, Any] | None = None,
        keys: Collection[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        count_up_to: int | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        if table not in self._queried:
            return super().search_page(
                table, order_by=order_by, text=text, fields=fields, equals=equals, keys=keys, offset=offset, limit=limit,
                count_up_to=count_up_to,
            )  # fmt: skip
        with self._conn.cursor() as cur:
            total, rows = search_page(
                cur, table, order_by=order_by, text=text, fields=fields, equals=equals, keys=keys, offset=offset, limit=limit,
                count_up_to=count_up_to, everyone=lambda: self.count(table),
            )  # fmt: skip
        total = capped(total, count_up_to)
        page: dict[str, dict[str, Any]] = dict(rows)
        self._queried[table].keep(page)
        return total, list(page.values())

    def hold(self, *tables: str) -> None:
        """Hold each of ``tables`` (every queried one if none is named) in memory from now on, read whole: a
        worker plans every key, a report reads every row.  Inside a transaction (the head locked, this
        process caught up) they are read in it; otherwise in a snapshot that the rest then catches up to."""
        from psycopg.pq import TransactionStatus

        names = [name for name in (tables or list(self._queried)) if name in self._queried]
        if not names:
            return
        if self._conn.info.transaction_status != TransactionStatus.IDLE:
            with self._conn.cursor() as cur:
                self._take(cur, names)
            return
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT seq, audit_head FROM head WHERE id = 1")
            head = cur.fetchone()
            self._take(cur, names)
            if head is not None:
                self._sync(cur, *head)  # (re-applying a commit the new tables already show changes nothing)

    def _take(self, cur: psycopg.Cursor, names: list[str]) -> None:
        loaded: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in names}
        cur.execute("SELECT tbl, key, doc FROM docs WHERE tbl = ANY(%s)", (names,))
        for table, key, doc in cur.fetchall():
            loaded[table][key] = doc
        for name in names:
            del self._queried[name]
            self.tables[name] = loaded[name]
        for (table, _), index in self._indexes.items():
            if table in loaded:
                self._rebuild_index(index, table)
        self.db.clear_cache()

    def _fetch(self, table: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        with self._conn.cursor() as cur:
            cur.execute("SELECT key, doc FROM docs WHERE tbl = %s AND key = ANY(%s)", (table, keys))
            return dict(cur.fetchall())

    def _apply_ops(self, ops: list[list[Any]]) -> None:
        """A commit's writes: held tables take them; a queried one forgets what it kept of the keys written."""
        if self._queried:
            held = []
            for op in ops:
                queried = self._queried.get(op[1])
                if queried is None:
                    held.append(op)
                else:
                    queried.forget(op[2])
            ops = held
        super()._apply_ops(ops)

    def refresh(self) -> bool:
        """Pick up commits made by other processes. Returns True if anything changed."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT seq FROM head WHERE id = 1")
            row = cur.fetchone()
        if row is None or row[0] == self.seq:
            return False
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT seq, audit_head FROM head WHERE id = 1")
            head = cur.fetchone()
            if head is not None:
                self._sync(cur, *head)
        return True

    @contextmanager
    def reading(self) -> Iterator[None]:
        self.refresh()
        yield

    # -- writing -------------------------------------------------------------------

    def deferred_sync(self) -> AbstractContextManager[None]:
        return nullcontext()  # each commit is durable on its own

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Lock the head, catch up, let the caller stage writes, then commit in one database transaction.
        If the block raises, nothing is written; when this returns, PostgreSQL has committed it."""
        with self._counting_reads(), self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT seq, audit_head FROM head WHERE id = 1 FOR UPDATE")
            row = cur.fetchone()
            if row is None:
                raise StoreUnreadable(f"{self.location}: the head row is gone: the store's tables were emptied")
            self._sync(cur, *row)
            tx = Transaction(self)
            yield tx
            if not (tx.ops or tx.events):
                return
            now = self.clock()
            seq = self.seq + 1
            events = chain(tx.events, self.audit_head, seq, now)
            self._write(cur, seq, now, tx.ops, events)
        # committed: now it is ours to show
        self._apply_ops(tx.ops)
        self.seq = seq
        if events:
            self.audit_head = events[-1]["hash"]
        self._notify(tx.ops)

    @contextmanager
    def _counting_reads(self) -> Iterator[None]:
        self._reads = 0
        try:
            yield
        finally:
            self._reads = None

    def _write(self, cur: psycopg.Cursor, seq: int, now: str, ops: list[list[Any]], events: list[dict[str, Any]]) -> None:
        write_commit(cur, seq, now, ops, events, self.audit_head, self._known)

    def _known(self, table: str, key: str) -> bool | None:
        """Whether a held table has ``key`` (None: the table is read by query; the database knows)."""
        return None if table in self._queried else key in self.tables.get(table, {})

    def index_damage(self) -> list[tuple[str, str]]:
        """(what, why) wherever the counts or the people's search rows disagree with the documents (`store check`)."""
        with self._conn.cursor() as cur:
            return index_damage(cur)

    def compact(self) -> None:
        """Forget commits older than any process needs to catch up by (one further behind reloads the docs)."""
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("DELETE FROM commits WHERE seq <= %s", (self.seq - COMMITS_KEPT,))
            cur.execute("DELETE FROM commit_ops WHERE seq <= %s", (self.seq - COMMITS_KEPT,))

    # -- the audit trail -----------------------------------------------------------------

    def audit_events(self) -> list[dict[str, Any]]:
        with self._conn.cursor() as cur:
            cur.execute("SELECT event FROM audit ORDER BY pos")
            return [row[0] for row in cur.fetchall()]

    def audit_events_newest_first(self) -> Iterator[dict[str, Any]]:
        """Newest first, a page at a time: the newest page of a long trail costs a page."""
        below: int | None = None
        while True:
            with self._conn.cursor() as cur:
                if below is None:
                    cur.execute("SELECT pos, event FROM audit ORDER BY pos DESC LIMIT %s", (AUDIT_PAGE,))
                else:
                    cur.execute("SELECT pos, event FROM audit WHERE pos < %s ORDER BY pos DESC LIMIT %s", (below, AUDIT_PAGE))
                rows = cur.fetchall()
            if not rows:
                return
            for _, event in rows:
                yield event
            below = rows[-1][0]

    def audit_file_tail(self, offset: int) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """The events from position ``offset`` on, each with its position, and the position after the last."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT pos, event FROM audit WHERE pos >= %s ORDER BY pos", (offset,))
            rows = [(int(pos), event) for pos, event in cur.fetchall()]
        return rows, (rows[-1][0] + 1 if rows else offset)

    def audit_about(
        self,
        logins: Collection[str] = (),
        accounts: Collection[tuple[str, str]] = (),
        *,
        before: int | None = None,
        limit: int = AUDIT_PAGE,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Newest first, below position ``before``: the events provtui_audit_subjects says concern one of ``logins``
        or ``accounts`` ((app name, remote id) pairs), read by their index (a superset: the caller checks each)."""
        subjects = {login.lower() for login in logins} | {f"{app}{ACCOUNT_SEPARATOR}{rid}".lower() for app, rid in accounts}
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT pos, event FROM audit WHERE provtui_audit_subjects(event) && %s::text[] AND pos < %s ORDER BY pos DESC LIMIT %s",
                (sorted(subjects), before if before is not None else 2**62, limit),
            )
            return [(int(pos), event) for pos, event in cur.fetchall()]

    def audit_file_event(self, offset: int) -> dict[str, Any]:
        with self._conn.cursor() as cur:
            cur.execute("SELECT event FROM audit WHERE pos = %s", (offset,))
            row = cur.fetchone()
        if row is None:
            raise StoreError(f"no audit event at {offset}")
        event: dict[str, Any] = row[0]
        return event

    def journal_audit_events(self, after: dict[str, Any] | None) -> list[dict[str, Any]]:
        return []  # every event is in the audit table, where audit_file_tail reads
