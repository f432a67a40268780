"""`provtui user bulk` (#18), embedded and through a server (the ``cli`` fixture runs each test both ways):
a preview writes nothing, more than one person is held (exit 3) until --yes, bad input names the option
(exit 2), and the JSON keys of the plan."""

from __future__ import annotations

import json


def org(cli) -> None:
    for login in ("ada", "bob", "cy"):
        assert cli("user", "create", login, "--email", f"{login}@example.com", "--first", login, "--last", "L", "--activate")[0] == 0
    for group in ("eng", "sales"):
        assert cli("group", "create", group)[0] == 0
    for login in ("ada", "bob"):
        assert cli("group", "add-member", "eng", login)[0] == 0


def groups_of(cli, login: str) -> list[str]:
    return json.loads(cli("user", "show", login, "--json")[1])["groups"]


def test_a_move_is_previewed_held_then_applied(cli):
    org(cli)
    move = ("user", "bulk", "move", "--users", "ada,bob", "--group", "eng", "--to-group", "sales")
    code, out, _ = cli(*move, "--preview", "--json")
    plan = json.loads(out)
    assert code == 0 and not plan["applied"]
    assert {"action", "changed", "skipped", "counts", "safeguard"} <= plan.keys()
    assert sorted(p["login"] for p in plan["changed"]) == ["ada", "bob"]
    assert groups_of(cli, "ada") == ["eng"]  # the preview wrote nothing

    code, out, err = cli(*move)
    assert code == 3 and "bulk move" in out and groups_of(cli, "bob") == ["eng"]  # held: nothing written

    code, out, _ = cli(*move, "--yes", "--json")
    applied = json.loads(out)
    assert code == 0 and applied["applied"] and applied["changed"] == plan["changed"]  # the preview was the outcome
    assert groups_of(cli, "ada") == ["sales"] and groups_of(cli, "bob") == ["sales"]


def test_who_is_skipped_is_listed_with_why(cli):
    org(cli)
    code, out, _ = cli("user", "bulk", "move", "--users", "ada", "--users", "cy", "--group", "eng", "--to-group", "sales", "--yes")
    assert code == 0
    assert "skipped:" in out and "cy" in out.split("skipped:")[1]
    assert groups_of(cli, "cy") == []


def test_bad_input_names_the_option(cli):
    org(cli)
    code, _, err = cli("user", "bulk", "move", "--users", "ada", "--to-group", "sales", "--yes")
    assert code == 2 and "--group" in err
    code, _, err = cli("user", "bulk", "assign", "--users", "ada", "--yes")
    assert code == 2 and "--app" in err
    code, _, err = cli("user", "bulk", "suspend", "--filter", "user.department ==", "--yes")
    assert code == 2 and "--filter" in err
