"""What the PostgreSQL store writes: a commit (its documents, ops, audit events and the new head), a new store
holding a copy (a migration), and the rows each table holds (``table_counts``), kept in the same transaction.

A count of a whole table is what a console shows on every search ("12 of 1,000,000 users", "40 queued"), and
``count(*)`` reads every row of it: at a million people that is most of a second.  ``table_counts`` answers it
in one row.  A commit knows what it adds and removes only by asking which of its keys were there before it
wrote them: one query for the keys of the tables read by query (``ask``), and the held tables' own memory for
the rest.  It keeps the people's search rows (``user_search``: login, state, search text) the same way.  Writes
go through here alone, so both stay true; `store check` compares them with the documents (a write that went
around provtui is damage to report, not to mend quietly).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from psycopg import sql

from provtui.store.postgres_schema import USERS, user_index_rows

if TYPE_CHECKING:
    import psycopg

Known = Callable[[str, str], bool | None]  # whether a held table has the key (None: not held, ask the database)


def write_commit(
    cur: psycopg.Cursor, seq: int, now: str, ops: list[list[Any]], events: list[dict[str, Any]], audit_head: str, known: Known
) -> None:
    """Commit ``seq``'s rows, under the head lock the transaction took; ``audit_head``: the head before it."""
    from psycopg.types.json import Jsonb

    final: dict[tuple[str, str], dict[str, Any] | None] = {}
    for op in ops:  # the last write of a key is what the docs keep
        final[(op[1], op[2])] = op[3] if op[0] == "put" else None
    _count_changes(cur, final, known)
    puts = [(t, k, Jsonb(doc)) for (t, k), doc in final.items() if doc is not None]
    dels = [(t, k) for (t, k), doc in final.items() if doc is None]
    if puts:
        cur.executemany(
            "INSERT INTO docs (tbl, key, doc) VALUES (%s, %s, %s) ON CONFLICT (tbl, key) DO UPDATE SET doc = EXCLUDED.doc", puts
        )
    if dels:
        cur.executemany("DELETE FROM docs WHERE tbl = %s AND key = %s", dels)
    _index_users(cur, [k for (t, k), doc in final.items() if t == USERS and doc is not None], [k for t, k in dels if t == USERS])
    cur.execute("INSERT INTO commits (seq, time) VALUES (%s, %s)", (seq, now))
    with cur.copy("COPY commit_ops (seq, n, op) FROM STDIN") as copying:
        for n, op in enumerate(ops):
            copying.write_row((seq, n, Jsonb(op)))
    if events:  # (one COPY: a million-person import's events are one statement, not a million)
        with cur.copy("COPY audit (seq, event) FROM STDIN") as copying:
            for event in events:
                copying.write_row((seq, Jsonb(event)))
    head = events[-1]["hash"] if events else audit_head
    cur.execute("UPDATE head SET seq = %s, audit_head = %s WHERE id = 1", (seq, head))
    cur.execute("SELECT pg_notify('provtui_commit', %s)", (str(seq),))  # ids only: listeners read the rest


def write_holding(
    cur: psycopg.Cursor, seq: int, audit_head: str, tables: dict[str, dict[str, dict[str, Any]]], events: list[dict[str, Any]]
) -> None:
    """A new store's rows (its schema just made in this transaction): ``tables`` as of commit ``seq``, the
    trail ``events``, their counts and the head."""
    from psycopg.types.json import Jsonb

    with cur.copy("COPY docs (tbl, key, doc) FROM STDIN") as copying:
        for table, docs in tables.items():
            for key, doc in docs.items():
                copying.write_row((table, key, Jsonb(doc)))
    with cur.copy("COPY audit (seq, event) FROM STDIN") as copying:
        for event in events:
            copying.write_row((event["seq"], Jsonb(event)))
    _add_to_counts(cur, Counter({table: len(docs) for table, docs in tables.items() if docs}))
    cur.execute(sql.SQL("INSERT INTO user_search {}").format(user_index_rows(sql.SQL("TRUE"))))
    cur.execute("UPDATE head SET seq = %s, audit_head = %s WHERE id = 1", (seq, audit_head))


def _index_users(cur: psycopg.Cursor, written: list[str], deleted: list[str]) -> None:
    """user_search's rows of the people this commit wrote (made from their documents as written) or deleted."""
    if deleted:
        cur.execute("DELETE FROM user_search WHERE key = ANY(%s)", (deleted,))
    if written:
        cur.execute(
            sql.SQL(
                "INSERT INTO user_search {} ON CONFLICT (key) DO UPDATE"
                " SET login = EXCLUDED.login, state = EXCLUDED.state, search = EXCLUDED.search"
            ).format(user_index_rows(sql.SQL("key = ANY(%s)"))),
            (written,),
        )


def _count_changes(cur: psycopg.Cursor, final: dict[tuple[str, str], dict[str, Any] | None], known: Known) -> None:
    """Add to each table's count the keys this commit creates, less those it deletes (before writing them)."""
    delta: Counter[str] = Counter()
    asked: list[tuple[str, str]] = []
    for (table, key), doc in final.items():
        was = known(table, key)
        if was is None:
            asked.append((table, key))
            delta[table] += doc is not None  # less those found there, below
        else:
            delta[table] += (doc is not None) - was
    for table, there in _present(cur, asked):
        delta[table] -= there
    _add_to_counts(cur, delta)


def _present(cur: psycopg.Cursor, keys: list[tuple[str, str]]) -> Iterable[tuple[str, int]]:
    """How many of ``keys`` each table holds now."""
    if not keys:
        return []
    tables, names = [t for t, _ in keys], [k for _, k in keys]
    cur.execute(
        "SELECT d.tbl, count(*) FROM docs d JOIN unnest(%s::text[], %s::text[]) AS w(tbl, key) ON d.tbl = w.tbl AND d.key = w.key"
        " GROUP BY d.tbl",
        (tables, names),
    )
    return [(table, int(n)) for table, n in cur.fetchall()]


def _add_to_counts(cur: psycopg.Cursor, delta: Counter[str]) -> None:
    changed = sorted((table, max(n, 0), n) for table, n in delta.items() if n)  # (the check is of the row proposed, too)
    if changed:
        cur.executemany(
            "INSERT INTO table_counts (tbl, n) VALUES (%s, %s) ON CONFLICT (tbl) DO UPDATE SET n = table_counts.n + %s", changed
        )


def table_count(cur: psycopg.Cursor, table: str) -> int:
    cur.execute("SELECT n FROM table_counts WHERE tbl = %s", (table,))
    row = cur.fetchone()
    return int(row[0]) if row else 0


def index_damage(cur: psycopg.Cursor) -> list[tuple[str, str]]:
    """(what, why) wherever the counts or the people's search rows disagree with the documents (`store check`)."""
    found = [
        ("table_counts", f"{table}: counted {counted:,} rows, holds {held:,} (written around provtui)")
        for table, counted, held in miscounted(cur)
    ]
    differ = misindexed_users(cur)
    if differ:
        found.append(("user_search", f"{differ:,} rows differ from the people's documents (written around provtui)"))
    return found


def misindexed_users(cur: psycopg.Cursor) -> int:
    """How many of user_search's rows differ from what the people's documents make of them (`store check`)."""
    rows = user_index_rows(sql.SQL("TRUE"))
    kept = sql.SQL("SELECT key, login, state, search FROM user_search")
    cur.execute(
        sql.SQL("SELECT (SELECT count(*) FROM ({} EXCEPT {}) AS a) + (SELECT count(*) FROM ({} EXCEPT {}) AS b)").format(
            rows, kept, kept, rows
        )
    )
    row = cur.fetchone()
    return int(row[0]) if row else 0


def miscounted(cur: psycopg.Cursor) -> list[tuple[str, int, int]]:
    """(table, its count, the rows it holds) wherever the two differ: what `store check` reports."""
    cur.execute(
        "SELECT coalesce(c.tbl, d.tbl), coalesce(c.n, 0), coalesce(d.n, 0) FROM table_counts c"
        " FULL JOIN (SELECT tbl, count(*) AS n FROM docs GROUP BY tbl) d ON c.tbl = d.tbl"
        " WHERE coalesce(c.n, 0) <> coalesce(d.n, 0) ORDER BY 1"
    )
    return [(table, int(counted), int(held)) for table, counted, held in cur.fetchall()]
