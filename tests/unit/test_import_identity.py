"""A directory person is the entry's immutable id, not their login (issue #17, 1): a renamed entry is an update of the
same person, whose login changes; a login an entry of another id holds is never taken over."""

from __future__ import annotations

from provtui.domain.import_plan import plan_import
from provtui.domain.import_rows import Intent, Rejection, Row

SOURCE = "corp"


def user(uid: str, login: str, state: str = "active") -> dict:
    profile = {"login": login, "email": f"{login}@example.com", "firstName": "Ada", "lastName": "Lovelace", "displayName": "Ada Lovelace"}
    return {"id": uid, "login": login, "state": state, "source": SOURCE, "profile": profile}


def row(line: int, login: str, entry: str | None, intent: Intent = Intent.ACTIVE, **profile: str) -> Row:
    values = {"login": login, "email": f"{login}@example.com", "firstName": "Ada", "lastName": "Lovelace", **profile}
    return Row(line, login, values, intent, external_id=entry)


def plan(rows, users, identities, **kw):
    return plan_import(rows, {u["id"]: u for u in users}, source=SOURCE, identities=identities, **kw)


def test_a_renamed_entry_updates_the_same_person_and_changes_their_login():
    result = plan([row(1, "user012x", "guid-12")], [user("u12", "user012")], {"guid-12": "user012"}, full=True)
    [action] = result.actions
    assert action.user_id == "u12" and action.login == "user012x"
    assert action.changes["login"] == ("user012", "user012x") and action.outcomes == ("updated",)
    assert not any(a.outcomes == ("deactivated",) for a in result.actions) and not result.rejected


def test_the_same_entry_read_again_changes_nothing():
    result = plan([row(1, "user012", "guid-12")], [user("u12", "user012")], {"guid-12": "user012"}, full=True)
    assert result.actions == () and result.unchanged == 1


def test_a_new_entry_with_a_login_another_entry_holds_is_refused_and_the_holder_kept():
    users = [user("u12", "user012")]
    result = plan([row(1, "user012", "guid-new")], users, {"guid-12": "user012"}, full=True, allow_empty=True)
    assert result.actions == ()
    [rejected] = result.rejected
    assert rejected.column == "login" and "another person of corp (entry guid-12)" in rejected.reason


def test_a_rename_onto_someone_elses_login_is_refused_and_both_are_kept():
    users = [user("u1", "ada"), user("u2", "bob")]
    identities = {"g1": "ada", "g2": "bob"}
    result = plan([row(1, "bob", "g1"), row(2, "bob2", "g2")], users, identities, full=True)
    assert [r.reason for r in result.rejected] == ["ada was renamed to 'bob', the login of another user"]
    assert [(a.user_id, a.login) for a in result.actions] == [("u2", "bob2")]  # bob's own rename goes ahead; nobody deactivated


def test_a_rejected_entry_still_protects_its_person_from_a_full_run():
    users = [user("u1", "ada"), user("u2", "bob")]
    rows = [row(2, "bob", "g2")]
    from provtui.domain.import_rows import ParsedFile

    parsed = ParsedFile(
        rows=tuple(rows),
        rejections=(Rejection(1, "mail", "bad email", frozenset({"ada-renamed", "g1"})),),
        columns={"login": ("uid",)},
        status_column=None,
        key="login",
        login_derived=False,
    )
    result = plan_import(parsed, {u["id"]: u for u in users}, source=SOURCE, full=True, identities={"g1": "ada", "g2": "bob"})
    assert result.actions == ()  # ada's entry was rejected (renamed and broken): she is not deactivated


def test_an_entry_with_no_recorded_id_matches_by_login_as_before():
    result = plan([row(1, "ada", "g1", title="CTO")], [user("u1", "ada")], {}, full=True)
    [action] = result.actions
    assert action.user_id == "u1" and action.changes == {"title": (None, "CTO")}


def test_a_disabled_renamed_entry_deactivates_the_same_person():
    result = plan([row(1, "ada2", "g1", Intent.DEACTIVATED)], [user("u1", "ada")], {"g1": "ada"}, full=True, allow_empty=True)
    [action] = result.actions
    assert action.user_id == "u1" and action.login == "ada2" and "deactivated" in action.outcomes
