"""Text output never shows a Python repr (issue #18): a list is its items, a mapping key=value, escaped."""

from provtui.cli.output import print_table


def test_lists_and_mappings_are_their_items(capsys):
    print_table(
        [{"name": "berlin", "groups": ["berlin-office", "all-staff"], "set": {"role": "member"}, "on": True, "off": False}],
        ["name", "groups", "set", "on", "off"],
    )
    out = capsys.readouterr().out
    assert "berlin-office, all-staff" in out and "role=member" in out and "[" not in out and "{" not in out
    assert out.splitlines()[1].split()[-2:] == ["yes", "-"]


def test_a_control_character_inside_a_list_is_escaped(capsys):
    print_table([{"groups": ["a\x1b[2Jb"]}], ["groups"])
    assert "\x1b" not in capsys.readouterr().out
