"""Expressions: the Okta Expression Language subset, its null-safe semantics, errors, limits and safety."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provtui.domain.errors import InvalidInput
from provtui.domain.expressions import (
    DEFAULT_FUNCTIONS,
    MAPPING_FUNCTIONS,
    MAPPING_ROOTS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_STRING,
    NUMBER,
    STRING,
    CompiledExpression,
    ExpressionError,
    Function,
    Population,
    compile_expression,
)
from tests.bench.baseline_interpreter import TreeInterpreter  # the benchmark's baseline, the tests' oracle

ROOTS = frozenset({"user", "assignment"})


def same(a, b) -> bool:
    """Equal in value and type (1, 1.0 and True differ; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=False))
    return a == b


def outcome(fn, *args):
    try:
        return ("value", fn(*args))
    except ExpressionError as e:
        return ("error", e.message, e.column)


def same_outcome(a, b) -> bool:
    return a[0] == b[0] and (same(a[1], b[1]) if a[0] == "value" else a == b)


def ev(text: str, user: dict | None = None, groups=frozenset(), *, kind: str = "any", assignment=None):
    """Evaluate through all three paths (closures, interpreter, population) and insist they agree."""
    scope = {"user": user if user is not None else {}, "assignment": assignment}
    compiled = compile_expression(text, roots=ROOTS, kind=kind)
    interpreted = TreeInterpreter(text, roots=ROOTS, kind=kind)
    value = compiled(scope, groups)
    assert same(value, interpreted(scope, groups)), text
    (by_population,) = compiled.evaluate_all(Population([scope], [groups]))
    assert same(by_population, value), text
    return value


def error(text: str, **kw) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, **kw)
    return info.value


# --- literals and attributes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('"hello"', "hello"),
        ("'hello'", "hello"),
        ('""', ""),
        (r'"a\"b"', 'a"b'),
        (r"'a\'b'", "a'b"),
        (r'"a\\b"', "a\\b"),
        (r'"tab\there"', "tab\there"),
        (r'"line\nbreak"', "line\nbreak"),
        (r'"\r"', "\r"),
        (r'"\u00e9t\u00E9"', "été"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        ('"日本"', "日本"),
        ("12", 12),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("-1.5E-2", -0.015),
        ("0", 0),
        ("true", True),
        ("false", False),
        ("null", None),
        ("TRUE", True),
        ("False", False),
        ("NULL", None),
    ],
)
def test_literals(text, expected):
    assert same(ev(text), expected)


def test_attributes_read_the_scope_and_missing_ones_are_null():
    user = {"firstName": "Ada", "level": 3, "tags": ["a"], "flag": False}
    assert ev("user.firstName", user) == "Ada"
    assert ev("user.level", user) == 3
    assert ev("user.tags", user) == ["a"]
    assert ev("user.flag", user) is False
    assert ev("user.missing", user) is None
    assert ev("assignment.role", user) is None  # a root absent (None) reads as all-null
    assert ev("assignment.role", user, assignment={"role": "admin"}) == "admin"
    expression = compile_expression("user.x")
    assert expression({}) is None  # no "user" root at all
    assert expression({"user": None}) is None


def test_names_are_case_sensitive_keywords_are_not():
    user = {"dept": "Eng", "Dept": "Ops", "android": "A", "nullable": "T", "note": "N"}
    assert ev("user.dept", user) == "Eng"
    assert ev("user.Dept", user) == "Ops"
    assert ev('user.dept == "Eng" and user.Dept == "Ops"', user) is True
    assert ev('user.dept == "Eng" And NoT user.Dept == "Eng"', user) is True
    assert ev("user.android + user.nullable + user.note", user) == "ATN"
    assert error("user.and").message == "unexpected token 'and' at column 6"  # keywords are reserved
    assert error('String.StartsWith(user.a, "x")').reason == "unknown function 'String.StartsWith'"
    assert "unknown name 'User'" in error('User.dept == "x"').message


def test_whitespace_and_newlines_are_insignificant():
    assert ev('\n  user.a   ==\t"x"\r\n  OR  false ', {"a": "x"}) is True


# --- equality and ordering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, equal",
    [
        ("x", "x", True),
        ("x", "X", False),
        (1, 1, True),
        (1, 1.0, True),
        (1, 2, False),
        (1, "1", False),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        (None, None, True),
        (None, "", False),
        (None, 0, False),
        (None, False, False),
        (["a", 1], ["a", 1], True),
        (["a", 1], ["a", 1.0], True),
        (["a"], ("a",), True),
        ([True], [1], False),
        ([], [], True),
        ([["x"]], [["x"]], True),
        (float("nan"), float("nan"), False),
        ({"k": 1}, {"k": 1}, False),
    ],
)
def test_equality_is_by_kind_and_value(a, b, equal):
    user = {"a": a, "b": b}
    assert ev("user.a == user.b", user) is equal
    assert ev("user.a != user.b", user) is (not equal)
    assert ev("user.b == user.a", user) is equal


@pytest.mark.parametrize(
    "literal, value, equal",
    [
        ('"x"', "x", True),
        ('"x"', None, False),
        ('"1"', 1, False),
        ("1", 1, True),
        ("1", 1.0, True),
        ("1", True, False),
        ("0", False, False),
        ("true", True, True),
        ("true", 1, False),
        ("null", None, True),
        ("null", "", False),
        ("false", None, False),
        ("1.5", 1.5, True),
    ],
)
def test_equality_with_a_literal(literal, value, equal):
    assert ev(f"user.a == {literal}", {"a": value}) is equal
    assert ev(f"{literal} == user.a", {"a": value}) is equal
    assert ev(f"user.a != {literal}", {"a": value}) is (not equal)
    assert ev(f"user.missing == {literal}", {}) is (literal == "null")


@pytest.mark.parametrize(
    "a, b, lt",
    [
        (1, 2, True),
        (2, 1, False),
        (1, 1.5, True),
        (-1, 0, True),
        ("a", "b", True),
        ("B", "a", True),
        ("ab", "a", False),
        (1, "2", False),
        ("1", 2, False),
        (None, 1, False),
        (1, None, False),
        (None, None, False),
        (True, 2, False),
        (False, True, False),
        (["a"], ["b"], False),
    ],
)
def test_ordering_compares_numbers_or_strings_and_is_false_otherwise(a, b, lt):
    user = {"a": a, "b": b}
    assert ev("user.a < user.b", user) is lt
    assert ev("user.b > user.a", user) is lt
    comparable = (type(a) in (int, float) and type(b) in (int, float)) or (type(a) is str and type(b) is str)
    assert ev("user.a <= user.b", user) is (comparable and a <= b)
    assert ev("user.a >= user.b", user) is (comparable and a >= b)


def test_ordering_with_literals_on_either_side():
    user = {"n": 5, "s": "m", "none": None}
    assert ev("user.n > 3 AND 3 < user.n AND user.n >= 5 AND user.n <= 5.0", user) is True
    assert ev('user.s > "a" AND "z" > user.s AND user.s >= "m"', user) is True
    assert ev("user.none < 3 OR user.none >= 3 OR user.s < 3", user) is False
    assert ev("user.missing < 3", user) is False


def test_comparisons_that_can_never_hold_are_compile_errors():
    assert error("user.a < true").message == "'<' compares numbers or text, not a condition at column 10"
    assert error("user.a >= null").message == "'>=' compares numbers or text, not null at column 11"
    assert error('"a" < 1').message == "'<' between text and a number is always false at column 5"
    assert "unexpected token '=='" in error("user.a == user.b == user.c").message  # no chaining


# --- conditions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b", [(x, y) for x in (True, False, None, "true", 1) for y in (True, False, None)])
def test_and_or_not_treat_only_true_as_true(a, b):
    user = {"a": a, "b": b}
    assert ev("user.a AND user.b", user) is (a is True and b is True)
    assert ev("user.a && user.b", user) is (a is True and b is True)
    assert ev("user.a OR user.b", user) is (a is True or b is True)
    assert ev("user.a || user.b", user) is (a is True or b is True)
    assert ev("NOT user.a", user) is (a is not True)
    assert ev("!user.a", user) is (a is not True)


def test_and_or_chains_and_precedence():
    user = {"a": "x", "b": "y", "n": 2}
    assert ev('user.a == "x" OR user.b == "no" AND user.n == 9', user) is True  # AND binds tighter than OR
    assert ev('(user.a == "x" OR user.b == "no") AND user.n == 9', user) is False
    assert ev('NOT user.a == "y"', user) is True  # NOT (user.a == "y")
    assert ev('!user.a == "x" || user.n > 1', user) is True
    assert ev("true AND true AND true AND false", user) is False
    assert ev("false OR false OR user.none OR true", user) is True
    assert error("false OR null").message == "OR needs a condition, not null at column 10"
    assert ev("NOT NOT true", user) is True


def test_and_or_short_circuit():
    big = "x" * (MAX_STRING // 2 + 1)
    failing = '(user.big + user.big) == ""'
    assert ev(f"false AND {failing}", {"big": big}) is False
    assert ev(f"true OR {failing}", {"big": big}) is True
    assert ev(f"user.ok == true ? true : {failing}", {"big": big, "ok": True}) is True
    with pytest.raises(ExpressionError):
        ev(f"true AND {failing}", {"big": big})


def test_conditions_must_be_conditions():
    assert error('user.a + "x" AND true').message == "AND needs a condition, not text at column 1"
    assert error("NOT 5").message == "NOT needs a condition, not a number at column 5"
    assert error("true OR String.toLowerCase(user.a)").message == "OR needs a condition, not text at column 9"
    assert error('"x" ? 1 : 2').message == "'?' needs a condition, not text at column 1"


def test_ternary():
    assert ev('user.a == "x" ? "yes" : "no"', {"a": "x"}) == "yes"
    assert ev('user.a == "x" ? "yes" : "no"', {}) == "no"
    assert ev('user.flag ? "yes" : "no"', {"flag": "true"}) == "no"  # only true is true
    assert ev('user.n > 5 ? "big" : user.n > 2 ? "mid" : "small"', {"n": 3}) == "mid"  # nests to the right
    assert ev("(user.n > 5 ? true : false) ? 1 : 2", {"n": 9}) == 1
    assert ev("true ? user.a : user.b", {"a": 1, "b": 2}) == 1
    assert ev("false ? user.a : user.b", {"a": 1, "b": 2}) == 2


# --- + ----------------------------------------------------------------------------------------------


def test_plus_joins_text_and_adds_numbers():
    user = {"first": "Ada", "last": "Lovelace", "n": 2, "x": 1.5, "t": True, "tags": ["a", 1, None, ["n"], True]}
    assert ev('user.first + " " + user.last', user) == "Ada Lovelace"
    assert ev('user.first + " " + user.middle + user.last', user) == "Ada Lovelace"  # null is ""
    assert ev("user.middle + user.middle", user) == ""
    assert ev("user.n + 3", user) == 5
    assert ev("user.n + user.x", user) == 3.5
    assert ev('1 + 2 + "a"', user) == "3a"  # left to right
    assert ev('"a" + 1 + 2', user) == "a12"
    assert ev('"v" + user.x + user.t + null', user) == "v1.5true"
    assert ev('"" + 2.0', user) == "2.0"
    assert ev('"tags:" + user.tags', user) == "tags:a,1,,,true"


def test_plus_has_a_length_cap_and_says_where():
    half = "x" * (MAX_STRING // 2)
    assert len(ev("user.a + user.a", {"a": half})) == MAX_STRING
    with pytest.raises(ExpressionError) as info:
        ev('user.a + user.a + "!"', {"a": half})
    assert info.value.message == "'+' would build a string longer than 65,536 characters at column 17"
    assert str(info.value) == (
        "expression: '+' would build a string longer than 65,536 characters at column 17\n  user.a + user.a + \"!\"\n                  ^"
    )


def test_plus_faults_on_numbers_too_large():
    with pytest.raises(ExpressionError, match="the sum is too large at column 8"):
        ev("user.n + 0.5", {"n": 10**400})
    with pytest.raises(ExpressionError, match="too long to write as text"):
        ev('"n=" + user.n', {"n": 10**5000})


# --- functions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, user, expected",
    [
        ('String.startsWith(user.s, "Sen")', {"s": "Senior"}, True),
        ('String.startsWith(user.s, "sen")', {"s": "Senior"}, False),
        ('String.startsWith(user.s, "")', {"s": "x"}, True),
        ('String.startsWith(user.s, "x")', {}, False),
        ('String.startsWith(user.s, "1")', {"s": 12}, False),
        ("String.startsWith(user.s, user.p)", {"s": "abc"}, False),
        ('String.endsWith(user.s, ".com")', {"s": "a@b.com"}, True),
        ('String.endsWith(user.s, ".org")', {"s": "a@b.com"}, False),
        ('String.endsWith(null, "x")', {}, False),
        ('String.stringContains(user.s, "gin")', {"s": "Engineer"}, True),
        ('String.stringContains(user.s, "GIN")', {"s": "Engineer"}, False),
        ('String.stringContains(user.s, "x")', {"s": ["x"]}, False),
        ("String.toLowerCase(user.s)", {"s": "ÉCOLE Ada"}, "école ada"),
        ("String.toUpperCase(user.s)", {"s": "straße"}, "STRASSE"),
        ("String.toLowerCase(user.s)", {}, None),
        ("String.toUpperCase(user.s)", {"s": 5}, None),
        ("String.len(user.s)", {"s": "Ada"}, 3),
        ("String.len(user.s)", {"s": ""}, 0),
        ("String.len(user.s)", {}, None),
        ("String.len(user.s)", {"s": [1, 2]}, None),
        ("String.substring(user.s, 1, 3)", {"s": "abcdef"}, "bc"),
        ("String.substring(user.s, 2)", {"s": "abcdef"}, "cdef"),
        ("String.substring(user.s, -5, 2)", {"s": "abcdef"}, "ab"),
        ("String.substring(user.s, 4, 99)", {"s": "abcdef"}, "ef"),
        ("String.substring(user.s, 4, 2)", {"s": "abcdef"}, ""),
        ("String.substring(user.s, 0, -1)", {"s": "abcdef"}, ""),
        ("String.substring(user.s, 99, 100)", {"s": "abcdef"}, ""),
        ("String.substring(user.s, 1.0, 2.0)", {"s": "abcdef"}, "b"),
        ("String.substring(user.s, 1.5, 2)", {"s": "abcdef"}, None),
        ("String.substring(user.s, user.i, 2)", {"s": "abcdef", "i": True}, None),
        ("String.substring(user.s, null, 2)", {"s": "abcdef"}, None),
        ("String.substring(user.s, 0, 2)", {}, None),
        ('Arrays.contains(user.tags, "vpn")', {"tags": ["vpn", "gh"]}, True),
        ('Arrays.contains(user.tags, "VPN")', {"tags": ["vpn", "gh"]}, False),
        ("Arrays.contains(user.tags, 1)", {"tags": ["1", 1.0]}, True),
        ("Arrays.contains(user.tags, 1)", {"tags": [True]}, False),
        ("Arrays.contains(user.tags, null)", {"tags": [None]}, True),
        ('Arrays.contains(user.tags, "x")', {"tags": "x"}, False),
        ('Arrays.contains(user.tags, "x")', {}, False),
        ("Arrays.contains(user.tags, user.tags)", {"tags": [["a"], "b"]}, False),
    ],
)
def test_functions(text, user, expected):
    assert same(ev(text, user), expected)


def test_case_mapping_growth_is_capped():
    with pytest.raises(ExpressionError, match="the result would be longer than 65,536 characters at column 1"):
        ev("String.toUpperCase(user.s)", {"s": "ß" * (MAX_STRING // 2 + 1)})
    long = "a" * (MAX_STRING + 10)  # a long input is not itself a fault
    assert ev("String.toLowerCase(user.s)", {"s": long}) == long


def test_is_member_of_group_name():
    assert ev('isMemberOfGroupName("eng")', {}, frozenset({"eng", "all"})) is True
    assert ev('isMemberOfGroupName("Eng")', {}, frozenset({"eng"})) is False
    assert ev('isMemberOfGroupName("eng")', {}) is False
    assert ev('isMemberOfGroupName("eng") AND NOT isMemberOfGroupName("ops")', {}, {"eng"}) is True
    assert ev('isMemberOfGroupName(\'a b\') ? "x" : "y"', {}, ["a b"]) == "x"
    assert error("isMemberOfGroupName(user.team)").message == ("isMemberOfGroupName takes a group name in quotes at column 21")
    assert "isMemberOfGroupName takes a group name in quotes" in error('isMemberOfGroupName("a" + "b")').message


def test_function_errors_name_the_column():
    assert error('String.startswith(user.a, "x")').message == (
        "unknown function 'String.startswith' at column 1; did you mean String.startsWith?"
    )
    assert error("String.foo(user.a)").message.startswith("unknown function 'String.foo' at column 1")
    assert error('user.a == __import__("os")').message == "unknown function '__import__' at column 11"
    assert error("String.startsWith(user.a)").message == "String.startsWith takes 2 arguments, not 1 at column 1"
    assert error("String.substring(user.a)").message == "String.substring takes 2 or 3 arguments, not 1 at column 1"
    assert error("String.len()").message == "String.len takes 1 argument, not 0 at column 1"
    assert error("String.len(5)").message == "argument 1 of String.len must be text, not a number at column 12"
    assert error('String.substring(user.a, "1")').message == ("argument 2 of String.substring must be a number, not text at column 26")
    assert error('Arrays.contains("abc", "a")').message == ("argument 1 of Arrays.contains must be an array, not text at column 17")


def test_mappings_use_their_own_roots_and_functions():
    mapping = compile_expression('user.firstName + " (" + assignment.role + ")"', roots=MAPPING_ROOTS, functions=MAPPING_FUNCTIONS)
    assert mapping({"user": {"firstName": "Ada"}, "assignment": {"role": "admin"}}) == "Ada (admin)"
    assert mapping({"user": {"firstName": "Ada"}}) == "Ada ()"
    assert mapping.attributes_read == {("user", "firstName"), ("assignment", "role")}
    assert error('isMemberOfGroupName("x")', roots=MAPPING_ROOTS, functions=MAPPING_FUNCTIONS).reason == (
        "unknown function 'isMemberOfGroupName'"
    )
    rule_error = error('assignment.role == "x"', kind="boolean")
    assert rule_error.message == "unknown name 'assignment' at column 1; attributes are read from user.<attribute>"


def test_custom_functions_and_the_boolean_coercion():
    functions = {**DEFAULT_FUNCTIONS, "Custom.echo": Function(lambda v: v, (frozenset({STRING, NUMBER}),), frozenset({"boolean"}))}
    rule = compile_expression("Custom.echo(user.a)", functions=functions, kind="boolean")
    assert rule({"user": {"a": "yes"}}) is False  # a rule's non-boolean result counts as false
    assert rule({"user": {"a": 1}}) is False
    interpreter = TreeInterpreter("Custom.echo(user.a)", functions=functions, kind="boolean")
    assert interpreter({"user": {"a": "yes"}}) is False
    assert rule.evaluate_all(Population([{"user": {"a": "yes"}}, {"user": {"a": 2}}])) == [False, False]
    assert compile_expression("Custom.echo(user.a)", functions=functions)({"user": {"a": "yes"}}) == "yes"


# --- names and safety -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("user.__class__", "attribute names cannot start with '_' at column 6"),
        ("user._secret", "attribute names cannot start with '_' at column 6"),
        ("__builtins__.open", "unknown name '__builtins__' at column 1; attributes are read from user.<attribute>"),
        ("firstName", "unknown name 'firstName' at column 1; text goes in quotes: \"firstName\"; an attribute is user.firstName"),
        ("user.department == Sales", "unknown name 'Sales' at column 20; text goes in quotes: \"Sales\"; an attribute is user.Sales"),
        ("user", "'user' needs an attribute: user.<attribute> at column 1"),
        ("user.a.b", "unexpected token '.' at column 7"),
        ("user.a()", "unknown function 'user.a' at column 1"),
        ("user['a']", "unexpected character '[' at column 5"),
        ("user.a.__class__", "unexpected token '.' at column 7"),
    ],
)
def test_names_resolve_only_to_roots_and_functions(text, message):
    assert error(text).message == message


def test_hostile_code_does_not_run(tmp_path):
    canary = tmp_path / "pwned"
    for text in (
        f"__import__('os').system('touch {canary}')",
        f"open('{canary}', 'w')",
        "user.__class__.__init__.__globals__",
        f"eval(\"open('{canary}','w')\")",
        "exec('import os')",
        "lambda: 1",
        "[x for x in ()]",
        "{}.__class__",
    ):
        with pytest.raises(ExpressionError):
            compile_expression(text)
    assert not canary.exists()


# --- errors: messages, columns, carets --------------------------------------------------------------


def test_syntax_error_message_and_caret():
    e = error("user.a == == 1")
    assert isinstance(e, InvalidInput) and e.field == "expression"
    assert (e.column, e.line, e.offset, e.text) == (11, 1, 10, "user.a == == 1")
    assert e.message == "unexpected token '==' at column 11"
    assert e.caret() == "user.a == == 1\n          ^"
    assert str(e) == "expression: unexpected token '==' at column 11\n  user.a == == 1\n            ^"


@pytest.mark.parametrize(
    "text, message",
    [
        ("user.a ==", "unexpected end of expression at column 10"),
        ("user.a ==   ", "unexpected end of expression at column 10"),
        ("(user.a == 1", "unexpected end of expression at column 13"),
        ('user.a == "abc', "unterminated string at column 11"),
        ("user.a == 'it\\'s", "unterminated string at column 11"),
        ("user.a = 1", "unexpected character '=' at column 8; compare with =="),
        ("user.a == 1 & true", "unexpected character '&' at column 13; write && or AND"),
        ("user.n - 1", "unexpected character '-' at column 8; there is no subtraction"),
        ("user.a == #", "unexpected character '#' at column 11"),
        ("user.a == \x1b[2J", "unexpected character '\\x1b' at column 11"),
        ("user.a == 1)", "unexpected token ')' at column 12"),
        ("String.len(user.a,)", "unexpected token ')' at column 19"),
        ("user.a user.b", "unexpected token 'user' at column 8"),
        ("AND true", "unexpected token 'AND' at column 1"),
        ("", "the expression is empty at column 1"),
        (" \n\t ", "the expression is empty at line 1, column 1"),
        (r'"\q"', "unknown escape '\\q' at column 2; use \\\\ \\\" \\' \\n \\r \\t or \\uXXXX"),
        (r'"\u12"', "unknown escape '\\u' at column 2; use \\\\ \\\" \\' \\n \\r \\t or \\uXXXX"),
        (r'"\ud800"', "\\ud800 is not a character (a surrogate) at column 2"),
        ("1" * 40, "a number may have at most 32 characters at column 1"),
        ("1e999", "number out of range at column 1"),
        ("user.firstName ＝＝ 'x'", "unexpected character '＝' at column 16"),
    ],
)
def test_syntax_errors(text, message):
    assert error(text).message == message


def test_errors_on_later_lines_say_the_line():
    e = error('user.a == "x" AND\n  user.b ==== 1')
    assert (e.line, e.column) == (2, 12)
    assert e.message == "unexpected token '==' at line 2, column 12"
    assert e.caret() == "  user.b ==== 1\n           ^"


def test_caret_stays_aligned_and_printable():
    e = error("\tuser.a == == 1")
    assert e.caret() == " user.a == == 1\n           ^"
    e = error('"日本" == == 1')
    assert e.caret() == '"日本" == == 1\n          ^'  # wide characters take two cells
    e = error("user.a\x07 == 1")
    assert e.caret() == "user.a\ufffd == 1\n      ^"  # a control character is never echoed


def test_long_expressions_show_a_window_around_the_column():
    text = " OR ".join(f'user.a{i} == "x"' for i in range(40)) + " OR OR"
    e = error(text)
    display, caret = e.caret().split("\n")
    assert display.startswith("…") and len(display) <= 75
    assert display[len(caret) - 1 : len(caret) + 1] == "OR"
    assert caret.strip() == "^"


def test_the_caller_names_the_field():
    e = error("user.a ==", field="rule")
    assert e.field == "rule" and str(e).startswith("rule: unexpected end of expression at column 10")


def test_rules_must_be_conditions():
    assert error("user.firstName", kind="boolean").message == (
        "a rule must be a condition at column 1; compare the value, e.g. user.isContractor == true"
    )
    assert error('user.a + "x"', kind="boolean").message == "a rule must be a condition, not text at column 1"
    assert error('"yes"', kind="boolean").message == "a rule must be a condition, not text at column 1"
    assert error("String.len(user.a)", kind="boolean").message == ("a rule must be a condition, not a number at column 1")
    assert error('user.a == "x" ? "y" : true', kind="boolean").reason.startswith("a rule must be a condition")
    assert ev('user.a == "x" ? isMemberOfGroupName("g") : true', {"a": "x"}, kind="boolean") is False
    assert ev("user.flag == true", {"flag": True}, kind="boolean") is True
    assert ev("NOT user.flag", {"flag": "yes"}, kind="boolean") is True
    with pytest.raises(ValueError):
        compile_expression("true", kind="text")


def test_errors_pickle():
    e = error("user.a == == 1", field="rule")
    copy = pickle.loads(pickle.dumps(e))
    assert (copy.field, copy.message, copy.column, str(copy)) == (e.field, e.message, e.column, str(e))


# --- limits -----------------------------------------------------------------------------------------


def test_length_limit():
    ok = '"' + "a" * (MAX_LENGTH - 2) + '"'
    assert len(ev(ok)) == MAX_LENGTH - 2
    e = error(ok + " ")
    assert e.message == "the expression is longer than 4,000 characters at column 4001"


def test_depth_limit():
    assert ev("(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1)) == 1
    assert error("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH).message == ("the expression nests deeper than 64 levels at column 65")
    assert error("!" * 3990 + "true").message == "the expression nests deeper than 64 levels at column 65"
    assert error("(" * 1990 + "1" + ")" * 1990).reason.startswith("the expression nests deeper")
    assert error("true ? 1 : " * 300 + "2").reason.startswith("the expression nests deeper")
    # long flat chains are not nesting
    assert ev(" + ".join(["1"] * 1000)) == 1000
    assert ev(" OR ".join(["false"] * 400) + " OR true") is True


# --- what an expression reads -----------------------------------------------------------------------


def test_attributes_and_groups_read():
    rule = compile_expression(
        'user.department == "Eng" AND (String.startsWith(user.title, "Sr") OR '
        'isMemberOfGroupName("leads")) AND NOT isMemberOfGroupName("interns")',
        kind="boolean",
    )
    assert rule.attributes_read == {("user", "department"), ("user", "title")}
    assert rule.groups_read == {"leads", "interns"}
    assert compile_expression("1 + 2").attributes_read == frozenset()
    assert compile_expression("user.a == user.a").attributes_read == {("user", "a")}
    assert compile_expression("true ? user.a : user.b").attributes_read == {("user", "a"), ("user", "b")}
    assert isinstance(rule, CompiledExpression) and rule.text.startswith("user.department")
    assert repr(compile_expression("user.a")) == "CompiledExpression('user.a')"


# --- many users at once -----------------------------------------------------------------------------


def test_population_matches_one_by_one_on_tricky_columns():
    values = [1, True, 1.0, "1", None, False, 0, -0.0, 0.0, "x", ["x"], float("nan"), 2]
    scopes = [{"user": {"a": values[i % len(values)], "b": values[(i * 7) % len(values)]}} for i in range(200)]
    scopes += [{"user": None}, {}, {"user": {}}]
    groups = [frozenset({"g"}) if i % 3 else frozenset() for i in range(len(scopes))]
    population = Population(scopes, groups)
    for text in (
        "user.a == 1",
        "user.a == true",
        "user.a + user.b",
        "user.a == user.b",
        "user.a < user.b",
        'user.a + ""',
        'isMemberOfGroupName("g") ? user.a : user.b',
        "NOT user.a",
        "user.a == 1 AND user.b == 1",
        'user.a OR isMemberOfGroupName("g")',
        'Arrays.contains(user.a, "x")',
    ):
        expression = compile_expression(text)
        expected = [expression(s, g) for s, g in zip(scopes, groups, strict=False)]
        assert all(same(a, b) for a, b in zip(expression.evaluate_all(population), expected, strict=False)), text


def test_population_memoises_low_cardinality_columns():
    scopes = [{"user": {"dept": ["Eng", "Ops", None][i % 3], "level": i % 4}} for i in range(1000)]
    population = Population(scopes)
    population.prefetch([compile_expression("user.dept == 'Eng' AND user.level > 1")])
    rule = compile_expression('String.toLowerCase(user.dept) + user.level == "eng3"')
    assert rule.evaluate_all(population) == [i % 3 == 0 and i % 4 == 3 for i in range(1000)]
    assert population._memo_plan(tuple(sorted(("attr", "user", a) for a in ("dept", "level")))) is not None


def test_population_reports_the_first_failing_users_error():
    big = "x" * (MAX_STRING // 2 + 1)
    scopes = [{"user": {"a": "ok", "ok": False}}, {"user": {"a": big, "ok": True}}, {"user": {"a": "y", "ok": True}}]
    rule = compile_expression('user.ok == true AND (user.a + user.a) != ""', kind="boolean")
    with pytest.raises(ExpressionError, match="column 29"):
        rule.evaluate_all(Population(scopes))
    safe = compile_expression('user.ok == true AND (user.a + user.a) != ""')
    assert safe.evaluate_all(Population([scopes[0], scopes[2]])) == [False, True]  # short-circuit kept


def test_population_edges():
    rule = compile_expression("1 + 1")
    assert rule.evaluate_all(Population([])) == []
    assert rule.evaluate_all(Population([{}, {}])) == [2, 2]
    with pytest.raises(ValueError):
        Population([{}], [frozenset(), frozenset()])


# --- property-based: nothing but a value or a clean error -------------------------------------------

PROFILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.0, -0.0, 2.5, float("nan"), 10**30]),
    st.sampled_from(["", "a", "A", "ab", "Ab", "ß", "x y", "é", "1", "true", "x" * (MAX_STRING // 2 + 1)]),
    st.lists(st.sampled_from(["a", 1, True, None, "ab"]), max_size=3),
)
PROFILES = st.dictionaries(st.sampled_from(["a", "b", "c", "tags"]), PROFILE_VALUES, max_size=4)
GROUP_SETS = st.frozensets(st.sampled_from(["g1", "g2"]))


def total(text: str, profile: dict, groups: frozenset) -> None:
    """Compiling and evaluating ``text`` gives a value or an ExpressionError, nothing else."""
    for kind in ("any", "boolean"):
        try:
            expression = compile_expression(text, roots=ROOTS, kind=kind)
        except ExpressionError as e:
            assert 1 <= e.column and e.caret().count("\n") == 1 and str(e)
            continue
        for scope in ({"user": profile, "assignment": profile}, {}):
            try:
                expression(scope, groups)
            except ExpressionError as e:
                assert str(e)


TOKENS = [
    "user",
    "assignment",
    ".",
    "a",
    "b",
    "tags",
    "(",
    ")",
    ",",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "AND",
    "and",
    "&&",
    "OR",
    "||",
    "NOT",
    "!",
    "?",
    ":",
    "true",
    "false",
    "null",
    '"x"',
    "'y'",
    '""',
    "1",
    "-2.5",
    "String.startsWith",
    "String.substring",
    "String.len",
    "String.toUpperCase",
    "Arrays.contains",
    "isMemberOfGroupName",
    '"g1"',
    "__class__",
    "_",
    "=",
    "&",
    "|",
    "-",
    '"',
    "'",
    "\\",
    "\n",
    "日本",
]
HOSTILE = [
    "__import__('os').system('true')",
    "user.__class__.__mro__",
    "user.__dict__",
    "().__class__.__bases__[0]",
    "eval('1')",
    "exec('x=1')",
    "open('/etc/passwd')",
    "getattr(user, 'a')",
    "lambda: 1",
    "[x for x in ()]",
    "user['a']",
    "user.a.b",
    "String.__class__",
    "String.startsWith.__globals__",
    '"\\u0000"',
    '"\\ud800"',
    "user.a == '\u202e'",
    "user.a\u200b == 1",
    "user.a == 1\x00",
    "user.a == １",
    "user.名前",
    "\U0001f600",
    "(" * 5000,
    "(" * 1990 + "1" + ")" * 1990,
    "!" * 3990 + "true",
    "NOT " * 900 + "true",
    "1+" * 1999 + "1",
    '"' + "a" * 3998 + '"',
    "user.a == " + "9" * 3000,
    "1e999",
    "a ? b : " * 500 + "c",
    "user.a" + " OR user.a" * 400,
    "String.substring(" * 300,
    "\t\n\r",
    "user.a ==\n\n\n 'x",
    "isMemberOfGroupName(user.a)",
    "Arrays.contains(user.tags, user.tags)",
    "x" * 10_000,
    "user.a + " * 600 + "user.a",
    "\\" * 100,
    "'" * 33,
    "String.toUpperCase(user.a + user.a + user.a)",
    "user.a" + " + user.a" * 500,
]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=120), PROFILES, GROUP_SETS)
def test_random_text_gives_a_value_or_a_clean_error(text, profile, groups):
    total(text, profile, groups)


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.sampled_from([" ", ""]), PROFILES, GROUP_SETS)
def test_token_soup_gives_a_value_or_a_clean_error(tokens, glue, profile, groups):
    total(glue.join(tokens), profile, groups)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(HOSTILE), st.text(max_size=20), st.integers(0, 10_000), PROFILES)
def test_hostile_text_gives_a_value_or_a_clean_error(hostile, noise, at, profile):
    total(hostile, profile, frozenset())
    at %= len(hostile) + 1
    total(hostile[:at] + noise + hostile[at:], profile, frozenset())


# --- property-based: valid expressions, compiled == interpreted -------------------------------------


def quoted(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


ATTRIBUTE = st.builds("{}.{}".format, st.sampled_from(["user", "assignment"]), st.sampled_from(["a", "b", "c", "tags"]))
STRING_LITERAL = st.text(st.characters(blacklist_categories=("Cs",)), max_size=4).map(quoted)
NUMBER_LITERAL = st.one_of(st.integers(-20, 20).map(str), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(repr))
BOOLEAN_LITERAL = st.sampled_from(["true", "false", "TRUE", "False"])


@st.composite
def expressions(draw, kind: str, depth: int = 4) -> str:
    """A valid expression of ``kind`` ("bool", "str", "num", "any"), every compound in parentheses."""

    def sub(k: str) -> str:
        return draw(expressions(k, depth - 1))

    if kind == "any":
        kind = draw(st.sampled_from(["bool", "str", "num", "null", "attr"]))
        if kind == "null":
            return "null"
        if kind == "attr":
            return draw(ATTRIBUTE)
    leaves = {"bool": BOOLEAN_LITERAL, "str": st.one_of(STRING_LITERAL, ATTRIBUTE), "num": st.one_of(NUMBER_LITERAL, ATTRIBUTE)}[kind]
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        if kind == "bool" and draw(st.booleans()):
            return f"({draw(ATTRIBUTE)} {draw(st.sampled_from(['==', '!=']))} {sub('any')})"
        return draw(leaves)
    if kind == "bool":
        shape = draw(st.integers(0, 9))
        if shape == 0:
            return f"({sub('any')} {draw(st.sampled_from(['==', '!=']))} {sub('any')})"
        if shape == 1:
            side = draw(st.sampled_from(["str", "num"]))
            return f"({sub(side)} {draw(st.sampled_from(['<', '<=', '>', '>=']))} {sub(side)})"
        if shape == 2:
            op = draw(st.sampled_from([" AND ", " OR ", " && ", " || ", " and "]))
            return "(" + op.join(sub("bool") for _ in range(draw(st.integers(2, 4)))) + ")"
        if shape == 3:
            return f"({draw(st.sampled_from(['NOT ', '!']))}{sub('bool')})"
        if shape == 4:
            fn = draw(st.sampled_from(["String.startsWith", "String.endsWith", "String.stringContains"]))
            return f"{fn}({sub('str')}, {sub('str')})"
        if shape == 5:
            return f"Arrays.contains({draw(ATTRIBUTE)}, {sub('any')})"
        if shape == 6:
            return f"isMemberOfGroupName({draw(st.sampled_from(['g1', 'g2', 'g3']))!r})"
        if shape == 7:
            return f"({sub('bool')} ? {sub('bool')} : {sub('bool')})"
        return f"({sub('any')} {draw(st.sampled_from(['==', '!=']))} {draw(st.one_of(STRING_LITERAL, NUMBER_LITERAL, BOOLEAN_LITERAL, st.just('null')))})"
    if kind == "str":
        shape = draw(st.integers(0, 4))
        if shape == 0:
            return "(" + " + ".join(sub("any") for _ in range(draw(st.integers(2, 4)))) + ' + "")'
        if shape == 1:
            return f"{draw(st.sampled_from(['String.toLowerCase', 'String.toUpperCase']))}({sub('str')})"
        if shape == 2:
            end = f", {sub('num')}" if draw(st.booleans()) else ""
            return f"String.substring({sub('str')}, {sub('num')}{end})"
        if shape == 3:
            return f"({sub('bool')} ? {sub('str')} : {sub('str')})"
        return draw(leaves)
    shape = draw(st.integers(0, 2))
    if shape == 0:
        return f"String.len({sub('str')})"
    if shape == 1:
        return f"({sub('num')} + {sub('num')})"
    return f"({sub('bool')} ? {sub('num')} : {sub('num')})"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions("any"), st.lists(st.tuples(PROFILES, PROFILES, GROUP_SETS), min_size=1, max_size=4))
def test_compiled_and_interpreted_agree(text, cases):
    compiled = compile_expression(text, roots=ROOTS)
    interpreted = TreeInterpreter(text, roots=ROOTS)
    assert compiled.attributes_read == interpreted.attributes_read
    for user, assignment, groups in cases:
        scope = {"user": user, "assignment": assignment}
        assert same_outcome(outcome(compiled, scope, groups), outcome(interpreted, scope, groups)), text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expressions("bool"),
    st.lists(st.tuples(PROFILES, GROUP_SETS), min_size=1, max_size=6),
    st.lists(st.integers(0, 5), min_size=0, max_size=60),
)
def test_rules_agree_one_by_one_and_over_a_population(text, pool, picks):
    rule = compile_expression(text, roots=ROOTS, kind="boolean")
    interpreted = TreeInterpreter(text, roots=ROOTS, kind="boolean")
    chosen = [pool[i % len(pool)] for i in picks]  # repeats, so the memoised paths run
    scopes = [{"user": user, "assignment": user} for user, _ in chosen]
    groups = [g for _, g in chosen]
    one_by_one = [outcome(interpreted, s, g) for s, g in zip(scopes, groups, strict=False)]
    failures = [o for o in one_by_one if o[0] == "error"]
    population = outcome(rule.evaluate_all, Population(scopes, groups))
    if failures:
        assert population == failures[0], text
    else:
        assert population[0] == "value" and population[1] == [o[1] for o in one_by_one], text
        assert all(type(v) is bool for v in population[1])
