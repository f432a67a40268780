"""Groups, apps and rules are named as people name them (#18): any printable Unicode, kept in NFC,
too long says "too long (max N)", and what a terminal would not show as itself is refused naming the field."""

from __future__ import annotations

import unicodedata

import pytest

from provtui.domain.errors import InvalidInput
from provtui.domain.rules import RuleState
from provtui.domain.text import MAX_NAME, check_display_name
from provtui.service import Service


@pytest.mark.parametrize("name", ["Ingeniería", "R&D", "営業部", "Ops (EMEA) / 2nd line", "Ñandú #1", "a" * MAX_NAME])
def test_printable_names_are_taken_as_written(name):
    assert check_display_name("name", name) == name


def test_a_name_is_trimmed_and_kept_composed():
    decomposed = unicodedata.normalize("NFD", "Ingeniería")
    assert decomposed != "Ingeniería"
    assert check_display_name("name", f"  {decomposed} ") == "Ingeniería"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * (MAX_NAME + 1), "too long (max 100)"),
        ("   ", "missing: give a name"),
        ("R&D\x1b[2J", "contains a control character (\\x1b at position 4)"),
        ("Sales\u200b", "holds a character that does not print (\\u200b at position 6)"),
        ("Sales\u2028Ops", "holds a character that does not print (\\u2028 at position 6)"),
    ],
)
def test_names_that_do_not_print_as_themselves_are_refused(name, message):
    with pytest.raises(InvalidInput) as refused:
        check_display_name("NEW_NAME", name)
    assert refused.value.field == "NEW_NAME" and message in str(refused.value)


def test_groups_apps_and_rules_take_unicode_names_and_find_them_however_typed(store_location):
    service = Service.init(store_location, actor="admin")
    service.create_group("Ingeniería")
    service.create_group("R&D")
    service.create_app("Nómina", manual=True, notify=["hr@example.com"])
    service.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    decomposed = unicodedata.normalize("NFD", "Ingeniería")
    service.add_members(decomposed, ["ada"])  # typed decomposed, as some keyboards and terminals send it
    service.assign("Nómina", group="R&D")
    service.rules().create("Ingeniería → R&D", groups=["R&D"], expr='isMemberOfGroupName("Ingeniería")', exclude=[])
    service.rules().change(unicodedata.normalize("NFD", "Ingeniería → R&D"), state=RuleState.ACTIVE)
    view = service.user_view("ada")
    assert sorted(view["groups"]) == ["Ingeniería", "R&D"]
    assert [a["app"] for a in view["apps"]] == ["Nómina"]
    with pytest.raises(InvalidInput, match="already exists"):
        service.create_group(decomposed)
