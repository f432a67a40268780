"""The directory's search on PostgreSQL (#19): a needle of one or two letters has no trigram, so the index of
every letter and pair of letters (user_search.grams, migration 8) finds its matches; it finds exactly what the
needle's substring search finds, whatever the characters (quotes, backslashes, tsquery's operators)."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provtui.model.directory import USER_SEARCH_PATHS
from provtui.model.schema import QUERIED, USERS
from provtui.store.postgres_store import PostgresStore

LETTERS = "aZß'\\: .@_%é&|!*()<>-"


@pytest.fixture
def people_store(pg_url):
    store = PostgresStore.open(pg_url, create=True, queried=QUERIED)
    yield store
    store.close()


def person(n: int, login: str, email: str, first: str) -> dict:
    return {"id": f"u{n}", "login": login, "state": "active", "profile": {"login": login, "email": email, "firstName": first}}


def expected(people: list[dict], needle: str) -> list[str]:
    return sorted(p["login"] for p in people if any(needle in (v or "").lower() for v in p["profile"].values()))


words = st.text(alphabet=LETTERS, min_size=0, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.lists(st.tuples(words, words, words), min_size=1, max_size=12),
    needles=st.lists(st.text(alphabet=LETTERS, min_size=1, max_size=3), min_size=1, max_size=8),
)
def test_a_short_needle_finds_what_a_substring_search_finds(people_store, fields, needles):
    people = [person(n, f"{login}#{n}", email, first) for n, (login, email, first) in enumerate(fields)]
    _, before = people_store.search_page(USERS, order_by="login")
    with people_store.transaction() as tx:  # each example on a directory of its own
        for doc in before:
            tx.delete(USERS, doc["id"])
    with people_store.transaction() as tx:
        for doc in people:
            tx.put(USERS, doc["id"], doc)
    for needle in {n.strip().lower() for n in needles} - {""}:
        for up_to in (None, 2):
            count, page = people_store.search_page(USERS, order_by="login", text=needle, fields=USER_SEARCH_PATHS, count_up_to=up_to)
            want = expected(people, needle)
            assert [doc["login"] for doc in page] == want, needle
            assert count == (len(want) if up_to is None else min(len(want), up_to + 1)), needle


def test_a_one_or_two_letter_search_reads_the_letters_index(pg_url):
    store = PostgresStore.open(pg_url, create=True, queried=QUERIED)
    with store.transaction() as tx:
        tx.put(USERS, "u1", person(1, "zqa", "zqa@example.com", "Zq"))
    count, page = store.search_page(USERS, order_by="login", text="zq", fields=USER_SEARCH_PATHS, count_up_to=10)
    assert count == 1 and [doc["login"] for doc in page] == ["zqa"]
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # enough rows that an index beats a scan (not through provtui)
        conn.execute(
            "INSERT INTO user_search SELECT 'x' || n, 'x' || n, 'active', 'x' || n || '@example.com' FROM generate_series(1, 100000) AS n"
        )
        conn.execute("ANALYZE user_search")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT key, login FROM user_search WHERE grams @@ 'zq'::tsquery AND search LIKE '%zq%' LIMIT 10001"
            )
        )
        grams = conn.execute("SELECT grams::text FROM user_search WHERE key = 'u1'").fetchone()[0]
    assert "user_search_grams" in plan, plan
    assert "'zq'" in grams and "'@e'" in grams and "\x01" not in grams  # letters and pairs, none across two fields


def test_the_search_rows_are_warmed_by_pg_prewarm_where_it_is_made_else_read_in_order(people_store, pg_url):
    """warm_search (a console does it as it opens): pg_prewarm reads user_search and its indexes into the buffers
    (migration 9 makes the extension where it may: the tests' role is a superuser); without it, the table is read."""
    with people_store.transaction() as tx:
        for n in range(50):
            tx.put(USERS, f"w{n}", person(n, f"warm{n}", f"warm{n}@example.com", "W"))
    how, blocks = people_store.warm_search()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        relations = conn.execute(
            "SELECT sum(pg_relation_size(c.oid)) / current_setting('block_size')::int FROM pg_class c WHERE c.relname = 'user_search'"
            " OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'user_search'::regclass)"
        ).fetchone()[0]
        assert (how, blocks) == ("pg_prewarm", relations) and blocks > 0
        conn.execute("DROP EXTENSION pg_prewarm")
        try:
            assert people_store.warm_search() == ("read", people_store.count(USERS))
        finally:
            conn.execute("CREATE EXTENSION pg_prewarm")
