"""The role-by-action matrix, enforced by the service for CLI, console and worker alike."""

import pytest

from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.domain.roles import Action, Grant, Role, Scope, allowed
from provtui.service import Service

ACTORS = ("root-admin", "slack-admin", "eng-admin", "desk", "auditor", "stranger")


@pytest.fixture
def org(tmp_path):
    """Apps Slack and GitHub, groups eng and sales, users ada (eng) and bob (sales); roles granted."""
    service = Service.init(tmp_path / "store", actor="root-admin")
    for login, group in (("ada", "eng"), ("bob", "sales")):
        service.create_user(login, f"{login}@example.com", login.title(), "T", activate=True)
        service.create_group(group)
        service.add_members(group, [login])
    service.create_app("Slack", scim_url="http://127.0.0.1:9/v2", token_env="T", push_groups=True)
    service.create_app("GitHub", scim_url="http://127.0.0.1:9/v2", token_env="T")
    service.create_app("Payroll", manual=True, notify=["it@example.com"])
    service.assign("Slack", group="sales")  # so Slack is "assigned elsewhere" for the eng group admin
    service.grant("slack-admin", "app-admin", apps=["Slack"])
    service.grant("eng-admin", "group-admin", groups=["eng"])
    service.grant("desk", "helpdesk", groups=["eng", "sales"])
    service.grant("auditor", "read-only")
    return tmp_path / "store"


# action -> (what it does, the actors allowed)
MATRIX = {
    "read the directory": (lambda s: s.user_view("ada"), {"root-admin", "slack-admin", "eng-admin", "desk", "auditor"}),
    "list users": (lambda s: s.list_users(""), {"root-admin", "slack-admin", "eng-admin", "desk", "auditor"}),
    "read the audit trail": (lambda s: s.audit(5), {"root-admin", "slack-admin", "eng-admin", "desk", "auditor"}),
    "create a user": (lambda s: s.create_user("cy", "cy@example.com", "C", "Y"), {"root-admin"}),
    "edit a user": (lambda s: s.update_user("ada", {"title": "X"}), {"root-admin"}),
    "deactivate a user": (lambda s: s.change_state("ada", "deactivate"), {"root-admin"}),
    "suspend a user": (lambda s: s.change_state("ada", "suspend"), {"root-admin", "desk"}),
    "password targets": (lambda s: s.password_targets("ada"), {"root-admin", "desk"}),
    "create a group": (lambda s: s.create_group("ops"), {"root-admin"}),
    "rename a group": (lambda s: s.rename_group("eng", "engineering"), {"root-admin"}),
    "add to own group": (lambda s: s.add_members("eng", ["bob"]), {"root-admin", "eng-admin", "desk"}),
    "add to another group": (lambda s: s.add_members("sales", ["ada"]), {"root-admin", "desk"}),
    "create an app": (lambda s: s.create_app("Zoom", manual=True, notify=["x@example.com"]), {"root-admin"}),
    "update own app": (lambda s: s.update_app("Slack", rate=5.0), {"root-admin", "slack-admin"}),
    "update another app": (lambda s: s.update_app("GitHub", rate=5.0), {"root-admin"}),
    "move own app to another endpoint": (lambda s: s.update_app("Slack", scim_url="http://127.0.0.1:8/v2"), {"root-admin"}),
    "point own app at another secret": (lambda s: s.update_app("Slack", token_env="SMTP_PASSWORD"), {"root-admin"}),
    "assign own app to a user": (lambda s: s.assign("Slack", login="ada"), {"root-admin", "slack-admin"}),
    "assign an app given elsewhere to own group": (lambda s: s.assign("Slack", group="eng"), {"root-admin", "slack-admin", "eng-admin"}),
    "assign a new app to own group": (lambda s: s.assign("GitHub", group="eng"), {"root-admin"}),
    "push a group to own app": (lambda s: s.push_group("eng", "Slack"), {"root-admin", "slack-admin"}),
    "retry own app": (lambda s: s.retry(app_name="Slack"), {"root-admin", "slack-admin"}),
    "retry all apps": (lambda s: s.retry(), {"root-admin"}),
    "store settings": (lambda s: s.set_config("smtp.host", "mail.example.com"), {"root-admin"}),
    "grant roles": (lambda s: s.grant("eve", "read-only"), {"root-admin"}),
}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("action", list(MATRIX))
def test_role_by_action_matrix(org, action, actor):
    run, allowed_actors = MATRIX[action]
    service = Service.open(org, actor=actor)
    seq = service.store.seq
    if actor in allowed_actors:
        run(service)
    else:
        with pytest.raises(NotAllowed) as refusal:
            run(service)
        assert actor in str(refusal.value) and "needs the" in str(refusal.value)
        service.refresh()
        assert service.store.seq == seq  # a refused call writes nothing


def test_refusal_names_the_role_needed(org):
    with pytest.raises(NotAllowed, match="needs the super-admin role"):
        Service.open(org, actor="desk").create_user("cy", "cy@example.com", "C", "Y")
    with pytest.raises(NotAllowed, match=r"\(app GitHub\): it needs the app-admin or super-admin role"):
        Service.open(org, actor="slack-admin").update_app("GitHub", rate=1.0)


def test_the_last_super_admin_cannot_be_removed(org):
    root = Service.open(org, actor="root-admin")
    with pytest.raises(InvalidInput, match="last super-admin"):
        root.revoke("root-admin", "super-admin")
    root.grant("second", "super-admin")
    root.revoke("root-admin", "super-admin")
    assert [a["user"] for a in Service.open(org, actor="second").list_admins() if any(g["role"] == "super-admin" for g in a["grants"])] == [
        "second"
    ]


def test_grant_validation(org):
    root = Service.open(org, actor="root-admin")
    with pytest.raises(InvalidInput, match="unknown role"):
        root.grant("eve", "god")
    with pytest.raises(InvalidInput, match="--app"):
        root.grant("eve", "app-admin")
    with pytest.raises(InvalidInput, match="--group"):
        root.grant("eve", "group-admin")
    with pytest.raises(InvalidInput, match="no app named"):
        root.grant("eve", "app-admin", apps=["Nope"])
    view = root.grant("eve", "app-admin", apps=["Slack", "GitHub"])
    assert view == {"user": "eve", "grants": [{"role": "app-admin", "apps": ["GitHub", "Slack"], "groups": []}]}
    assert root.audit()[-1]["action"] == "admin.grant"


def test_may_tells_the_console_what_to_grey_out(org):
    desk = Service.open(org, actor="desk")
    assert desk.may(Action.SUSPEND) and not desk.may(Action.MANAGE_USERS)


def test_pure_policy():
    app_admin = [Grant(Role.APP_ADMIN, apps=frozenset({"a1"}))]
    assert allowed(app_admin, Action.MANAGE_APP, Scope(apps=frozenset({"a1"})))
    assert not allowed(app_admin, Action.MANAGE_APP, Scope(apps=frozenset({"a1", "a2"})))
    assert not allowed(app_admin, Action.MANAGE_APP, Scope())
    group_admin = [Grant(Role.GROUP_ADMIN, groups=frozenset({"g1"}))]
    assert allowed(group_admin, Action.ASSIGN_APP, Scope(apps=frozenset({"a1"}), groups=frozenset({"g1"}), app_assigned_elsewhere=True))
    assert not allowed(group_admin, Action.ASSIGN_APP, Scope(apps=frozenset({"a1"}), groups=frozenset({"g1"})))
    assert not allowed([], Action.READ)
    assert allowed([Grant(Role.READ_ONLY)], Action.READ) and not allowed([Grant(Role.READ_ONLY)], Action.SUSPEND)
