"""The PostgreSQL store's ``search_page``: a filtered page of a table in order, and how many match.

The directory's own search (the people, in login order, by login, email and names, perhaps in one state or
among some) reads ``user_search``, a narrow row a person (provtui.store.postgres_schema, migration 7).  How it
is read depends on how many match, which it learns first, up to the count the caller wants (``count_up_to``):

- every match found under that count (a rare word): their keys and logins are all read (by the trigram
  index, or for one or two letters the index of letters and pairs), sorted here, and only the page's
  documents fetched;
- more than that (one letter, a common name): matches are everywhere, so the login index (which holds the
  search text) finds a page of them in the first few hundred rows, and the count is "more than N" already.

Never as prepared statements: a plan made for any needle ("LIKE $1") is the wrong one for most (one letter
or a rare word), and psycopg prepares a query run five times.  A needle of one or two letters has no trigram:
the index of every letter and pair of letters (``grams``) finds its matches instead.  So a keystroke costs
about the same whatever it types.  Any other search (another table, order or
fields) filters the documents themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from psycopg import sql

from provtui.store.postgres_schema import (
    GRAMS_UP_TO,
    LOOKUP_FIELDS,
    SEARCH_SEPARATOR,
    USER_SEARCH,
    USERS,
    field_condition,
    order_expression,
    search_expression,
)

if TYPE_CHECKING:
    import psycopg

Rows = list[tuple[str, dict[str, Any]]]


def search_page(
    cur: psycopg.Cursor,
    table: str,
    *,
    order_by: str,
    text: str,
    fields: tuple[tuple[str, ...], ...],
    equals: dict[str, Any] | None,
    keys: Collection[str] | None,
    offset: int,
    limit: int | None,
    count_up_to: int | None,
    everyone: Callable[[], int],
) -> tuple[int, Rows]:
    """(how many match, past ``count_up_to`` counted as one more; the page's (key, document) pairs in order);
    ``everyone``: the table's count (with no filter, it is the answer)."""
    needle = text.replace(SEARCH_SEPARATOR, "")
    filters = equals or {}
    many = False  # known to match more than count_up_to
    if _by_user_search(table, order_by, needle, fields, filters):
        if needle and count_up_to is not None:
            found = _all_if_few(cur, *_user_condition(needle, filters, keys, grams=True), count_up_to)
            if found is not None:
                return len(found), _documents(cur, [key for key, _ in sorted(found, key=lambda row: row[1])][_slice(offset, limit)])
            many = True
        # (not the letters' index: many match, so the login index finds a page of them in its first rows; the
        # planner, misjudging how many have a pair of letters, would read them all and sort them)
        condition, params = _user_condition(needle, filters, keys)
        page = sql.SQL(
            "SELECT d.key, d.doc FROM (SELECT key, login FROM user_search WHERE {} ORDER BY login OFFSET %s LIMIT %s) AS s"
            " JOIN docs d ON d.tbl = {} AND d.key = s.key ORDER BY s.login"
        ).format(condition, sql.Literal(USERS))
        count = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM user_search WHERE {} LIMIT %s) AS matches").format(condition)
    else:
        condition, params = _document_condition(table, needle, fields, filters, keys)
        # Two queries: a count(*) OVER () beside the page would read every match's document before the LIMIT.
        page = sql.SQL("SELECT key, doc FROM docs WHERE {} ORDER BY {} OFFSET %s LIMIT %s").format(condition, order_expression(order_by))
        count = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM docs WHERE {} LIMIT %s) AS matches").format(condition)
    cur.execute(page, [*params, offset, limit], prepare=False)
    rows: Rows = cur.fetchall()
    if offset == 0 and (limit is None or len(rows) < limit):
        return len(rows), rows  # the page holds every match
    if many and count_up_to is not None:
        return count_up_to + 1, rows  # (counted already: "more than count_up_to")
    if not (needle or filters or keys is not None):
        return everyone(), rows
    cur.execute(count, [*params, None if count_up_to is None else count_up_to + 1], prepare=False)
    row = cur.fetchone()
    return int(row[0]) if row else 0, rows


def _slice(offset: int, limit: int | None) -> slice:
    return slice(offset, None if limit is None else offset + limit)


def _by_user_search(table: str, order_by: str, needle: str, fields: tuple[tuple[str, ...], ...], filters: dict[str, Any]) -> bool:
    """Whether user_search answers it: the people in login order, searched as the directory searches them."""
    return (
        table == USERS
        and order_by == "login"
        and (not needle or fields == USER_SEARCH)
        and all(name == "state" and isinstance(value, str) for name, value in filters.items())
    )


def _like(needle: str) -> str:
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _lexeme(needle: str) -> str:
    """A tsquery of one lexeme, exactly ``needle`` (quoted: no operator, weight or prefix in it is read)."""
    return "'" + needle.replace("\\", "\\\\").replace("'", "''") + "'"


def _user_condition(
    needle: str, filters: dict[str, Any], keys: Collection[str] | None, *, grams: bool = False
) -> tuple[sql.Composable, list[Any]]:
    where: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[Any] = []
    if keys is not None:
        where.append(sql.SQL("key = ANY(%s)"))
        params.append(list(keys))
    if "state" in filters:
        where.append(sql.SQL("state = %s"))
        params.append(filters["state"])
    if grams and needle and len(needle) <= GRAMS_UP_TO:  # the letters' index answers it (the LIKE below then always holds)
        where.append(sql.SQL("grams @@ %s::tsquery"))
        params.append(_lexeme(needle))
    if needle:  # user_search_text answers it (trigrams), or the login index's copy of the search text
        where.append(sql.SQL("search LIKE %s"))
        params.append(_like(needle))
    return sql.SQL(" AND ").join(where), params


def _all_if_few(cur: psycopg.Cursor, condition: sql.Composable, params: list[Any], up_to: int) -> list[tuple[str, str]] | None:
    # (for a needle of one or two letters, the condition reads the letters' index: grams=True)
    """Every match's (key, login) if there are at most ``up_to``; None if there are more."""
    cur.execute(sql.SQL("SELECT key, login FROM user_search WHERE {} LIMIT %s").format(condition), [*params, up_to + 1], prepare=False)
    found: list[tuple[str, str]] = cur.fetchall()
    return found if len(found) <= up_to else None


def _documents(cur: psycopg.Cursor, keys: list[str]) -> Rows:
    cur.execute("SELECT key, doc FROM docs WHERE tbl = %s AND key = ANY(%s)", (USERS, keys))
    docs: dict[str, dict[str, Any]] = dict(cur.fetchall())
    return [(key, docs[key]) for key in keys if key in docs]


def _document_condition(
    table: str, needle: str, fields: tuple[tuple[str, ...], ...], filters: dict[str, Any], keys: Collection[str] | None
) -> tuple[sql.Composable, list[Any]]:
    from psycopg.types.json import Jsonb

    where: list[sql.Composable] = [sql.SQL("tbl = {}").format(sql.Literal(table))]
    params: list[Any] = []
    if keys is not None:
        where.append(sql.SQL("key = ANY(%s)"))
        params.append(list(keys))
    for name, value in filters.items():
        if isinstance(value, str) and name in LOOKUP_FIELDS:
            where.append(field_condition(name))
            params.append(value)
        else:
            where.append(sql.SQL("doc @> %s"))
            params.append(Jsonb({name: value}))
    if needle:  # (no index: the directory's own searches are user_search's)
        where.append(sql.SQL("{} LIKE %s").format(search_expression(fields)))
        params.append(_like(needle))
    return sql.SQL(" AND ").join(where), params


def warm_search_rows(conn: psycopg.Connection) -> tuple[str, int]:
    """Read user_search and its indexes once (on ``conn``, a connection of its own: a console's searches go on):
    how (``pg_prewarm``: the blocks read into PostgreSQL's buffers; ``read``: the rows read in order).

    A keystroke's search reads its matches' rows of user_search (up to 10,000, spread over the table) and the
    index entries that find them.  Where those have left the database's memory (a big import since, a restart),
    each is a read from the disk: the first keystrokes took 270-540 ms at a million people, 30-60 ms after.
    With pg_prewarm (migration 9, where the role may make it) the table and its indexes are read into
    PostgreSQL's buffers (2.6 s from a cold disk at a million); without it, the table alone, read in order.
    """
    conn.execute("SET statement_timeout = '10s'")  # (a far bigger directory's warming is given up)
    row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_prewarm'").fetchone()
    if row and row[0]:
        row = conn.execute(
            "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c WHERE c.relname = 'user_search'"
            " OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'user_search'::regclass)"
        ).fetchone()
        return "pg_prewarm", int(row[0] or 0) if row else 0
    row = conn.execute("SELECT count(*) FROM user_search").fetchone()
    return "read", int(row[0]) if row else 0
