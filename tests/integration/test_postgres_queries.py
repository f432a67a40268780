"""Reads by query on PostgreSQL (#19): a console's or a CLI's process reads the tables that grow with the
directory (provtui.model.schema.QUERIED) from the database and keeps only what it read lately; a worker holds
them; an older store's schema is upgraded at open."""

from __future__ import annotations

import psycopg
from psycopg import sql

from provtui.compose import build_console, build_engine
from provtui.domain.users import SEARCH_FIELDS
from provtui.model.schema import ACCOUNTS, DIRTY, MEMBERS, QUERIED, USERS
from provtui.service import Service
from provtui.store import queried as queried_module
from provtui.store.postgres_schema import MIGRATIONS, order_expression, search_expression


def org(url: str, users: int = 30) -> Service:
    service = Service.init(url, actor="admin")
    service.create_group("eng")
    service.create_app("Slack", scim_url="http://127.0.0.1:9/v2", token_env="PROVTUI_NOWHERE")
    service.assign("Slack", group="eng")
    for n in range(users):
        service.create_user(f"user{n:03d}", f"user{n:03d}@example.com", f"First{n}", f"Last{n}", activate=True)
    service.add_members("eng", [f"user{n:03d}" for n in range(0, users, 2)])
    return service


def test_the_consoles_reads_leave_the_big_tables_in_the_database(pg_url, monkeypatch):
    monkeypatch.setattr(queried_module, "CACHED_DOCS", 8)
    org(pg_url)
    service = Service.open(pg_url, actor="admin")  # another process, opened as a console or a CLI opens it
    total, page = service.list_users("", limit=5)
    assert total == 30 and [u["login"] for u in page] == [f"user{n:03d}" for n in range(5)]
    assert service.list_users("first1", limit=3)[0] == 11  # First1, First10..First19
    assert service.list_users("", state="active", limit=0)[0] == 30
    assert service.user_count() == 30 and service.pending_work() == 15
    assert [a["accounts"] for a in service.list_apps()] == [0] and service.list_apps()[0]["queued"] == 15
    view = service.user_view("user004")
    assert view["login"] == "user004" and view["groups"] == ["eng"]
    group = service.group_view("eng", limit=5)
    assert group["members"] == 15 and [u["login"] for u in group["member_page"]] == [f"user{n:03d}" for n in range(0, 10, 2)]
    for table in QUERIED:
        assert service.store.queried(table), table  # none of them was read whole
    assert service.store._queried[USERS].cached() <= 8  # what it read lately, bounded


def test_another_process_commit_is_read_at_once_and_a_page_stays_consistent(pg_url):
    writer = org(pg_url, users=4)
    reader = Service.open(pg_url, actor="admin")
    assert reader.user_view("user001")["profile"].get("title") is None
    writer.update_user("user001", {"title": "Engineer"})
    reader.store.refresh()  # (what the console does on the commit's notification)
    assert reader.user_view("user001")["profile"]["title"] == "Engineer"
    writer.create_user("aaron", "aaron@example.com", "Aaron", "A", activate=True)
    assert reader.list_users("", limit=1)[1][0]["login"] == "aaron"  # the database answers, whatever this process saw
    assert reader.store.queried(USERS)


def test_a_worker_holds_what_it_plans_from(pg_url):
    service = org(pg_url, users=4)
    engine = build_engine(Service.open(pg_url, actor="admin"))
    for table in (USERS, MEMBERS, ACCOUNTS, DIRTY):
        assert not engine.store.queried(table)
    assert len(engine.store.all(DIRTY)) == service.pending_work() == 2


def test_a_console_on_a_shared_store_runs_no_engine_of_its_own(pg_url, tmp_path):
    org(pg_url, users=2)
    assert build_console(Service.open(pg_url, actor="admin")).engine is None  # `provtui worker`s provision it
    embedded = Service.init(tmp_path / "store", actor="admin")
    assert build_console(embedded).engine is not None


def test_a_store_of_an_older_schema_is_upgraded_when_opened(pg_url):
    org(pg_url, users=3)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as provtui before reads by query left it
        conn.execute("DROP INDEX docs_fields, docs_users_by_login, docs_users_search")
        conn.execute("DELETE FROM provtui_schema WHERE version > 1")
    service = Service.open(pg_url, actor="admin")
    assert service.list_users("user00", limit=10)[0] == 3
    with psycopg.connect(pg_url, autocommit=True) as conn:
        version = conn.execute("SELECT max(version) FROM provtui_schema").fetchone()[0]
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'docs'")}
    assert version == len(MIGRATIONS) and {"docs_fields", "docs_users_by_login", "docs_users_search"} <= indexes


def test_a_page_and_a_search_use_the_indexes(pg_url):
    """The plans PostgreSQL makes for a page and a search, built as the store builds them: they read the
    login index and the trigram index, not the table."""
    org(pg_url, users=3)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # enough rows that an index beats a scan (not through provtui)
        conn.execute(
            "INSERT INTO docs SELECT 'users', 'x' || n, jsonb_build_object('login', 'x' || n, 'profile', "
            "jsonb_build_object('login', 'x' || n, 'email', 'x' || n || '@example.com')) FROM generate_series(1, 20000) AS n"
        )
        conn.execute("ANALYZE docs")
        conn.execute("SET enable_seqscan = off")  # (at this size a scan may still cost less: what matters is that the index fits)
        page = sql.SQL("EXPLAIN SELECT key FROM docs WHERE tbl = 'users' ORDER BY {} LIMIT 5").format(order_expression("login"))
        search = sql.SQL("EXPLAIN SELECT key FROM docs WHERE tbl = 'users' AND {} LIKE '%user001%'").format(
            search_expression(tuple(("profile", name) for name in SEARCH_FIELDS))
        )
        plans = ["\n".join(row[0] for row in conn.execute(query).fetchall()) for query in (page, search)]
    assert "docs_users_by_login" in plans[0], plans[0]
    assert "docs_users_search" in plans[1], plans[1]
