"""Per-assignment app values (assignment.<key> in mappings), group priority, and the password policy."""

import json

import pytest

from provtui.cli.main import main
from provtui.domain.errors import InvalidInput
from provtui.service import Service
from tests.helpers.queue import empty_the_queue


@pytest.fixture
def org(store_location):
    service = Service.init(store_location, actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    for group in ("eng", "leads"):
        service.create_group(group)
        service.add_members(group, ["ada"])
    service.create_app("CRM", scim_url="http://127.0.0.1:9/v2", token_env="T")
    service.set_mapping("CRM", "urn:example:crm:2.0:User:role", "assignment.role")
    service.set_mapping("CRM", "urn:example:crm:2.0:User:tier", 'assignment.tier == null ? "basic" : assignment.tier')
    return service


def payload(service):
    attributes = service.preview_payload("CRM", "ada")["attributes"]
    return attributes.get("urn:example:crm:2.0:User:role"), attributes.get("urn:example:crm:2.0:User:tier")


def test_group_defaults_priority_and_direct_values(org):
    org.assign("CRM", group="eng", values={"role": "engineer"}, priority=20)
    assert payload(org) == ("engineer", "basic")
    org.assign("CRM", group="leads", values={"role": "lead", "tier": "gold"}, priority=10)
    assert payload(org) == ("lead", "gold")  # leads has the better (lower) priority
    org.assign("CRM", group="eng", priority=5)  # now eng wins where both say something
    assert payload(org) == ("engineer", "gold")  # ...and leads still supplies the tier eng does not
    org.assign("CRM", login="ada", values={"role": "admin"})
    assert payload(org) == ("admin", "gold")  # a direct assignment's own values come first


def test_changing_values_reprovisions_and_is_audited(org):
    org.assign("CRM", group="eng", values={"role": "engineer"})
    empty_the_queue(org.store)  # as if synced
    assert org.assign("CRM", group="eng", values={"role": "architect"}) is True
    assert org.user_view("ada")["apps"][0]["account"]["queued"]
    event = org.audit()[-1]
    assert event["action"] == "app.assign" and event["before"]["values"] == {"role": "engineer"}
    assert event["after"]["values"] == {"role": "architect"}
    assert org.assign("CRM", group="eng", values={"role": "architect"}) is False  # no change, no event
    org.assign("CRM", group="eng", values={"role": ""})  # KEY= clears it
    assert payload(org)[0] is None


def test_assignment_value_validation(org):
    with pytest.raises(InvalidInput, match="--priority"):
        org.assign("CRM", login="ada", priority=1)
    with pytest.raises(InvalidInput, match="--set"):
        org.assign("CRM", login="ada", values={"bad key": "x"})


def test_password_policy(org, tmp_path):
    assert org.check_password("longenough")
    org.set_config("password.min-length", "12")
    org.set_config("password.classes", "3")
    (tmp_path / "blocked.txt").write_text("# common\nCorrect-Horse-42\n")
    org.set_config("password.blocklist", str(tmp_path / "blocked.txt"))
    with pytest.raises(InvalidInput, match="at least 12"):
        org.check_password("Short-1")
    with pytest.raises(InvalidInput, match="mix at least 3"):
        org.check_password("alllowercaseletters")
    with pytest.raises(InvalidInput, match="blocklist"):
        org.check_password("correct-horse-42")
    assert org.check_password("Another-Horse-42")
    with pytest.raises(InvalidInput, match="password.classes"):
        org.set_config("password.classes", "5")


def test_cli_assign_with_values(org, monkeypatch, capsys):
    monkeypatch.setenv("PROVTUI_STORE", str(org.location))
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "admin")
    assert main(["app", "assign", "CRM", "--group", "eng", "--set", "role=dev", "--set", "tier=silver", "--priority", "3"]) == 0
    capsys.readouterr()
    assert main(["app", "preview", "CRM", "ada", "--json"]) == 0
    resource = json.loads(capsys.readouterr().out)
    assert resource["urn:example:crm:2.0:User"] == {"role": "dev", "tier": "silver"}
    assert main(["app", "assign", "CRM", "--user", "ada", "--priority", "3"]) == 2
    assert main(["config", "set", "password.min-length", "10"]) == 0
