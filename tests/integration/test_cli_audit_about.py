"""`provtui audit --about NAME`: the events that target a person and those that name them (their groups'
add-member and remove-member events, assignments), the same definition the console's audit filter uses;
embedded and through a server (the ``cli`` fixture runs each test both ways)."""

from __future__ import annotations

import json


def _people_and_groups(cli) -> None:
    for login, first in (("ada", "Ada"), ("alan", "Alan")):
        assert cli("user", "create", login, "--email", f"{login}@example.com", "--first", first, "--last", "X")[0] == 0
    assert cli("group", "create", "eng")[0] == 0
    assert cli("group", "add-member", "eng", "ada", "alan")[0] == 0
    assert cli("group", "remove-member", "eng", "alan")[0] == 0


def test_about_a_person_lists_their_group_events(cli):
    _people_and_groups(cli)
    code, out, _ = cli("audit", "--json", "--about", "alan")
    assert code == 0
    assert [(e["action"], e["target"]) for e in json.loads(out)] == [
        ("user.create", "alan"),
        ("group.add-member", "eng"),
        ("group.remove-member", "eng"),
    ]
    code, out, _ = cli("audit", "--about", "ADA")  # text, case-insensitive as --target is
    assert code == 0 and [line.split()[2:] for line in out.splitlines()] == [["user.create", "ada"], ["group.add-member", "eng"]]


def test_about_combines_with_the_other_filters_and_target_is_unchanged(cli):
    _people_and_groups(cli)
    code, out, _ = cli("audit", "--json", "--about", "alan", "--action", "group.remove-member")
    assert code == 0 and [e["target"] for e in json.loads(out)] == ["eng"]
    code, out, _ = cli("audit", "--json", "--target", "alan")  # --target still matches the target only
    assert code == 0 and [e["action"] for e in json.loads(out)] == ["user.create"]
    code, out, _ = cli("audit", "--json", "--about", "eng")  # a group: the events made to it
    assert code == 0 and [e["action"] for e in json.loads(out)] == ["group.create", "group.add-member", "group.remove-member"]
    code, out, _ = cli("audit", "export", "--format", "jsonl", "--about", "alan")
    assert code == 0 and len(out.splitlines()) == 3


def test_verify_refuses_about(cli):
    code, _, err = cli("audit", "verify", "--about", "ada")
    assert code == 2 and "--about" in err
