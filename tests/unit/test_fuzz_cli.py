"""Fuzzing the command line: any argv ends in a documented exit code with a clean message.

Hypothesis builds argv from the real commands mixed with their real options, made-up ones,
missing values, odd Unicode (as Linux hands over undecodable bytes too: lone surrogates),
huge numbers and ``--json`` anywhere, and runs it in-process against a copy of a small
seeded store.  Every run must exit 0/1/2/3/4 (argparse usage errors 2) without a traceback;
on exit 2 stderr says what was wrong, and the store is exactly as it was.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from provtui.cli.main import build_parser, main
from provtui.engine import sending
from provtui.service import Service
from provtui.store import LOCK

EXIT_CODES = {0, 1, 2, 3, 4}
# Commands left out: they open the console, serve for ever, or make a new store elsewhere.
NOT_FUZZED = {("demo",), ("worker",), ("init",), ("server",)}


def commands() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command's words and its parser."""
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*words, name))
                return
        if words not in NOT_FUZZED:
            found[words] = parser

    walk(build_parser(), ())
    return found


COMMANDS = commands()
OPTIONS = {
    words: [o for a in p._actions for o in a.option_strings if o not in ("-h", "--help", "--store")] for words, p in COMMANDS.items()
}

odd_values = st.one_of(
    st.sampled_from(
        [
            "alice",
            "bob",
            "eng",
            "Slack",
            "r1",
            "title",
            "user.title",
            'user.department == "Eng"',
            "",
            " ",
            "-",
            "--",
            "-1",
            "0",
            "1e309",
            "nan",
            "inf",
            str(2**64),
            "9" * 5000,
            ".",
            "/",
            "/dev/null",
            "a=b",
            "=",
            "title=",
            "=x",
            "user.",
            "(((",
            "\u202eevil\u202c",
            "e\u0301\u0301",
            "\U0001f600",
            "\udcff\udcfe",
            "a\udc80b",
            "שלום",
            "ǅ",
            "x" * 100_000,
            "active",
            "suspended",
        ]
    ),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=20),
    st.integers().map(str),
)


@st.composite
def argvs(draw) -> list[str]:
    words = draw(st.sampled_from(sorted(COMMANDS)))
    argv = list(words)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["option", "option", "value", "made-up", "bare"]))
        if kind == "option" and OPTIONS[words]:
            argv.append(draw(st.sampled_from(OPTIONS[words])))
            if draw(st.booleans()):  # else: the value is missing, or the next token stands in for it
                argv.append(draw(odd_values))
        elif kind == "made-up":
            argv.append("--" + draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF), min_size=1, max_size=8)))
        elif kind == "bare":
            argv.append(draw(st.sampled_from(["--json", "-h", "--", "-"])))
        else:
            argv.append(draw(odd_values))
    if draw(st.booleans()):
        argv.insert(draw(st.integers(0, len(argv))), "--json")
    return argv


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """A small organisation: users, a group, a rule, a SCIM app nobody listens for (refused at once)."""
    path = tmp_path_factory.mktemp("cli-fuzz") / "store"
    service = Service.init(path, actor=None)
    service.create_user("alice", "alice@example.com", "Alice", "A", {"title": "Engineer", "department": "Eng"}, activate=True)
    service.create_user("bob", "bob@example.com", "Bob", "B", activate=False)
    service.create_group("eng")
    service.add_members("eng", ["alice"])
    service.create_app("Slack", scim_url="http://127.0.0.1:1/v2", token_env="PROVTUI_CLI_FUZZ_TOKEN")
    service.assign("Slack", group="eng")
    return path


def files(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.is_file() and p.name != LOCK}


@pytest.fixture
def run(seeded, tmp_path, monkeypatch):
    monkeypatch.setattr(sending, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(sending, "BACKOFF_CAP", 0.01)
    monkeypatch.setenv("PROVTUI_CLI_FUZZ_TOKEN", "fuzz-token")
    monkeypatch.chdir(tmp_path)  # anything written to a relative path stays in the test's directory
    counter = iter(range(10**9))

    def run_once(argv: list[str]) -> tuple[int, str, str, dict[str, bytes], dict[str, bytes]]:
        store = tmp_path / f"store{next(counter)}"
        shutil.copytree(seeded, store)
        monkeypatch.setenv("PROVTUI_STORE", str(store))
        before = files(store)
        # Streams as CPython sets them up in a UTF-8 locale: stdout strict, stderr backslashreplace.
        stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
        stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
        captured = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse: --help (0) and usage errors (2)
            code = stop.code
        finally:
            sys.stdout, sys.stderr = captured
        out, err = (stream.flush() or stream.buffer.getvalue().decode() for stream in (stdout, stderr))
        after = files(store)
        shutil.rmtree(store)
        return code, out, err, before, after

    return run_once


def named(err: str, argv: list[str]) -> bool:
    """Whether the error names what was wrong: a field (InvalidInput's "field: message"), an option,
    an argument, a value given, or what is required."""
    message = err.rpartition("provtui: error: ")[2].strip()
    if re.match(r"[^\s:][^:]{0,60}: \S", message):
        return True
    tokens = {t.partition("=")[0] for t in argv if t.startswith("-")} | {t[:60] for t in argv if t.strip()}
    return any(token and token in message for token in tokens) or any(
        word in message for word in ("required", "expected", "argument", "invalid choice", "unrecognized", "--")
    )


@given(argv=argvs())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(argv=["user", "create", "\udcff", "--email", "x@example.com", "--first", "X", "--last", "Y"])
@example(argv=["import", "csv", "."])
@example(argv=["user", "list", "--where", "((("])
@example(argv=["report", "stale", "--days", "9" * 5000])
@example(argv=["app", "create", "New", "--scim-url", "http://127.0.0.1:1/v2", "--token-env", "T", "--concurrency", "-5"])
@example(argv=["audit", "--since", "\U0001f600", "--json"])
def test_any_argv_exits_with_a_documented_code_and_a_clean_message(run, argv):
    code, out, err, before, after = run(argv)
    event(f"exit {code}")
    assert code in EXIT_CODES, (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    if code == 2:
        assert "provtui: error: " in err and named(err, argv), err[-500:]
        assert after == before, "exit 2 must leave the store untouched"


def test_an_undecodable_argument_is_refused_by_name_and_never_stored(run):
    """Regression guard: a login made of undecodable bytes (a lone surrogate in argv) must be bad input."""
    code, _, err, before, after = run(["user", "create", "a\udc80b", "--email", "a@example.com", "--first", "A", "--last", "B"])
    assert code == 2 and "login" in err and after == before


# -- hostile input, option by option (issue #14) ---------------------------------------------------------------
#
# The parser walk again, this time aiming at one argument at a time: every argument given as text (each
# option and positional of each command) gets a value holding a control character, and every numeric option
# a value out of range (NaN, infinities, negatives, zero, huge).  The rest of the command line is made
# valid enough to parse, so that it is the aimed-at value that is judged.

from provtui.cli.safe_input import label as argument_label  # noqa: E402
from provtui.domain.text import CONTROL  # noqa: E402

CONTROL_CHARACTERS = ["\x1b", "\r", "\n", "\x85", "\x7f", "\x9b", "\x07", "\x08", "\x00", "\x1f", "\x0b"]


def _takes_value(action: argparse.Action) -> bool:
    return not isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)) and action.nargs != 0


TEXT_TARGETS = [(words, a) for words, p in sorted(COMMANDS.items()) for a in p._actions if _takes_value(a) and not hasattr(a.type, "range")]
NUMERIC_TARGETS = [(words, a) for words, p in sorted(COMMANDS.items()) for a in p._actions if hasattr(a.type, "range")]


def _placeholder(action: argparse.Action) -> str:
    return sorted(action.choices)[0] if action.choices else "x"


def argv_aimed_at(words: tuple[str, ...], target: argparse.Action, value: str) -> list[str]:
    """``words``' command with ``target`` given ``value`` and everything it needs to parse given a placeholder."""
    parser = COMMANDS[words]
    excluded: set[argparse.Action] = set()
    options: list[str] = []
    for group in parser._mutually_exclusive_groups:
        if target in group._group_actions:
            excluded |= set(group._group_actions) - {target}
        elif group.required:
            first = group._group_actions[0]
            excluded |= set(group._group_actions)
            options.append(f"{first.option_strings[-1]}={_placeholder(first)}")
    positionals: list[str] = []
    positional_actions = [a for a in parser._actions if not a.option_strings and _takes_value(a)]
    last = positional_actions.index(target) if target in positional_actions else -1
    for index, action in enumerate(positional_actions):
        if action is target:
            positionals.append(value)
        elif index < last or (action.required and action.nargs != "*"):  # earlier ones, to reach the target
            positionals.append(_placeholder(action))
    for action in parser._actions:
        if action.option_strings and _takes_value(action) and action not in excluded:
            if action is target:
                options.append(f"{action.option_strings[-1]}={value}")  # =: a value like -inf is not an option
            elif action.required:
                options.append(f"{action.option_strings[-1]}={_placeholder(action)}")
    return [*words, *options, *positionals]


@given(
    target=st.sampled_from(TEXT_TARGETS),
    control=st.sampled_from(CONTROL_CHARACTERS),
    before=st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=1, max_size=6),
    after=st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), max_size=6),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_control_character_in_any_argument_is_refused_by_name_and_never_stored(run, target, control, before, after):
    words, action = target
    argv = argv_aimed_at(words, action, before + control + after)
    code, out, err, before_files, after_files = run(argv)
    assert code == 2, (argv, code, err)
    assert argument_label(action) in err, (argv, err)
    assert "Traceback" not in err and after_files == before_files
    # the message shows what was refused escaped: no control character reaches the terminal but a line end
    assert not CONTROL.search((out + err).replace("\n", "")), repr(err)


def test_an_overlong_argument_is_refused_by_name(run):
    code, _, err, before, after = run(["user", "list", "--search", "x" * 10_001])
    assert code == 2 and "--search: too long (max 10000)" in err and after == before


out_of_range = st.one_of(
    st.sampled_from(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
            "-1",
            "0",
            "-0",
            "1e309",
            "-1e309",
            "1e-300",
            str(10**30),
            str(2**63),
            str(-(2**63)),
            "1e3",
            "0.5",
            "",
            " ",
            "1_000",
            "٣",
        ]
    ),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@given(target=st.sampled_from(NUMERIC_TARGETS), value=out_of_range)
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(target=next(t for t in NUMERIC_TARGETS if t[1].dest == "rate"), value="1e-300")
@example(target=next(t for t in NUMERIC_TARGETS if t[1].dest == "max_wait"), value="nan")
def test_every_numeric_option_refuses_what_is_out_of_its_range_saying_the_range(run, target, value):
    words, action = target
    range_ = action.type.range
    try:
        in_range = range_.contains(range_.parse(value))
    except ValueError:
        in_range = False
    code, out, err, before, after = run(argv_aimed_at(words, action, value))
    assert code in EXIT_CODES and "Traceback" not in err
    if not in_range:
        assert code == 2, (words, value, code, err)
        assert argument_label(action) in err and range_.describe() in err, err
        assert after == before


def test_every_numeric_option_has_a_range():
    """A new numeric option must say its range (provtui.cli.safe_input.ranged), not take type=int or float."""
    raw = [(words, a.dest) for words, p in COMMANDS.items() for a in p._actions if a.type in (int, float)]
    assert raw == []
