"""A typo in an attribute matches nobody, quietly (issue #18): the rule's preview and the CLI warn of it."""

from provtui.domain.rules import attribute_warnings


def test_an_attribute_nobody_has_is_a_warning_with_the_closest_name():
    known = {"login", "email", "department", "title"}
    assert attribute_warnings({"departmnt"}, known) == ["no profile has attribute departmnt; did you mean department?"]
    assert attribute_warnings({"zzz"}, known) == ["no profile has attribute zzz"]
    assert attribute_warnings({"department", "title"}, known) == []
