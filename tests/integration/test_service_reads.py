"""The service's reads for the console: assignments with values, a group's view, a user's history
(from an index that follows the trail), moving a member in one transaction, and what sources master."""

import asyncio

import pytest

from provtui.compose import build_engine
from provtui.domain.errors import InvalidInput, NotAllowed, NotFound
from provtui.domain.rules import RuleState
from provtui.model.schema import DIRTY, account_key
from provtui.service import Service
from provtui.testing.fault_server import FaultServerProcess

TOKEN_ENV = "PROVTUI_TEST_READS_TOKEN"


@pytest.fixture
def org(store_location):
    """The organisation, on each backend (#19)."""
    return make_org(store_location)


@pytest.fixture
def embedded_org(tmp_path):
    """The same on the embedded store, for what reads its audit file."""
    return make_org(tmp_path / "store")


def make_org(location):
    service = Service.init(location, actor="admin")
    for login in ("ada", "bob", "cy", "dee"):
        service.create_user(login, f"{login}@example.com", login.title(), "T", {"department": "Eng"}, activate=True)
    for group in ("eng", "ops", "sales"):
        service.create_group(group, f"the {group} team")
    service.add_members("eng", ["ada", "bob"])
    service.add_members("ops", ["bob"])
    service.create_app("Wiki", scim_url="http://127.0.0.1:9/v2", token_env=TOKEN_ENV)
    service.create_app("Chat", scim_url="http://127.0.0.1:9/v2", token_env=TOKEN_ENV)
    return service


def snapshot_of(service):
    return {t: dict(rows) for t, rows in service.store.tables.items()}, len(service.audit())


def test_app_assignments_carry_values_priority_and_current_names(org):
    org.assign("Wiki", group="eng", values={"role": "editor"}, priority=2)
    org.assign("Wiki", group="ops", values={"role": "admin", "tier": "1"}, priority=1)
    org.assign("Wiki", login="cy", values={"role": "reader"})
    org.assign("Chat", group="eng")
    org.rename_group("eng", "engineering")
    org.update_user("cy", {"login": "cyd"})
    assert org.app_assignments("Wiki") == [
        {
            "app": "Wiki",
            "kind": "group",
            "name": "engineering",
            "values": {"role": "editor"},
            "priority": 2,
            "created": org.app_assignments("Wiki")[0]["created"],
        },
        {
            "app": "Wiki",
            "kind": "group",
            "name": "ops",
            "values": {"role": "admin", "tier": "1"},
            "priority": 1,
            "created": org.app_assignments("Wiki")[1]["created"],
        },
        {
            "app": "Wiki",
            "kind": "user",
            "name": "cyd",
            "values": {"role": "reader"},
            "priority": None,
            "created": org.app_assignments("Wiki")[2]["created"],
        },
    ]
    assert [(a["app"], a["name"]) for a in org.app_assignments()] == [
        ("Chat", "engineering"),
        ("Wiki", "engineering"),
        ("Wiki", "ops"),
        ("Wiki", "cyd"),
    ]
    with pytest.raises(NotFound):
        org.app_assignments("Nope")


def test_user_view_says_which_path_wins_each_value(org):
    org.assign("Wiki", group="eng", values={"role": "editor", "space": "ENG"}, priority=2)
    org.assign("Wiki", group="ops", values={"role": "admin"}, priority=1)
    wiki = next(a for a in org.user_view("bob")["apps"] if a["app"] == "Wiki")
    assert wiki["values"] == {"role": "admin", "space": "ENG"}
    assert wiki["values_via"] == {"role": "group:ops", "space": "group:eng"}
    org.assign("Wiki", login="bob", values={"space": "OPS"})
    wiki = next(a for a in org.user_view("bob")["apps"] if a["app"] == "Wiki")
    assert wiki["values"] == {"role": "admin", "space": "OPS"} and wiki["values_via"]["space"] == "direct"


def test_group_view_pages_members_with_paths_apps_and_rules(org):
    org.assign("Wiki", group="eng", values={"role": "editor"}, priority=3)
    org.rules().create("eng-by-department", groups=["eng"], expr='user.department == "Eng"', exclude=[])
    org.rules().change("eng-by-department", state=RuleState.ACTIVE)
    view = org.group_view("eng", offset=1, limit=2)
    assert (view["name"], view["kind"], view["description"], view["members"]) == ("eng", "provtui", "the eng team", 4)
    assert [(m["login"], m["via"].split(":")[0]) for m in view["member_page"]] == [("bob", "manual, rule"), ("cy", "rule")]
    assert view["apps"] == [{"app": "Wiki", "values": {"role": "editor"}, "priority": 3}]
    assert [(r["name"], r["state"], r["members"]) for r in view["rules"]] == [("eng-by-department", "active", 4)]
    assert view["pushes"] == []  # no app takes pushed groups
    with pytest.raises(NotFound):
        org.group_view("nope")


def test_group_view_pushes_as_the_engine_left_them(tmp_path, monkeypatch):
    with FaultServerProcess(token="reads-token") as server:
        monkeypatch.setenv(TOKEN_ENV, server.token)
        service = Service.init(tmp_path / "store", actor="admin")
        service.create_app("Wiki", scim_url=server.url, token_env=TOKEN_ENV, push_groups=True)
        for login in ("ada", "bob"):
            service.create_user(login, f"{login}@example.com", login.title(), "L", activate=True)
            service.assign("Wiki", login=login)
        service.create_group("team")
        service.add_members("team", ["ada"])
        service.push_group("team", "Wiki")
        asked = service.group_view("team")["pushes"][0]
        assert (asked["state"], asked["intent"], asked["queued"]) == ("pushing", "pushed", True)  # asked for, not done
        asyncio.run(_run_engine(service))
        pushed = service.group_view("team")["pushes"][0]
        assert (pushed["state"], pushed["queued"], pushed["last_error"]) == ("pushed", False, None) and pushed["remote_id"]
        server.set_faults(bad_request={"method": ["PATCH", "PUT"], "path": "/Groups/{id}", "status": 400, "detail": "this group is locked"})
        service.add_members("team", ["bob"])
        asyncio.run(_run_engine(service))
        failed = service.group_view("team")["pushes"][0]
        assert (failed["state"], failed["intent"]) == ("failed", "pushed") and "locked" in failed["last_error"]


async def _run_engine(service):
    engine = build_engine(service, notify=False)
    try:
        await engine.run_until_idle()
    finally:
        await engine.aclose()


def test_user_history_follows_memberships_renames_and_grows_incrementally(org):
    org.assign("Wiki", login="ada")
    org.move_member("ada", "eng", "sales")
    history = org.user_history("ada")
    assert [e["action"] for e in history[:4]] == ["group.add-member", "group.remove-member", "app.assign", "group.add-member"]
    assert history[-1]["action"] == "user.create"
    org.update_user("ada", {"login": "ada2"})
    org.change_state("ada2", "suspend")
    renamed = org.user_history("ada2", limit=3)
    assert [e["action"] for e in renamed] == ["user.suspend", "user.update", "group.add-member"]
    assert [e["action"] for e in org.user_history("ada2")][2:] == [e["action"] for e in history]
    assert [(e["action"], e["target"]) for e in org.user_history("bob")] == [
        ("group.add-member", "ops"),
        ("group.add-member", "eng"),
        ("user.create", "bob"),
    ]
    # another process's service reads the same answer from the files alone
    other = Service.open(org.location, actor="admin")
    assert other.user_history("ada2") == org.user_history("ada2")
    org.store.compact()  # the journal's events move to audit.jsonl: positions stay, the history reads the same
    assert [e["hash"] for e in org.user_history("ada2")] == [e["hash"] for e in other.user_history("ada2")]
    org.change_state("ada2", "unsuspend")
    assert org.user_history("ada2", limit=1)[0]["action"] == "user.unsuspend"


def test_user_history_reads_only_what_was_appended(embedded_org, monkeypatch):
    org = embedded_org
    org.store.compact()  # the trail so far into audit.jsonl
    org.user_history("ada")  # the index reads it once
    first_end = (org.location / "audit.jsonl").stat().st_size
    reads = []
    original = org.store.audit_file_tail
    monkeypatch.setattr(org.store, "audit_file_tail", lambda offset: reads.append(offset) or original(offset))
    org.change_state("bob", "suspend")
    org.store.compact()
    assert org.user_history("bob", limit=1)[0]["action"] == "user.suspend"
    org.user_history("ada")
    assert reads == [first_end, (org.location / "audit.jsonl").stat().st_size]  # each call from where the last stopped


def test_prepare_history_reads_the_trail_ahead_of_the_first_history(embedded_org, monkeypatch):
    org = embedded_org
    org.store.compact()
    org.prepare_history()  # what the console does in the background after start
    reads = []
    original = org.store.audit_file_tail
    monkeypatch.setattr(org.store, "audit_file_tail", lambda offset: reads.append(offset) or original(offset))
    assert org.user_history("ada")
    assert reads == [(org.location / "audit.jsonl").stat().st_size]  # nothing left to read from the start


def test_move_member_is_one_transaction_audited_and_queues_accounts(org):
    org.assign("Wiki", group="sales")
    org.assign("Chat", group="eng")
    view = org.move_member("ada", "eng", "sales")
    assert view["groups"] == ["sales"]
    moved = [e for e in org.audit() if e["seq"] == org.audit()[-1]["seq"]]
    assert [(e["action"], e["target"], e["after"]["users"]) for e in moved] == [
        ("group.remove-member", "eng", ["ada"]),
        ("group.add-member", "sales", ["ada"]),
    ]
    correlation = moved[0]["correlation"]
    assert moved[1]["correlation"] == correlation
    # both accounts are queued by the move: Wiki to create, Chat to take away
    queued = {app: org.store.get(DIRTY, account_key(org.directory.app(app)["id"], view["id"])) for app in ("Wiki", "Chat")}
    assert {app: entry["correlation"] for app, entry in queued.items()} == {"Wiki": correlation, "Chat": correlation}


def test_move_member_refuses_whole_and_writes_nothing(org):
    org.rules().create("ops-by-department", groups=["ops"], expr='user.department == "Eng"', exclude=[])
    org.rules().change("ops-by-department", state=RuleState.ACTIVE)
    org.grant("desk", "helpdesk", groups=["eng", "ops"])
    desk = Service.open(org.location, actor="desk")
    before = snapshot_of(org)
    with pytest.raises(InvalidInput) as held_by_rule:
        org.move_member("cy", "ops", "sales")
    assert held_by_rule.value.field == "leave" and "rule:" in held_by_rule.value.message
    with pytest.raises(InvalidInput) as not_member:
        org.move_member("cy", "eng", "sales")
    assert not_member.value.field == "leave" and "not a member" in not_member.value.message
    with pytest.raises(InvalidInput) as same:
        org.move_member("ada", "eng", "eng")
    assert same.value.field == "join"
    with pytest.raises(NotAllowed):
        desk.move_member("ada", "eng", "sales")  # sales is outside the desk's groups: eng is not left either
    org.refresh()
    assert snapshot_of(org) == before
    assert desk.move_member("ada", "eng", "ops")["groups"] == ["ops"]  # within the desk's groups


def test_user_view_names_what_each_source_masters(tmp_path):
    service = Service.init(tmp_path / "store", actor="admin")
    header = "Employee ID,First Name,Last Name,Work Email,Department,Title,Status\r\n"
    service.import_csv((header + "1000,Ada,Lovelace,ada@example.com,Eng,Engineer,Active\r\n").encode())
    service.update_user("ada@example.com", {"nickname": "Countess"})
    view = service.user_view("ada@example.com")
    assert view["source"] == "csv"
    # what the file's columns supply; the nickname was set here, so provtui edits it
    assert view["mastered"] == dict.fromkeys(("department", "email", "employeeNumber", "firstName", "lastName", "login", "title"), "csv")
    with pytest.raises(InvalidInput) as refused:  # what update_user refuses is what the map says
        service.update_user("ada@example.com", {"title": "Countess"})
    assert refused.value.field == "title" and "mastered by the source 'csv'" in refused.value.message
    native = service.create_user("bo", "bo@example.com", "Bo", "B")
    assert native["mastered"] == {}


def test_users_are_filtered_by_group_app_and_source_as_well_as_text_and_state(org):
    org.assign("Wiki", group="ops")
    org.assign("Wiki", login="dee")
    org.change_state("dee", "suspend")

    def logins(**filters):
        total, users = org.list_users(**filters)
        assert total == len(users)
        return [u["login"] for u in users]

    assert logins(group="eng") == ["ada", "bob"]
    assert logins(app="Wiki") == ["bob", "dee"]  # through ops, and directly
    assert logins(app="Wiki", state="active") == ["bob"]
    assert logins(group="eng", app="Wiki") == ["bob"]
    assert logins(group="eng", search="ad") == ["ada"]
    assert logins(source="provtui") == ["ada", "bob", "cy", "dee"]
    assert logins(group="eng", where='user.login == "ada"') == ["ada"]
    assert logins(app="Chat") == []
    with pytest.raises(NotFound):
        org.list_users(group="nobody")
    with pytest.raises(InvalidInput, match="--source"):
        org.list_users(source="hr")


def test_user_list_filters_on_the_cli(org, monkeypatch, capsys):
    import json

    from provtui.cli.main import main

    org.assign("Wiki", group="ops")
    monkeypatch.setenv("PROVTUI_STORE", str(org.location))
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "admin")
    assert main(["user", "list", "--app", "Wiki", "--json"]) == 0
    assert [u["login"] for u in json.loads(capsys.readouterr().out)] == ["bob"]
    assert main(["user", "list", "--source", "hr"]) == 2
    assert "--source" in capsys.readouterr().err
