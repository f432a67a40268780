"""Reads by query on PostgreSQL (#19): a console's or a CLI's process reads the tables that grow with the
directory (provtui.model.schema.QUERIED) from the database and keeps only what it read lately; a worker holds
them; an older store's schema is upgraded at open."""

from __future__ import annotations

import orjson
import psycopg
from psycopg.types.json import Jsonb

from provtui.compose import build_console, build_engine
from provtui.model.schema import ACCOUNTS, DIRTY, MEMBERS, QUERIED, USERS
from provtui.service import Service
from provtui.store import queried as queried_module
from provtui.store.postgres_schema import MIGRATIONS
from provtui.store.postgres_store import PostgresStore


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


def test_a_store_of_the_first_schema_is_upgraded_when_opened(pg_url, monkeypatch):
    """A store as the first PostgreSQL provtui left it (schema 1: a commit's ops in one jsonb value, no
    indexes for queries): opening it applies the rest, its commits' ops moved a row each."""
    from provtui.store import postgres_schema

    monkeypatch.setattr(postgres_schema, "MIGRATIONS", MIGRATIONS[:1])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        postgres_schema.create_schema(conn, pg_url)
        user = {"id": "u1", "login": "ada", "state": "active", "source": "provtui", "profile": {"login": "ada", "email": "ada@example.com"}}
        ops = [["put", "users", "u1", user], ["put", "meta", "store", {"created": "2026-12-01T00:00:00+00:00"}]]
        conn.execute("INSERT INTO docs VALUES ('users', 'u1', %s), ('meta', 'store', %s)", (Jsonb(user), Jsonb(ops[1][3])))
        conn.execute("INSERT INTO commits VALUES (1, '2026-12-01T00:00:00+00:00', %s)", (Jsonb(ops),))
        conn.execute("UPDATE head SET seq = 1")
    monkeypatch.undo()
    store = PostgresStore.open(pg_url, queried=QUERIED)
    assert store.search_page(USERS, order_by="login", text="ada", fields=(("profile", "login"),))[0] == 1
    with psycopg.connect(pg_url, autocommit=True) as conn:
        version = conn.execute("SELECT max(version) FROM provtui_schema").fetchone()[0]
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'docs'")}
        moved = conn.execute("SELECT n, op FROM commit_ops WHERE seq = 1 ORDER BY n").fetchall()
    assert version == len(MIGRATIONS) and {"docs_by_login", "docs_by_user"} <= indexes
    assert [op for _, op in moved] == ops
    assert store.count(USERS) == 1 and store.index_damage() == []  # the counts start from the rows there
    store.close()


def test_a_tables_count_is_one_row_kept_by_every_commit_and_checked(pg_url, capsys):
    """A whole table's count is read from table_counts (kept in each commit's transaction), not counted; a
    row written around provtui makes the count wrong, and `store check` names it rather than mend it."""
    from provtui.cli.main import main

    def run_cli(*args: str) -> tuple[int, str]:
        code = main(list(args))
        return code, capsys.readouterr().out

    service = org(pg_url, users=6)
    reader = Service.open(pg_url, actor="admin")
    assert reader.store.queried(USERS) and reader.user_count() == 6 and reader.pending_work() == 3
    service.create_user("zed", "zed@example.com", "Zed", "Z")
    service.remove_members("eng", ["user000"])
    other = Service.open(pg_url, actor="admin")
    assert other.user_count() == 7 and other.pending_work() == 3
    with psycopg.connect(pg_url, autocommit=True) as conn:
        counted = dict(conn.execute("SELECT tbl, n FROM table_counts").fetchall())
        held = dict(conn.execute("SELECT tbl, count(*) FROM docs GROUP BY tbl").fetchall())
        assert counted == held
        conn.execute("DELETE FROM docs WHERE tbl = 'users' AND key = (SELECT min(key) FROM docs WHERE tbl = 'users')")
    code, out = run_cli("--store", pg_url, "store", "check", "--json")
    assert code == 5, out
    report = orjson.loads(out)
    assert not report["intact"] and [d["file"] for d in report["damage"]] == ["table_counts", "user_search"]
    assert "users: counted 7 rows, holds 6" in report["damage"][0]["reason"]
    assert "1 rows differ from the people's documents" in report["damage"][1]["reason"]
    code, out = run_cli("--store", pg_url, "store", "check")
    assert code == 5 and "damaged: table_counts: users" in out and "PostgreSQL's own tools" in out


def test_a_page_and_a_search_use_the_indexes(pg_url):
    """The plans PostgreSQL makes for the directory's page and search, built as the store builds them: they read
    user_search's login index and its trigram index, not the documents."""
    org(pg_url, users=3)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # enough rows that an index beats a scan (not through provtui)
        conn.execute(
            "INSERT INTO user_search SELECT 'x' || n, 'x' || n, 'active', 'x' || n || '@example.com' FROM generate_series(1, 100000) AS n"
        )
        conn.execute("ANALYZE user_search")
        conn.execute("SET enable_seqscan = off")  # (at this size a scan may still cost less: what matters is that the index fits)
        queries = (  # as provtui.store.postgres_search reads it: a page of everyone; every match of a word, up to a cap
            "SELECT key, login FROM user_search WHERE TRUE ORDER BY login LIMIT 5",
            "SELECT key, login FROM user_search WHERE search LIKE '%user001%' LIMIT 10001",
        )
        plans = ["\n".join(row[0] for row in conn.execute("EXPLAIN " + query).fetchall()) for query in queries]
    assert "user_search_by_login" in plans[0], plans[0]
    assert "user_search_text" in plans[1], plans[1]


def test_a_big_change_holds_the_tables_it_would_otherwise_read_one_by_one(pg_url, monkeypatch):
    from provtui.store import postgres_store

    monkeypatch.setattr(postgres_store, "READS_BEFORE_HOLDING", 20)
    org(pg_url, users=40)
    service = Service.open(pg_url, actor="admin")
    service.update_user("user001", {"title": "One"})  # a small change reads by query
    assert service.store.queried(USERS) and service.store.queried(MEMBERS)
    service.create_group("all")
    service.add_members("all", [f"user{n:03d}" for n in range(40)])  # forty people's groups, apps and accounts
    assert not service.store.queried(USERS) and not service.store.queried(MEMBERS)
    assert service.group_view("all")["members"] == 40
    other = Service.open(pg_url, actor="admin")  # what it committed is whole
    assert other.group_view("all")["members"] == 40 and other.store.queried(MEMBERS)


def test_every_field_the_read_model_looks_up_is_indexed():
    from provtui.model.schema import INDEXES
    from provtui.store.postgres_schema import LOOKUP_FIELDS

    assert {field for _, field in INDEXES} <= set(LOOKUP_FIELDS)


def test_a_console_on_a_shared_store_leaves_the_trail_unread_until_a_history_is_shown(pg_url):
    org(pg_url, users=3)
    service = Service.open(pg_url, actor="admin")
    service.prepare_history()  # the console's warm-up after its first frame
    assert service.directory._history is None
    assert [e["action"] for e in service.user_history("user001")][-1] == "user.create"


async def test_a_console_on_a_shared_store_lists_the_first_rows_and_narrows_as_one_types(pg_url, monkeypatch):
    from provtui.tui.app import build_app
    from provtui.tui.widgets.user_table import UserTable
    from tests.helpers.console import NARROW, screen_text, settle

    monkeypatch.setattr("provtui.tui.screens.directory.QUERIED_ROWS", 5)
    monkeypatch.setattr("provtui.tui.screens.directory.FIRST_PAGE", 3)
    org(pg_url, users=12)
    app = build_app(Service.open(pg_url, actor="admin"), label="pg")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        assert [row["login"] for row in app.screen.query_one(UserTable).rows] == [f"user{n:03d}" for n in range(5)]
        assert "12" in screen_text(app)  # how many there are, though only the first rows are listed
        await pilot.press("slash", *"user011")
        await settle(pilot)
        assert [row["login"] for row in app.screen.query_one(UserTable).rows] == ["user011"]
        assert app.service.store.queried(USERS)  # the console never read the people whole


async def test_a_console_reading_by_query_counts_matches_up_to_a_cap(pg_url, monkeypatch):
    """Counting a million matches reads a million rows: past QUERIED_COUNT the console says "N+", and says
    how many people there are from the table's count."""
    from provtui.tui.app import build_app
    from provtui.tui.screens import directory
    from tests.helpers.console import NARROW, settle

    monkeypatch.setattr(directory, "QUERIED_COUNT", 12)
    org(pg_url, users=30)
    app = build_app(Service.open(pg_url, actor="admin"), label="pg")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        assert app.reads_by_query and str(app.screen._found).startswith("12+ of 30 users ·")
        await pilot.press("slash", *"first2")
        await settle(pilot)
        assert str(app.screen._found).startswith("11 of 30 users matching “first2”")  # First2, First20..First29: under the cap, exact


async def test_a_console_reading_by_query_warms_the_search_rows_once_its_first_rows_show(pg_url, monkeypatch):
    """The search rows are brought into the database's memory once, after the first rows show, off the
    console's thread (Service.warm_search: postgres_search.warm_search_rows); typing does not warm again."""
    import threading

    from provtui.tui.app import build_app
    from tests.helpers.console import NARROW, settle

    org(pg_url, users=5)
    service = Service.open(pg_url, actor="admin")
    warmed: list[tuple[str, tuple]] = []
    done = threading.Event()
    real = service.warm_search

    def warm():
        warmed.append((threading.current_thread().name, real()))
        done.set()

    monkeypatch.setattr(service, "warm_search", warm)
    app = build_app(service, label="pg")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        assert done.wait(10)
        await pilot.press("slash", *"user00")
        await settle(pilot)
    assert [(name, how) for name, (how, _) in warmed] == [("warm-search", "pg_prewarm")]
