"""What the command line takes from an admin, checked before a command runs.

Every argument given as text (every option and positional of every command, paths too) is
refused, naming it, when it holds a control character or a lone surrogate, or is longer than
MAX_ARGUMENT characters (provtui.domain.text); each field is then held to its own maximum by
the service, which the console calls too.  Every numeric option is parsed by ``ranged`` and held
to its range from provtui.domain.numbers, the message saying the range: what is not a number of its
kind is a usage error (as argparse's own ``type=int`` made it); a number out of range is bad input
("--rate: 1e-300 is not a number of calls per second from 0.01 to 10000"), exit 2 either way.
"""

from __future__ import annotations

import argparse
from pathlib import PurePath

from provtui.domain.errors import InvalidInput
from provtui.domain.numbers import Range
from provtui.domain.text import MAX_ARGUMENT, check_text


def ranged(range_: Range):
    """An argparse ``type``: the option's value as a number of ``range_``'s kind, else a usage error saying the
    range; ``check_arguments`` then holds it to the range."""

    def parse(text: str) -> int | float:
        try:
            return range_.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.range = range_  # type: ignore[attr-defined]  (the parser walk in the tests reads it)
    parse.__name__ = "number"
    return parse


def command_actions(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.Action]:
    """The actions of the parser that parsed ``args`` and of every parser above it."""
    actions: list[argparse.Action] = []
    while parser is not None:
        actions += parser._actions
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, sub.dest, None) if sub is not None else None
        parser = sub.choices.get(chosen) if sub is not None and chosen is not None else None
    return actions


def label(action: argparse.Action) -> str:
    """How a message names an argument: its long option (--first), or a positional's metavar or name (login)."""
    if action.option_strings:
        return max(action.option_strings, key=len)
    return action.metavar if isinstance(action.metavar, str) else action.dest


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """InvalidInput naming the first argument given as text that holds a control character or is too long,
    or the first number out of its range."""
    for action in command_actions(parser, args):
        if isinstance(action, argparse._SubParsersAction) or action.nargs == 0:
            continue
        value = getattr(args, action.dest, None)
        if action.nargs is None and not action.option_strings and isinstance(value, list):
            # argparse hands a positional [] when a second "--" ends the line: it was never given
            raise InvalidInput(label(action), "missing: give a value")
        range_ = getattr(action.type, "range", None)
        if range_ is not None and value is not None:
            range_.check(label(action), value)
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (str, PurePath)):
                check_text(label(action), str(item), MAX_ARGUMENT)
