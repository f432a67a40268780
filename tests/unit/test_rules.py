"""Group rules: memberships by expression, previews, the safeguard, and re-evaluation on change."""

import json

import pytest

from provtui.cli.main import main
from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.expressions import ExpressionError
from provtui.domain.rules import RuleState
from provtui.service import Service


@pytest.fixture
def org(store_location):
    service = Service.init(store_location, actor="admin")
    people = [
        ("ada", "Engineering", "VP Engineering"),
        ("bob", "Sales", "Account Executive"),
        ("cy", "Sales", "VP Sales"),
        ("dee", "Engineering", "Engineer"),
        ("eve", "Support", "Agent"),
    ]
    for login, department, title in people:
        service.create_user(login, f"{login}@example.com", login.title(), "T", {"department": department, "title": title}, activate=True)
    for group in ("sales", "eng", "vps"):
        service.create_group(group)
    service.create_app("CRM", scim_url="http://127.0.0.1:9/v2", token_env="T")
    service.assign("CRM", group="sales")
    return service


def groups_of(service, login):
    return service.user_view(login)["groups"]


def test_a_rule_is_inactive_until_activated_and_preview_shows_the_consequences(org):
    rules = org.rules()
    rule = rules.create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=[])
    assert rule["state"] == "inactive" and rule["members"] == 0 and groups_of(org, "bob") == []
    preview = rules.preview("sales-dept")
    assert preview == {
        "joins": ["bob", "cy"],
        "leaves": [],
        "losses": [],
        "gains": [{"user": "bob", "app": "CRM"}, {"user": "cy", "app": "CRM"}],
        "warnings": [],
    }
    seq = org.store.seq
    result = rules.change("sales-dept", state=RuleState.ACTIVE)
    assert org.store.seq == seq + 1  # one transaction: memberships, audit and provisioning
    assert result["preview"]["joins"] == ["bob", "cy"]
    assert groups_of(org, "bob") == ["sales"] and groups_of(org, "ada") == []
    crm = org.user_view("bob")["apps"][0]
    assert crm["entitled"] and crm["via"] == ["group:sales"] and crm["account"]["queued"]


def test_rule_memberships_cannot_be_removed_by_hand_and_coexist_with_manual_ones(org):
    org.rules().create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=[])
    org.rules().change("sales-dept", state=RuleState.ACTIVE)
    with pytest.raises(InvalidInput, match="rule:"):
        org.remove_members("sales", ["bob"])
    org.add_members("sales", ["bob"])  # manual too: now two paths
    org.rules().change("sales-dept", state=RuleState.INACTIVE, confirm=True)
    assert groups_of(org, "bob") == ["sales"]  # the manual membership remains
    assert groups_of(org, "cy") == []


def test_profile_changes_reevaluate_only_rules_that_read_them(org, monkeypatch):
    import provtui.model.directory as directory_module

    org.rules().create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=[])
    org.rules().create("vps", groups=["vps"], expr='String.startsWith(user.title, "VP")', exclude=[])
    org.rules().change("sales-dept", state=RuleState.ACTIVE)
    org.rules().change("vps", state=RuleState.ACTIVE)
    assert groups_of(org, "cy") == ["sales", "vps"]
    built = []

    class Counting(directory_module.Population):
        def __init__(self, scopes, groups=None):
            built.append(len(scopes))
            super().__init__(scopes, groups)

    monkeypatch.setattr(directory_module, "Population", Counting)
    org.update_user("dee", {"department": "Sales"})  # only the department rule reads this
    assert built == [1] and groups_of(org, "dee") == ["sales"]
    built.clear()
    org.update_user("dee", {"location": "Berlin"})  # no rule reads it: nothing evaluated
    assert built == []
    org.update_user("cy", {"title": "Director"})
    assert groups_of(org, "cy") == ["sales"]
    assert org.user_view("dee")["apps"][0]["entitled"]  # joining sales by rule gave CRM


def test_excluded_users_and_chained_rules(org):
    org.rules().create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=["bob"])
    org.rules().create("sales-vps", groups=["vps"], expr='isMemberOfGroupName("sales") AND String.startsWith(user.title, "VP")', exclude=[])
    org.rules().change("sales-vps", state=RuleState.ACTIVE)
    assert groups_of(org, "cy") == []
    org.rules().change("sales-dept", state=RuleState.ACTIVE)
    assert groups_of(org, "bob") == []  # excluded
    assert groups_of(org, "cy") == ["sales", "vps"]  # joined sales by one rule, then vps by the other
    org.update_user("cy", {"department": "Support"})
    assert groups_of(org, "cy") == []  # left sales, so left vps too


def test_the_safeguard_holds_a_change_taking_access_from_too_many(org):
    org.rules().create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=[])
    org.rules().change("sales-dept", state=RuleState.ACTIVE)
    seq = org.store.seq
    with pytest.raises(HeldForConfirmation) as held:
        org.rules().change("sales-dept", expr='user.department == "Nobody"')
    assert "CRM: 2 of 2 entitled users would lose access" in str(held.value)
    assert groups_of(org, "bob") == ["sales"]  # not applied...
    [record] = org.rules().held()
    assert record["state"] == "held" and record["summary"]["losses"] == 2 and org.store.seq == seq + 1  # ...but recorded
    result = org.rules().decide(record["id"], approve=True)
    assert result["preview"]["leaves"] == ["bob", "cy"] and groups_of(org, "bob") == []
    assert org.rules().held()[0]["state"] == "approved"
    org.set_config("safeguard.threshold", "1")
    org.rules().change("sales-dept", expr='user.department == "Sales"')
    org.rules().change("sales-dept", state=RuleState.INACTIVE)  # 100% loss, but the threshold now allows it


def test_check_change_says_what_change_then_does_and_whether_the_safeguard_holds_it(org):
    """The console asks before (de)activating with this: the same steps as change, nothing written."""
    rules = org.rules()
    rules.create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=[])
    seq = org.store.seq
    check = rules.check_change("sales-dept", state=RuleState.ACTIVE)
    assert org.store.seq == seq and rules.list()[0]["state"] == "inactive"  # nothing written
    assert check["held"] == [] and check["rule"]["state"] == "active" and check["threshold"] == 0.2
    assert check["preview"] == rules.change("sales-dept", state=RuleState.ACTIVE)["preview"]

    check = rules.check_change("sales-dept", state=RuleState.INACTIVE)
    assert check["preview"]["leaves"] == ["bob", "cy"] and len(check["preview"]["losses"]) == 2
    assert check["held"] == [{"app": "CRM", "losing": 2, "entitled": 2}]
    with pytest.raises(HeldForConfirmation) as held:
        rules.change("sales-dept", state=RuleState.INACTIVE)
    assert held.value.details["breaches"] == check["held"] and held.value.details["leaves"] == 2
    assert groups_of(org, "bob") == ["sales"]
    with pytest.raises(InvalidInput, match="no rule named"):
        rules.check_change("ghost", state=RuleState.ACTIVE)


def test_approving_a_held_change_decides_and_applies_it_in_one_commit(org):
    org.rules().create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=[])
    org.rules().change("sales-dept", state=RuleState.ACTIVE)
    with pytest.raises(HeldForConfirmation):
        org.rules().change("sales-dept", expr='user.department == "Nobody"')
    [record] = org.rules().held()
    org.rules().delete("sales-dept", confirm=True)  # since: the change can no longer be applied
    seq = org.store.seq
    with pytest.raises(InvalidInput, match="deleted since"):
        org.rules().decide(record["id"], approve=True)
    assert org.store.seq == seq and org.rules().held()[0]["state"] == "held"  # not marked approved and left undone
    assert org.rules().decide(record["id"], approve=False) == {"held": record["id"], "state": "rejected"}


def test_invalid_expressions_are_refused_with_the_column(org):
    with pytest.raises(ExpressionError) as error:
        org.rules().create("bad", groups=["sales"], expr='user.department == == "x"', exclude=[])
    assert error.value.column == 20 and "^" in str(error.value)
    with pytest.raises(InvalidInput, match="no rule named"):
        org.rules().change("ghost", state=RuleState.ACTIVE)


def test_user_list_where(org):
    total, users = org.list_users(where='user.department == "Sales" OR String.startsWith(user.title, "VP")')
    assert total == 3 and [u["login"] for u in users] == ["ada", "bob", "cy"]


@pytest.fixture
def cli(org, monkeypatch, capsys):
    monkeypatch.setenv("PROVTUI_STORE", str(org.location))
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "admin")

    def run(*args):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_rules_contract(cli):
    code, _, err = cli("rule", "create", "sales-dept", "--group", "sales", "--expr", 'user.department == == "Sales"')
    assert code == 2 and "column 20" in err and "^" in err
    assert cli("rule", "create", "sales-dept", "--group", "sales", "--expr", 'user.department == "Sales"')[0] == 0
    code, out, _ = cli("rule", "preview", "sales-dept", "--json")
    preview = json.loads(out)
    assert (
        code == 0
        and set(preview) == {"joins", "leaves", "gains", "losses", "warnings"}
        and preview["gains"][0] == {"user": "bob", "app": "CRM"}
    )
    assert preview["warnings"] == []
    code, out, err = cli("rule", "preview", "sales-dept", "--expr", 'user.departmnt == "Sales"', "--json")  # a typo: nobody
    assert code == 0 and json.loads(out)["warnings"] == ["no profile has attribute departmnt; did you mean department?"]
    assert "did you mean department?" in err and json.loads(out)["joins"] == []  # the typo matches nobody
    assert cli("rule", "activate", "sales-dept")[0] == 0
    code, out, err = cli("rule", "update", "sales-dept", "--expr", 'user.department == "Nobody"', "--json")
    assert code == 3 and "2 of 2" in err and json.loads(out)["losses"] == 2
    code, out, _ = cli("held", "--json")
    [held] = json.loads(out)
    assert cli("held", "reject", held["id"])[0] == 0
    assert cli("rule", "update", "sales-dept", "--expr", 'user.department == "Nobody"', "--confirm")[0] == 0
    code, out, _ = cli("rule", "list", "--json")
    assert json.loads(out)[0]["members"] == 0 and json.loads(out)[0]["state"] == "active"
    assert cli("rule", "deactivate", "sales-dept")[0] == 0
    assert cli("rule", "delete", "sales-dept")[0] == 0
    code, out, _ = cli("user", "list", "--where", 'user.department == "Engineering"', "--json")
    assert [u["login"] for u in json.loads(out)] == ["ada", "dee"]
    code, _, err = cli("user", "list", "--where", "user.")
    assert code == 2 and "--where" in err


def test_a_preview_over_several_groups_counts_each_users_own_moves(org):
    """Each affected user's groups after the edit come from their own moves (the preview once matched
    every user against every moved membership: quadratic at 50,000 users), and a group the rule stops
    filling stays theirs when they are in it by hand too (the preview, and so the safeguard, once
    counted that as a loss of the group's apps)."""
    org.create_app("Wiki", scim_url="http://127.0.0.1:9/v2", token_env="T")
    org.assign("Wiki", group="vps")
    org.add_members("sales", ["ada"])  # by hand: she keeps CRM whatever the rule does
    rules = org.rules()
    rules.create("leaders", groups=["sales", "vps"], expr='String.startsWith(user.title, "VP")', exclude=[])
    rules.change("leaders", state=RuleState.ACTIVE)
    assert groups_of(org, "ada") == ["sales", "vps"] and groups_of(org, "cy") == ["sales", "vps"]
    preview = rules.preview("leaders", expr='user.department == "Sales"')
    assert preview == {
        "joins": ["bob"],
        "leaves": ["ada"],
        "gains": [{"user": "bob", "app": "CRM"}, {"user": "bob", "app": "Wiki"}],
        "losses": [{"user": "ada", "app": "Wiki"}],
        "warnings": [],
    }
    assert [(r["name"], r["members"]) for r in rules.list()] == [("leaders", 4)]  # ada and cy, in two groups each
    rules.change("leaders", expr='user.department == "Sales"', confirm=True)  # Wiki loses 1 of 2: held without
    assert groups_of(org, "ada") == ["sales"] and groups_of(org, "bob") == ["sales", "vps"]
    assert {a["app"]: a["entitled"] for a in org.user_view("ada")["apps"]} == {"CRM": True}  # Wiki gone, CRM kept


def test_population_gives_each_user_the_groups_an_expression_reads_for_few_users_and_many(org):
    """Few users: each one's groups looked up; many: the members of each group read. Same answer."""
    from provtui.domain.expressions import compile_expression
    from provtui.model.directory import FEW_USERS
    from provtui.model.schema import USERS

    logins = [f"p{n:03d}" for n in range(FEW_USERS + 36)]
    for login in logins:
        org.create_user(login, f"{login}@example.com", "P", "Q", {"department": "Ops"}, activate=True)
    org.add_members("eng", logins[::3])
    org.add_members("vps", logins[::5])
    expression = compile_expression('isMemberOfGroupName("eng") and not isMemberOfGroupName("vps")', kind="boolean")
    users = [org.store.get(USERS, org.directory.user_id(login)) for login in logins]
    many = org.directory.population(users, expression.groups_read)
    few = [org.directory.population([user], expression.groups_read) for user in users]
    assert [set(g) for g in many.groups] == [set(g) for p in few for g in p.groups]
    assert many.groups[15] == {"eng", "vps"} and many.groups[3] == {"eng"} and not many.groups[1]
    assert expression.evaluate_all(many) == [n % 3 == 0 and n % 5 != 0 for n in range(len(logins))]
    org.add_members("sales", logins[:2])  # a group no expression here reads: never looked at
    assert org.directory.population(users[:2], expression.groups_read).groups == [{"eng", "vps"}, set()]
    assert not any(org.directory.population(users, frozenset()).groups)  # an expression reading no group
