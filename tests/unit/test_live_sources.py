"""Live sources' pure parts (#21): a gone person in the plan, the syncrepl consumer's batches, DirSync's names,
a session's state (its worst stream's)."""

from __future__ import annotations

import pytest

from provtui.connectors.ldap.dirsync import extended_dn, naming_context
from provtui.connectors.ldap.syncrepl import LiveBatch, _consumer_class
from provtui.domain.import_plan import plan_import
from provtui.domain.import_rows import Intent, Row

SOURCE = "corp"


def user(uid: str, login: str, state: str = "active", source: str = SOURCE) -> dict:
    profile = {"login": login, "email": f"{login}@example.com", "firstName": "Ada", "lastName": "Lovelace", "displayName": "Ada Lovelace"}
    return {"id": uid, "login": login, "state": state, "source": source, "profile": profile}


def test_a_gone_person_is_deactivated_as_a_full_run_deactivates_the_missing():
    users = {"u1": user("u1", "ada"), "u2": user("u2", "bob"), "u3": user("u3", "cy", source="hr")}
    plan = plan_import([], users, source=SOURCE, gone=["ADA", "cy", "nobody"])
    [action] = plan.actions  # cy is another source's: a directory cannot deprovision them
    assert (action.user_id, action.outcomes, action.reason) == ("u1", ("deactivated",), "deleted from the source")
    assert plan.deactivations == 1 and plan.refused is None


def test_a_gone_person_a_row_of_the_same_read_names_stays():
    users = {"u1": user("u1", "ada")}
    row = Row(1, "ada", {"login": "ada", "email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}, Intent.ACTIVE)
    plan = plan_import([row], users, source=SOURCE, gone=["ada"])
    assert not any("deactivated" in a.outcomes for a in plan.actions)


def test_an_already_deprovisioned_person_gone_again_is_nothing_to_do():
    plan = plan_import([], {"u1": user("u1", "ada", state="deprovisioned")}, source=SOURCE, gone=["ada"])
    assert plan.actions == ()


ldap = pytest.importorskip("ldap")


class Recorder:
    def __init__(self) -> None:
        self.batches: list[LiveBatch] = []
        self.cookie: str | None = None
        self.stream = "users"


def consumer(full: bool) -> tuple[object, Recorder]:
    owner = Recorder()
    made = _consumer_class(ldap)("ldap://127.0.0.1:1")  # never connected: only its callbacks are called
    made.pending = LiveBatch("users", refreshing=True, full=full)
    made.pending_present = False
    made.deliver, made.on_live, made.stream_owner = owner.batches.append, lambda: None, owner
    return made, owner


def test_the_first_refresh_is_one_full_batch_ending_at_its_cookie():
    made, owner = consumer(full=True)
    made.syncrepl_entry("uid=a,ou=p", {"uid": [b"a"]}, "A-1")
    made.syncrepl_present(["A-1"])  # python-ldap presents each entry of a refresh
    made.syncrepl_entry("uid=b,ou=p", {"uid": [b"b"]}, "B-2")
    made.syncrepl_present(["B-2"])
    made.syncrepl_present(None, refreshDeletes=True)  # the refresh ended
    made.syncrepl_set_cookie("rid=000,csn=1")
    made.syncrepl_refreshdone()
    [batch] = owner.batches
    assert batch.full and batch.present_done and batch.presented == {"a-1", "b-2"} and len(batch.changed) == 2
    assert batch.cookie == "rid=000,csn=1" and owner.cookie == "rid=000,csn=1" and batch.received > 0


def test_persisted_changes_are_a_batch_each_and_an_empty_cookie_is_no_batch():
    made, owner = consumer(full=False)
    made.syncrepl_set_cookie("c0")  # a refresh that found nothing new: the cookie moves, nothing to apply
    made.syncrepl_refreshdone()
    made.syncrepl_entry("uid=a,ou=p", {"uid": [b"a"]}, "A-1")
    made.syncrepl_set_cookie("c1")
    made.syncrepl_delete(["B-2"])
    made.syncrepl_set_cookie("c2")
    assert [(b.cookie, len(b.changed), b.deleted, b.refreshing, b.present_done) for b in owner.batches] == [
        ("c1", 1, set(), False, False),
        ("c2", 0, {"b-2"}, False, False),
    ]
    assert owner.cookie == "c2"


def test_a_present_phase_after_a_restart_says_who_is_still_there():
    made, owner = consumer(full=False)
    made.syncrepl_present(["A-1", "C-3"])
    made.syncrepl_present(None, refreshDeletes=False)
    made.syncrepl_set_cookie("c9")
    [batch] = owner.batches
    assert batch.present_done and batch.presented == {"a-1", "c-3"} and batch.refreshing


def test_a_failed_delivery_keeps_the_cookie_where_it_was():
    made, owner = consumer(full=False)
    made.stream_owner.cookie = "c0"

    def refuse(batch: LiveBatch) -> None:
        raise RuntimeError("held")

    made.deliver = refuse
    made.syncrepl_entry("uid=a,ou=p", {}, "A-1")
    with pytest.raises(RuntimeError):
        made.syncrepl_set_cookie("c1")
    assert owner.cookie == "c0"


def test_dirsync_names():
    assert naming_context("OU=People,OU=Corp,DC=example,DC=test") == "DC=example,DC=test"
    assert naming_context("ou=x\\,dc=y,dc=z") == "dc=z"
    guid = "d7e1a31f-e578-4bf6-9687-dcd393f0e1cf"
    assert extended_dn(f"<GUID={guid.upper()}>;<SID=S-1-5-21-1>;CN=Bob B,OU=live,DC=example,DC=test") == (
        guid,
        "CN=Bob B,OU=live,DC=example,DC=test",
    )
    assert extended_dn("CN=plain,DC=x") == (None, "CN=plain,DC=x")
