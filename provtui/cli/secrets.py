"""`provtui secret set|list|delete`: the secrets a provtui server holds for its apps (super admin).

provtui secret set NAME        # the value from stdin, or asked twice at a terminal: never an argument
provtui secret list [--json]   # names, who set them, when: never values
provtui secret delete NAME     # refused while an app's token is that secret
"""

from __future__ import annotations

import getpass
import sys

from provtui.cli.output import emit
from provtui.domain.errors import InvalidInput


def read_secret() -> str:
    if not sys.stdin.isatty():  # piped: one value, its trailing newline not part of it
        value = sys.stdin.read()
        return value[:-1] if value.endswith("\n") else value
    first = getpass.getpass("Secret value: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidInput("value", "the two entries differ")
    return first


def cmd_set(args, service) -> int:
    service.list_secrets()  # refused (exit 4 or 2) before the value is asked for
    entry = service.set_secret(args.name, read_secret())
    return emit(args, entry, text=f"secret {entry['name']} set")


def cmd_list(args, service) -> int:
    return emit(args, service.list_secrets(), ["name", "set_by", "set_at"])


def cmd_delete(args, service) -> int:
    done = service.delete_secret(args.name)
    return emit(args, done, text=f"secret {done['name']} deleted")


def register(cli) -> None:
    secret, command = cli.noun("secret", "secrets a provtui server holds for its apps (super admin)"), cli.command
    command(secret, "set", cmd_set, "set a secret; its value is read from stdin or asked for").add_argument("name", metavar="NAME")
    command(secret, "list", cmd_list, "the secrets' names, who set them and when (never their values)")
    command(secret, "delete", cmd_delete, "delete a secret no app uses").add_argument("name", metavar="NAME")
