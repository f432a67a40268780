"""The store contract (provtui.store.contract), proved against every backend by one suite: the journal store,\nthe in-memory one, and PostgreSQL (a real server the tests start)."""

from __future__ import annotations

import pytest

from provtui.model.audit_trail import verify_chain
from provtui.service import Service
from provtui.store import Store
from provtui.store.contract import StoreBackend, StoreTransaction
from provtui.store.memory_store import MemoryStore

BACKENDS = ["journal", "memory", "postgres", "postgres-queried"]
QUERIED = ("t", "users")  # postgres-queried reads these by query (provtui.store.queried): the suite's tables


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> StoreBackend:
    if request.param == "journal":
        return Store.open(tmp_path / "store", create=True)
    if request.param.startswith("postgres"):  # a fresh database on the session's PostgreSQL (tests/conftest.py)
        from provtui.store.postgres_store import PostgresStore

        queried = QUERIED if request.param == "postgres-queried" else ()
        return PostgresStore.open(request.getfixturevalue("pg_url"), create=True, queried=queried)
    return MemoryStore()


def put(store, table, key, doc, event=None):
    with store.transaction() as tx:
        tx.put(table, key, doc)
        tx.audit(event or {"action": "put", "target": key})


def test_implements_the_protocols(store):
    assert isinstance(store, StoreBackend)
    with store.transaction() as tx:
        assert isinstance(tx, StoreTransaction)


def test_commit_then_read(store):
    put(store, "t", "a", {"x": 1})
    put(store, "t", "b", {"x": 2})
    with store.transaction() as tx:
        tx.delete("t", "a")
    assert store.get("t", "a") is None and store.get("t", "b") == {"x": 2}
    assert store.all("t") == {"b": {"x": 2}} and store.seq == 3


def test_a_block_that_raises_writes_nothing(store):
    put(store, "t", "a", {"x": 1})
    seq, head, events = store.seq, store.audit_head, store.audit_events()
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put("t", "a", {"x": 99})
            tx.put("t", "z", {"x": 0})
            tx.audit({"action": "never"})
            raise RuntimeError("refused")
    assert store.get("t", "a") == {"x": 1} and store.get("t", "z") is None
    assert (store.seq, store.audit_head, store.audit_events()) == (seq, head, events)


def test_an_empty_transaction_commits_nothing(store):
    with store.transaction():
        pass
    assert store.seq == 0 and store.audit_events() == []


def test_a_transaction_reads_its_own_writes_through_indexes(store):
    store.add_index("t", "colour")
    put(store, "t", "a", {"colour": "red"})
    with store.transaction() as tx:
        tx.put("t", "b", {"colour": "red"})
        tx.put("t", "a", {"colour": "blue"})
        assert tx.get("t", "b") == {"colour": "red"}
        assert tx.lookup("t", "colour", "red") == {"b"} and tx.lookup("t", "colour", "blue") == {"a"}
        tx.delete("t", "b")
        assert tx.lookup("t", "colour", "red") == set() and tx.get("t", "b") is None
    assert store.lookup("t", "colour", "blue") == {"a"} and store.lookup("t", "colour", "red") == set()


def test_an_index_added_late_covers_what_is_there(store):
    put(store, "t", "a", {"colour": "red"})
    store.add_index("t", "colour")
    assert store.lookup("t", "colour", "red") == {"a"}


def test_listeners_hear_every_applied_write(store):
    heard = []
    store.on_apply(heard.append)
    put(store, "t", "a", {"x": 1})
    with store.transaction() as tx:
        tx.delete("t", "a")
    assert heard == [[["put", "t", "a", {"x": 1}]], [["del", "t", "a"]]]


def test_the_audit_trail_is_chained_and_reads_both_ways(store):
    for n in range(5):
        put(store, "t", f"k{n}", {"n": n}, {"actor": "alice", "action": "put", "target": f"k{n}"})
    store.compact()
    put(store, "t", "k5", {"n": 5})
    events = store.audit_events()
    assert [e["target"] for e in events] == [f"k{n}" for n in range(6)]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    report = verify_chain(events, expected_head=store.audit_head)
    assert report.ok and report.head == store.audit_head
    assert list(store.audit_events_newest_first()) == events[::-1]


def test_trail_positions_read_back_the_same_events(store):
    for n in range(3):
        put(store, "t", f"k{n}", {"n": n})
    store.compact()
    put(store, "t", "k3", {"n": 3})
    tail, end = store.audit_file_tail(0)
    from_positions = [store.audit_file_event(position) for position, _ in tail]
    later = store.journal_audit_events(from_positions[-1] if from_positions else None)
    assert from_positions + later == store.audit_events()
    assert store.audit_file_tail(end)[0] == []


def test_reading_gives_a_consistent_view(store):
    put(store, "t", "a", {"x": 1})
    with store.reading():
        assert store.get("t", "a") == {"x": 1}


def test_the_service_runs_on_every_backend(store):
    service = Service(store, actor="admin")
    from provtui.model.schema import ADMINS

    with store.transaction() as tx:
        tx.put(ADMINS, "admin", {"user": "admin", "grants": [{"role": "super-admin", "apps": [], "groups": []}]})
    service.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    service.create_group("eng")
    service.add_members("eng", ["ada"])
    assert service.user_view("ada")["groups"] == ["eng"]
    assert [e["action"] for e in service.audit()][-3:] == ["user.create", "group.create", "group.add-member"]
    assert service.audit_verify().ok


USERS = {
    "u1": {"id": "u1", "login": "zoe", "state": "active", "profile": {"login": "zoe", "email": "zoe@example.com", "lastName": "Öström"}},
    "u2": {"id": "u2", "login": "adam", "state": "staged", "profile": {"login": "adam", "email": "adam@example.com", "lastName": "Smith"}},
    "u3": {"id": "u3", "login": "Émile", "state": "active", "profile": {"login": "Émile", "email": "e%_x@example.com"}},
    "u4": {"id": "u4", "login": "bea", "state": "active", "profile": {"login": "bea", "email": "bea@example.org", "lastName": "Smithers"}},
}
FIELDS = (("profile", "login"), ("profile", "email"), ("profile", "lastName"))


def users_store(store):
    store.add_index("users", "state")
    with store.transaction() as tx:
        for key, doc in USERS.items():
            tx.put("users", key, doc)
    return store


def logins(page):
    return [doc["login"] for doc in page[1]]


def test_search_page_matches_sorts_and_counts_alike_on_every_backend(store):
    users_store(store)
    everyone = store.search_page("users", order_by="login")
    assert everyone[0] == 4 and logins(everyone) == ["adam", "bea", "zoe", "Émile"]  # code-point order
    assert logins(store.search_page("users", order_by="login", text="smith", fields=FIELDS)) == ["adam", "bea"]
    assert logins(store.search_page("users", order_by="login", text="öst", fields=FIELDS)) == ["zoe"]  # lowercased, Unicode
    assert logins(store.search_page("users", order_by="login", text="émile", fields=FIELDS)) == ["Émile"]
    assert logins(store.search_page("users", order_by="login", text="%_", fields=FIELDS)) == ["Émile"]  # no wildcards
    assert logins(store.search_page("users", order_by="login", text="_", fields=FIELDS)) == ["Émile"]
    assert store.search_page("users", order_by="login", text="@example.", fields=FIELDS, equals={"state": "active"})[0] == 3
    assert logins(store.search_page("users", order_by="login", keys={"u1", "u4", "nobody"})) == ["bea", "zoe"]
    page = store.search_page("users", order_by="login", offset=1, limit=2)
    assert page[0] == 4 and logins(page) == ["bea", "zoe"]
    assert store.search_page("users", order_by="login", offset=10, limit=2) == (4, [])  # past the end: still counted
    assert store.search_page("users", order_by="login", text="nobody", fields=FIELDS) == (0, [])


def test_the_directorys_search_filters_pages_and_follows_commits_alike_on_every_backend(store):
    """The search the directory makes (its fields, login order, a state, among some): on PostgreSQL the people's
    search rows (user_search) answer it, kept by each commit."""
    from provtui.model.directory import USER_SEARCH_PATHS as DIRECTORY

    users_store(store)
    assert logins(store.search_page("users", order_by="login", text="smith", fields=DIRECTORY)) == ["adam", "bea"]
    assert logins(store.search_page("users", order_by="login", text="example.", fields=DIRECTORY, equals={"state": "active"})) == [
        "bea", "zoe", "Émile"
    ]  # fmt: skip
    assert logins(store.search_page("users", order_by="login", text="e", fields=DIRECTORY, keys={"u1", "u4"})) == ["bea", "zoe"]
    assert store.search_page("users", order_by="login", text="e", fields=DIRECTORY, offset=1, limit=1)[0] == 4
    with store.transaction() as tx:
        tx.put("users", "u1", {**USERS["u1"], "login": "zed", "profile": {"login": "zed", "email": "zed@example.com"}})
        tx.delete("users", "u3")
    assert logins(store.search_page("users", order_by="login", text="", fields=DIRECTORY)) == ["adam", "bea", "zed"]
    assert store.search_page("users", order_by="login", text="öström", fields=DIRECTORY) == (0, [])  # zoe is zed now
    assert logins(store.search_page("users", order_by="login", text="ZED@", fields=DIRECTORY)) == []  # (the caller lowercases)
    assert logins(store.search_page("users", order_by="login", text="zed@", fields=DIRECTORY)) == ["zed"]


def test_a_count_up_to_a_cap_stops_one_past_it_on_every_backend(store):
    users_store(store)
    assert store.search_page("users", order_by="login", limit=1, count_up_to=2)[0] == 3  # four: "more than two"
    assert store.search_page("users", order_by="login", text="smith", fields=FIELDS, limit=1, count_up_to=2)[0] == 2  # exact
    assert store.search_page("users", order_by="login", text="@", fields=FIELDS, limit=1, count_up_to=1)[0] == 2
    assert store.search_page("users", order_by="login", text="@", fields=FIELDS, limit=1)[0] == 4  # no cap: all of them


def test_a_tables_count_follows_creates_deletes_and_rewrites_in_any_mix(store):
    users_store(store)
    with store.transaction() as tx:  # a rewrite, a create then delete, a delete then create, a delete: one commit
        tx.put("users", "u1", {**USERS["u1"], "state": "suspended"})
        tx.put("users", "u9", {"id": "u9", "login": "ned", "state": "active", "profile": {"login": "ned"}})
        tx.delete("users", "u9")
        tx.delete("users", "u2")
        tx.put("users", "u2", USERS["u2"])
        tx.delete("users", "u3")
        tx.put("t", "a", {"n": 1})
    assert store.count("users") == 3 and store.count("t") == 1
    with store.transaction() as tx:
        tx.delete("users", "nobody")  # deleting what is not there counts nothing
        tx.delete("t", "a")
    assert store.count("users") == 3 and store.count("t") == 0
    assert store.search_page("users", order_by="login", limit=1)[0] == 3


def test_count_and_lookup_see_every_commit(store):
    users_store(store)
    assert store.count("users") == 4 and store.count("users", "state", "active") == 3
    assert store.lookup("users", "state", "staged") == {"u2"}
    with store.transaction() as tx:
        tx.put("users", "u2", {**USERS["u2"], "state": "active"})
        tx.delete("users", "u1")
        assert tx.lookup("users", "state", "active") == {"u2", "u3", "u4"}  # the transaction's own writes
    assert store.count("users") == 3 and store.count("users", "state", "active") == 3
    assert store.get("users", "u1") is None and store.get("users", "u2")["state"] == "active"
    assert store.search_page("users", order_by="login", equals={"state": "staged"}) == (0, [])


def test_holding_a_queried_table_reads_it_whole_and_keeps_it_current(store, request):
    users_store(store)
    assert store.queried("users") is (request.node.callspec.params["store"] == "postgres-queried")
    store.get("users", "u1")  # (a queried table keeps what it read; a commit makes it read again)
    put(store, "users", "u1", {**USERS["u1"], "state": "suspended"})
    assert store.get("users", "u1")["state"] == "suspended"
    store.hold("users")
    assert not store.queried("users")
    assert set(store.all("users")) == set(USERS) and store.lookup("users", "state", "suspended") == {"u1"}
    put(store, "users", "u5", {"id": "u5", "login": "cy", "state": "active", "profile": {"login": "cy"}})
    assert store.count("users") == 5 and store.lookup("users", "state", "active") == {"u3", "u4", "u5"}


def test_commits_within_a_deferred_sync_are_each_committed(store):
    with store.deferred_sync():
        for n in range(3):
            with store.transaction() as tx:
                tx.put("users", f"u{n}", {"login": f"p{n}"})
                tx.audit({"action": "put", "target": f"u{n}"})
    assert [store.get("users", f"u{n}") for n in range(3)] == [{"login": f"p{n}"} for n in range(3)]
    assert store.seq >= 3 and [e["target"] for e in store.audit_events()][-3:] == ["u0", "u1", "u2"]
