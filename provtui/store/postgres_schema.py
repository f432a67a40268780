"""The PostgreSQL store's schema: numbered migrations, applied in order under an advisory lock and recorded in
``provtui_schema`` (``provtui init`` creates a store with all of them; opening an older store applies the rest);
a store whose schema is newer than this provtui is refused.

Migrations 4-8 add what reading by query needs (provtui.store.queried): an index of each field a lookup reads
(``LOOKUP_FIELDS``: ``doc ->> field = value``), each table's count (``table_counts``), an index of whom each audit
event concerns, and the people's search rows (``user_search``: login order, trigrams of ``search_expression`` and its letters and pairs), so
a lookup, a count, a page, a search or a person's history reads what it finds, not the table.
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
ACCOUNT_SEPARATOR = "\x01"  # between an app's name and an account's id among an event's subjects (text holds no NUL)


def search_expression(fields: tuple[tuple[str, ...], ...]) -> sql.Composable:
    """The lowercased text a search matches against: ``fields`` (paths into the document) joined by
    SEARCH_SEPARATOR.  The index and the query build it here, so PostgreSQL sees the same expression."""
    parts = [sql.SQL("coalesce(doc #>> {}, '')").format(sql.Literal("{" + ",".join(path) + "}")) for path in fields]
    separator = sql.SQL(" || {} || ").format(sql.Literal(SEARCH_SEPARATOR))
    joined = sql.Composed([piece for part in parts for piece in (separator, part)][1:])
    # lowered by Unicode's rules, then compared bytewise: a LIKE under the ICU collation would not use the index
    return sql.SQL('(lower(({}) COLLATE {}) COLLATE "C")').format(joined, sql.Identifier(CASE_FOLDING))


LOOKUP_FIELDS = ("login", "name", "user", "group", "app", "subject", "state")  # those provtui.model.schema.INDEXES names


def field_condition(fieldname: str) -> sql.Composable:
    """``doc ->> field = %s``, as the field's index (``docs_by_<field>``) reads it: a lookup of a string value."""
    return sql.SQL("(doc ->> {}) = %s").format(sql.Literal(fieldname))


def order_expression(field: str) -> sql.Composable:
    """A field's text in code-point order (as Python sorts strings)."""
    return sql.SQL('(doc ->> {}) COLLATE "C"').format(sql.Literal(field))


def user_index_rows(where: sql.Composable) -> sql.Composed:
    """user_search's rows (key, login, state, search text) as the people's documents (those ``where`` picks) make them."""
    return sql.SQL("SELECT key, doc ->> 'login', doc ->> 'state', {} FROM docs WHERE tbl = {} AND {}").format(
        search_expression(USER_SEARCH), sql.Literal(USERS), where
    )


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
    # 3: a commit's ops one row each: a commit of a big import outgrew the 255 MB a jsonb value may hold
    sql.SQL("""
    CREATE TABLE commit_ops (seq bigint NOT NULL, n int NOT NULL, op jsonb NOT NULL, PRIMARY KEY (seq, n));
    INSERT INTO commit_ops SELECT c.seq, o.n - 1, o.op FROM commits c, jsonb_array_elements(c.ops) WITH ORDINALITY AS o(op, n);
    ALTER TABLE commits DROP COLUMN ops;
    """),
    # 4: a btree index a field (their statistics guide the planner, which a GIN index over whole documents did not)
    sql.SQL("DROP INDEX docs_fields;")
    + sql.Composed(
        [
            sql.SQL("CREATE INDEX {} ON docs (tbl, {});").format(
                sql.Identifier(f"docs_by_{name}"), sql.SQL("(doc ->> {})").format(sql.Literal(name))
            )
            for name in LOOKUP_FIELDS
        ]
    ),
    # 5: the rows each table holds, kept by every commit (provtui.store.postgres_writes): a count in one row
    sql.SQL("""
    CREATE TABLE table_counts (tbl text PRIMARY KEY, n bigint NOT NULL CHECK (n >= 0));
    INSERT INTO table_counts SELECT tbl, count(*) FROM docs GROUP BY tbl;
    """),
    # 6: whom each audit event concerns, indexed: a person's history reads their events, not the trail.  PL/pgSQL,
    # not SQL: PostgreSQL plans a SQL function's body anew in every statement that calls it (an INSERT of one
    # event: 0.35 ms); PL/pgSQL keeps its plans for the session.
    sql.SQL("""
    CREATE FUNCTION provtui_audit_subjects(e jsonb) RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    DECLARE
      action text := coalesce(e ->> 'action', '');
      found text[] := '{{}}';
      side jsonb;
      field text;
      login jsonb;
    BEGIN
      IF jsonb_typeof(e -> 'target') = 'string' AND (action LIKE 'user.%' OR action LIKE 'account.link%') THEN
        found := found || (e ->> 'target');
      END IF;
      FOREACH side IN ARRAY ARRAY[e -> 'before', e -> 'after'] LOOP
        CONTINUE WHEN jsonb_typeof(side) IS DISTINCT FROM 'object';
        IF jsonb_typeof(side -> 'user') = 'string' THEN
          found := found || (side ->> 'user');
        END IF;
        IF action LIKE 'user.%' AND jsonb_typeof(side -> 'login') = 'string' THEN  -- both logins of a rename
          found := found || (side ->> 'login');
        END IF;
        IF jsonb_typeof(side -> 'subject') = 'string' AND (side ->> 'subject') LIKE 'user:%' THEN
          found := found || substr(side ->> 'subject', 6);
        END IF;
        FOREACH field IN ARRAY ARRAY['users', 'added', 'removed'] LOOP
          CONTINUE WHEN jsonb_typeof(side -> field) IS DISTINCT FROM 'array';
          FOR login IN SELECT value FROM jsonb_array_elements(side -> field) LOOP
            IF jsonb_typeof(login) = 'string' THEN
              found := found || (login #>> '{{}}');
            END IF;
          END LOOP;
        END LOOP;
      END LOOP;
      IF action = 'downstream.call' AND jsonb_typeof(e -> 'target') = 'string' AND jsonb_typeof(e -> 'after' -> 'path') = 'string'
         AND (e -> 'after' ->> 'path') LIKE '/Users/%' THEN
        found := found || ((e ->> 'target') || {separator} || substr(e -> 'after' ->> 'path', 8));
      END IF;
      RETURN ARRAY(SELECT DISTINCT lower(s COLLATE "und-x-icu") COLLATE "C" FROM unnest(found) AS s);
    END
    $$;
    CREATE INDEX audit_by_subject ON audit USING gin (provtui_audit_subjects(event));
    """).format(separator=sql.Literal(ACCOUNT_SEPARATOR)),
    # 7: the people's login, state and search text, a narrow row each (kept by every commit): a search filters
    # these, not documents a kilobyte wide whose search text is made anew on each row (migration 2's indexes)
    sql.SQL("""
    CREATE TABLE user_search (key text PRIMARY KEY, login text COLLATE "C" NOT NULL, state text, search text COLLATE "C" NOT NULL);
    INSERT INTO user_search {rows};
    CREATE INDEX user_search_by_login ON user_search (login) INCLUDE (key, state, search);
    CREATE INDEX user_search_text ON user_search USING gin (search gin_trgm_ops);
    DROP INDEX docs_users_by_login;
    DROP INDEX docs_users_search;
    """).format(rows=user_index_rows(sql.SQL("TRUE"))),
    # 8: every letter and pair of letters of each person's search text, indexed: a needle of one or two letters
    # has no trigram, so without them a rare one ("zq") read every row of user_search (170 ms at a million).  A
    # column PostgreSQL derives (never written, so never damaged), a tsvector (smaller than a text[] and
    # deduplicated in C); a column, not an index expression, so that a filter by it costs no function call.
    sql.SQL("""
    CREATE FUNCTION provtui_search_grams(search text) RETURNS tsvector LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
      field text;
      grams text[] := array_remove(string_to_array(search, NULL), {separator});
    BEGIN
      FOREACH field IN ARRAY ARRAY(SELECT DISTINCT unnest(string_to_array(search, {separator}))) LOOP  -- no pair spans two fields
        FOR i IN 1 .. length(field) - 1 LOOP
          grams := grams || substr(field, i, 2);
        END LOOP;
      END LOOP;
      RETURN array_to_tsvector(grams);
    END
    $$;
    ALTER TABLE user_search ADD COLUMN grams tsvector GENERATED ALWAYS AS (provtui_search_grams(search)) STORED;
    CREATE INDEX user_search_grams ON user_search USING gin (grams);
    """).format(separator=sql.Literal(SEARCH_SEPARATOR)),
    # 9: pg_prewarm (PostgreSQL's contrib), where this role may make it (a superuser's, or made by one before):
    # a console reads the people's search rows and their indexes into PostgreSQL's buffers as it opens
    # (postgres_search.warm_search_rows).  Without it that warming reads the table alone; nothing else needs it.
    sql.SQL("""
    DO $$ BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_prewarm;
    EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN NULL;
    END $$;
    """),
)

GRAMS_UP_TO = 2  # the longest needle user_search.grams answers (a longer one has trigrams)


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
