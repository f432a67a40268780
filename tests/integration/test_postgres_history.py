"""A person's history on PostgreSQL (#19): read through the database's index of whom each audit event concerns
(provtui_audit_subjects), never the whole trail, and the same events HistoryIndex gives from reading it."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provtui.model.audit_trail import account_key
from provtui.model.history_index import HistoryIndex
from provtui.model.history_query import newest_about
from provtui.service import Service
from provtui.store.postgres_store import PostgresStore

LOGINS = ["ada", "Ada2", "bob", "straße", "ÖZ", "cy"]
APPS = ["Wiki", "Chat"]
REMOTE_IDS = ["abc-1", "Z 9/x", "def"]


def user_event(action: str, target: str, before=None, after=None) -> dict:
    return {"actor": "admin", "action": action, "target": target, "before": before, "after": after}


def events_strategy():
    login = st.sampled_from(LOGINS)
    rename = st.tuples(login, login).map(lambda p: user_event("user.update", p[0], {"login": p[0]}, {"login": p[1]}))
    about = st.tuples(st.sampled_from(["user.create", "user.suspend", "account.link"]), login).map(lambda p: user_event(*p))
    member = st.tuples(st.sampled_from(["group.add-member", "group.remove-member"]), st.lists(login, max_size=3)).map(
        lambda p: user_event(p[0], "eng", None, {"users": p[1]})
    )
    assign = login.map(lambda who: user_event("app.assign", "Wiki", None, {"subject": f"user:{who}"}))
    task = login.map(lambda who: user_event("task.create", "Manual", None, {"user": who}))
    call = st.tuples(st.sampled_from(APPS), st.sampled_from(REMOTE_IDS), st.booleans()).map(
        lambda p: {
            "actor": "engine",
            "action": "downstream.call",
            "target": p[0],
            "after": {
                "method": "PATCH",
                "path": "/Users/" + (p[1].replace(" ", "%20").replace("/", "%2F") if p[2] else p[1]),
                "status": 200,
            },
        }
    )
    other = st.just(user_event("group.create", "ops"))
    return st.lists(st.one_of(rename, about, member, assign, task, call, other), min_size=1, max_size=40)


@pytest.fixture
def trail_store(pg_url):
    store = PostgresStore.open(pg_url, create=True)
    yield store
    store.close()


def write(store: PostgresStore, events: list[dict]) -> None:
    for event in events:  # a commit each, as the service makes them
        with store.transaction() as tx:
            tx.audit(event)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy(), limit=st.integers(1, 12))
def test_the_indexed_history_gives_what_the_history_index_gives(trail_store, events, limit):
    with trail_store._conn.transaction():  # each example on an empty trail
        trail_store._conn.execute("DELETE FROM audit")
    write(trail_store, events)
    index = HistoryIndex(trail_store)
    for login in LOGINS:
        for accounts in ([], [(app, rid) for app in APPS for rid in REMOTE_IDS[:2]]):
            expected = index.newest([login.casefold(), *(account_key(app, rid) for app, rid in accounts)], limit)
            assert newest_about(trail_store, login, accounts, limit) == expected, (login, accounts)


def test_a_history_is_read_by_its_index_not_by_reading_the_trail(pg_url, monkeypatch):
    service = Service.init(pg_url, actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    for n in range(30):
        service.create_user(f"u{n}", f"u{n}@example.com", "U", "N")
    service.update_user("ada", {"login": "ada2"})
    reader = Service.open(pg_url, actor="admin")

    def whole_trail(*args, **kwargs):
        raise AssertionError("the whole trail was read")

    monkeypatch.setattr(PostgresStore, "audit_file_tail", whole_trail)
    reader.prepare_history()
    assert [e["action"] for e in reader.user_history("ada2")] == ["user.update", "user.create"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # (a trail this short is cheaper to scan: what matters is that the index fits)
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT pos FROM audit WHERE provtui_audit_subjects(event) && ARRAY['ada2'] ORDER BY pos DESC LIMIT 10"
            ).fetchall()
        )
    assert "audit_by_subject" in plan, plan
