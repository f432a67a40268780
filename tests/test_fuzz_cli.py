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
from provtui.engine import reconciler as engine
from provtui.service import Service
from provtui.store import LOCK

EXIT_CODES = {0, 1, 2, 3, 4}
# Commands left out: they open the console, serve for ever, or make a new store elsewhere.
NOT_FUZZED = {("demo",), ("worker",), ("init",)}


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
OPTIONS = {words: [o for a in p._actions for o in a.option_strings if o not in ("-h", "--help", "--store")]
           for words, p in COMMANDS.items()}

odd_values = st.one_of(
    st.sampled_from(["alice", "bob", "eng", "Slack", "r1", "title", "user.title", "user.department == \"Eng\"",
                     "", " ", "-", "--", "-1", "0", "1e309", "nan", "inf", str(2**64), "9" * 5000, ".", "/",
                     "/dev/null", "a=b", "=", "title=", "=x", "user.", "(((", "\u202eevil\u202c", "e\u0301\u0301",
                     "\U0001f600", "\udcff\udcfe", "a\udc80b", "שלום", "ǅ", "x" * 100_000, "active", "suspended"]),
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
    monkeypatch.setattr(engine, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(engine, "BACKOFF_CAP", 0.01)
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
        word in message for word in ("required", "expected", "argument", "invalid choice", "unrecognized", "--"))


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
