"""`provtui user ...`: people and their lifecycle."""

from __future__ import annotations

import getpass
import sys

from provtui.cli.output import EXIT_DOWNSTREAM, EXIT_OK, emit, shown, warn
from provtui.cli.safe_input import ranged
from provtui.domain.errors import InvalidInput
from provtui.domain.numbers import HISTORY_LIMIT
from provtui.domain.users import parse_assignments

LIFECYCLE_ACTIONS = ("activate", "suspend", "unsuspend", "deactivate", "reactivate", "delete")
STATES = ["staged", "active", "suspended", "deprovisioned", "deleted"]


def show_user(args, view: dict) -> int:
    if args.json:
        return emit(args, view)
    print(f"{shown(view['login'])}  ({view['state']}, source {shown(view['source'])})")
    for key, value in sorted(view["profile"].items()):
        print(f"  {shown(key)}: {shown(value)}")
    print(f"  groups: {', '.join(map(shown, view['groups'])) or '-'}")
    for app in view["apps"]:
        account = app["account"]
        error = f"  error: {shown(account['last_error'])}" if account.get("last_error") else ""
        print(
            f"  app {shown(app['app'])}: {'entitled' if app['entitled'] else 'not entitled'} via "
            f"{', '.join(map(shown, app['via'])) or '-'}; account {account['state']}{error}"
        )
    return EXIT_OK


def cmd_create(args, service) -> int:
    return show_user(
        args, service.create_user(args.login, args.email, args.first, args.last, parse_assignments(args.set), activate=args.activate)
    )


def cmd_update(args, service) -> int:
    return show_user(args, service.update_user(args.login, parse_assignments(args.set)))


def cmd_lifecycle(args, service) -> int:
    return show_user(args, service.change_state(args.login, args.verb))


def cmd_show(args, service) -> int:
    return show_user(args, service.user_view(args.login))


def cmd_history(args, service) -> int:
    from provtui.cli.audit import event_line

    HISTORY_LIMIT.check("--limit", args.limit)
    events = service.user_history(args.login, limit=args.limit)
    if args.json:
        return emit(args, events)
    for event in events:
        print(event_line(event))
    return EXIT_OK


def cmd_list(args, service) -> int:
    _, users = service.list_users(args.search or "", state=args.state, where=args.where, group=args.group, app=args.app, source=args.source)
    return emit(args, users, ["login", "state", "displayName", "email", "department"])


def read_new_password() -> str:
    """From the prompt (twice) on a terminal, else the first line of stdin: never from argv."""
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise InvalidInput("password", "the two entries differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_password(args, service) -> int:
    from provtui.compose import change_password  # the engine: loaded only to push the password

    targets = service.password_targets(args.login)
    if not targets:
        return emit(args, {"login": args.login, "apps": []}, text=f"no app syncs passwords for {args.login}: nothing to do")
    password = None if args.random else service.check_password(read_new_password())
    results = change_password(service, args.login, targets, password)
    for result in results:
        if result["error"]:
            warn(f"password for {args.login} in {result['app']} failed: {result['error']}")
    emit(
        args,
        {"login": args.login, "apps": results},
        text=f"password set for {args.login} in {', '.join(r['app'] for r in results if not r['error']) or 'no app'}",
    )
    return EXIT_DOWNSTREAM if any(r["error"] for r in results) else EXIT_OK


def register(cli) -> None:
    user, command = cli.noun("user", "people in the directory"), cli.command
    p = command(user, "create", cmd_create, "create a user (staged unless --activate)")
    p.add_argument("login")
    p.add_argument("--email", required=True)
    p.add_argument("--first", required=True)
    p.add_argument("--last", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--activate", action="store_true")
    p = command(user, "update", cmd_update, "change profile attributes")
    p.add_argument("login")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", required=True)
    for verb in LIFECYCLE_ACTIONS:
        command(user, verb, cmd_lifecycle, f"{verb} a user").add_argument("login")
    command(user, "show", cmd_show, "a user's profile, groups and apps").add_argument("login")
    p = command(
        user,
        "history",
        cmd_history,
        "what happened to a user, newest first: changes, memberships, tasks and every downstream call made for them",
    )
    p.add_argument("login")
    p.add_argument("--limit", type=ranged(HISTORY_LIMIT), default=60, metavar="N", help="the newest N events (default 60)")
    p = command(user, "list", cmd_list, "list users")
    p.add_argument("--search", help="login, name or email contains this")
    p.add_argument("--state", choices=STATES)
    p.add_argument("--where", metavar="EXPR", help='a condition, e.g. user.department == "Sales"')
    p.add_argument("--group", help="members of this group")
    p.add_argument("--app", help="users an assignment of this app reaches (directly or through a group)")
    p.add_argument("--source", help='users this source of truth masters ("provtui": those provtui masters)')
    p = command(user, "password", cmd_password, "set a password in the apps that sync passwords (prompted, or from stdin)")
    p.add_argument("login")
    p.add_argument("--random", action="store_true", help="give each app its own random 16-character password")
