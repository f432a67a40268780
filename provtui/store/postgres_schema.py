"""The PostgreSQL store's schema: numbered migrations, applied in order under an advisory lock and recorded in
``provtui_schema`` (``provtui init`` creates a store with all of them; opening an older store applies the rest);
a store whose schema is newer than this provtui is refused.

Migration 2 adds what reading by query needs (provtui.store.queried): a GIN index over every document's fields
(a lookup is ``doc @> {field: value}``), and the users' login order and a trigram index of their search text
(``search_expression``), so a page of a list or a search reads a page, not the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from provtui.domain.users import SEARCH_FIELDS
from provtui.store.errors import StoreError
from provtui.store.records import GENESIS_HASH
from provtui.store.urls import redacted

if TYPE_CHECKING:
    import psycopg

MIGRATION_LOCK = 0x70726F76  # "prov": the advisory lock taken while the schema is created or upgraded
USERS = "users"  # the table of people: its order and search text are indexed (the read model's USERS)
SEARCH_SEPARATOR = "\x01"  # between the fields of a search text (no needle holds it: see search_pattern)
CASE_FOLDING = "und-x-icu"  # lower() by Unicode's rules, whatever the database's own locale


def search_expression(fields: tuple[tuple[str, ...], ...]) -> sql.Composable:
    """The lowercased text a search matches against: ``fields`` (paths into the document) joined by
    SEARCH_SEPARATOR.  The index and the query build it here, so PostgreSQL sees the same expression."""
    parts = [sql.SQL("coalesce(doc #>> {}, '')").format(sql.Literal("{" + ",".join(path) + "}")) for path in fields]
    separator = sql.SQL(" || {} || ").format(sql.Literal(SEARCH_SEPARATOR))
    joined = sql.Composed([piece for part in parts for piece in (separator, part)][1:])
    # lowered by Unicode's rules, then compared bytewise: a LIKE under the ICU collation would not use the index
    return sql.SQL('(lower(({}) COLLATE {}) COLLATE "C")').format(joined, sql.Identifier(CASE_FOLDING))


def order_expression(field: str) -> sql.Composable:
    """A field's text in code-point order (as Python sorts strings)."""
    return sql.SQL('(doc ->> {}) COLLATE "C"').format(sql.Literal(field))


USER_SEARCH = tuple(("profile", name) for name in SEARCH_FIELDS)  # as provtui.domain.users.search_text reads them

MIGRATIONS: tuple[sql.SQL | sql.Composed, ...] = (
    # 1: the tables (provtui.store.postgres_store's docstring)
    sql.SQL("""
    CREATE TABLE head (id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, audit_head text NOT NULL);
    CREATE TABLE docs (tbl text NOT NULL, key text NOT NULL, doc jsonb NOT NULL, PRIMARY KEY (tbl, key));
    CREATE TABLE commits (seq bigint PRIMARY KEY, time text NOT NULL, ops jsonb NOT NULL);
    CREATE TABLE audit (pos bigserial PRIMARY KEY, seq bigint NOT NULL, event jsonb NOT NULL);
    """),
    # 2: reading by query
    sql.SQL("""
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX docs_fields ON docs USING gin (doc jsonb_path_ops);
    CREATE INDEX docs_users_by_login ON docs ({order}) WHERE tbl = {users};
    CREATE INDEX docs_users_search ON docs USING gin (({search}) gin_trgm_ops) WHERE tbl = {users};
    """).format(order=order_expression("login"), search=search_expression(USER_SEARCH), users=sql.Literal(USERS)),
)


def schema_version(conn: psycopg.Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('provtui_schema') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return 0
        cur.execute("SELECT coalesce(max(version), 0) FROM provtui_schema")
        found = cur.fetchone()
    return int(found[0]) if found else 0


def create_schema(conn: psycopg.Connection, url: str) -> None:
    with conn.transaction(), conn.cursor() as cur:
        create_schema_in(cur, url)


def create_schema_in(cur: psycopg.Cursor, url: str) -> None:
    """A new store's schema, every migration applied; never over a store (or anything) already there."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    cur.execute("SELECT to_regclass('provtui_schema') IS NOT NULL OR to_regclass('docs') IS NOT NULL")
    row = cur.fetchone()
    if row and row[0]:
        raise StoreError(f"a store already exists at {redacted(url)}")
    cur.execute("CREATE TABLE provtui_schema (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())")
    _apply(cur, 0)
    cur.execute("INSERT INTO head (id, seq, audit_head) VALUES (1, 0, %s)", (GENESIS_HASH,))


def upgrade(conn: psycopg.Connection, url: str) -> int:
    """Apply the migrations a store made by an older provtui lacks (one transaction); returns the version."""
    version = schema_version(conn)
    if version > len(MIGRATIONS):
        raise StoreError(f"{redacted(url)} holds a store of schema {version}; this provtui knows up to {len(MIGRATIONS)}: upgrade it")
    if 0 < version < len(MIGRATIONS):
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute("SELECT coalesce(max(version), 0) FROM provtui_schema")  # another process may have done it meanwhile
            found = cur.fetchone()
            _apply(cur, int(found[0]) if found else 0)
        version = len(MIGRATIONS)
    return version


def _apply(cur: psycopg.Cursor, done: int) -> None:
    for version, migration in enumerate(MIGRATIONS[done:], done + 1):
        cur.execute(migration)
        cur.execute("INSERT INTO provtui_schema (version) VALUES (%s)", (version,))
