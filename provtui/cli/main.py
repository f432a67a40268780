"""The scripting interface: `provtui <noun> <verb>`, with --json for scripts.

Exit codes (a contract admins' scripts depend on): 0 done; 1 a downstream
operation failed (each listed on stderr); 2 bad input or usage; 3 held for
confirmation; 4 not allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from provtui.domain.errors import InvalidInput, ProvtuiError
from provtui.domain.users import parse_assignments
from provtui.store import StoreError

EXIT_OK, EXIT_DOWNSTREAM, EXIT_USAGE = 0, 1, 2
LIFECYCLE_ACTIONS = ("activate", "suspend", "unsuspend", "deactivate", "reactivate", "delete")


def default_store() -> Path:
    from platformdirs import user_data_dir

    return Path(os.environ.get("PROVTUI_STORE") or Path(user_data_dir("provtui")) / "store")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; say it our way
        self.print_usage(sys.stderr)
        print(f"provtui: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _print_json(data) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c) or "")) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row.get(c) or "").ljust(widths[c]) for c in columns).rstrip())


# -- commands ------------------------------------------------------------------------


def cmd_console(args, service) -> int:
    from provtui.tui.app import build_app

    build_app(service, engine=service.reconciler()).run()
    return EXIT_OK


def cmd_init(args) -> int:
    from provtui.service import Service

    service = Service.init(args.store)
    print(f"created a store at {args.store}; {service.actor} is its super admin")
    return EXIT_OK


def cmd_demo(args) -> int:
    from provtui.demo import run_demo

    return run_demo()


def cmd_user_create(args, service) -> int:
    view = service.create_user(args.login, args.email, args.first, args.last, parse_assignments(args.set), activate=args.activate)
    return _show_user(args, view)


def cmd_user_update(args, service) -> int:
    return _show_user(args, service.update_user(args.login, parse_assignments(args.set)))


def cmd_user_lifecycle(args, service) -> int:
    return _show_user(args, service.change_state(args.login, args.verb))


def cmd_user_show(args, service) -> int:
    return _show_user(args, service.user_view(args.login))


def _show_user(args, view: dict) -> int:
    if args.json:
        _print_json(view)
        return EXIT_OK
    print(f"{view['login']}  ({view['state']}, source {view['source']})")
    for key, value in sorted(view["profile"].items()):
        print(f"  {key}: {value}")
    print(f"  groups: {', '.join(view['groups']) or '-'}")
    for app in view["apps"]:
        account = app["account"]
        error = f"  error: {account['last_error']}" if account.get("last_error") else ""
        print(f"  app {app['app']}: {'entitled' if app['entitled'] else 'not entitled'} via {', '.join(app['via']) or '-'}; "
              f"account {account['state']}{error}")
    return EXIT_OK


def cmd_user_list(args, service) -> int:
    _, users = service.list_users(args.search or "", state=args.state)
    if args.json:
        _print_json(users)
    else:
        _print_table(users, ["login", "state", "displayName", "email", "department"])
    return EXIT_OK


def cmd_group_create(args, service) -> int:
    group = service.create_group(args.name, args.description or "")
    if args.json:
        _print_json(group)
    else:
        print(f"created group {group['name']}")
    return EXIT_OK


def cmd_group_members(args, service) -> int:
    if args.verb == "add-member":
        changed = service.add_members(args.group, args.logins)
    else:
        changed = service.remove_members(args.group, args.logins)
    if args.json:
        _print_json({"group": args.group, "changed": changed})
    else:
        print(f"{args.verb} {args.group}: {', '.join(changed) or 'no change'}")
    return EXIT_OK


def cmd_group_list(args, service) -> int:
    groups = [{"name": g["name"], "kind": g.get("kind", "provtui"), "members": g["members"], "description": g.get("description", "")}
              for g in service.list_groups()]
    if args.json:
        _print_json(groups)
    else:
        _print_table(groups, ["name", "kind", "members", "description"])
    return EXIT_OK


def cmd_app_create(args, service) -> int:
    notify = [e.strip() for e in (args.notify or "").split(",") if e.strip()]
    app = service.create_app(args.name, scim_url=args.scim_url, token_env=args.token_env, manual=args.manual, notify=notify)
    if args.json:
        _print_json(app)
    else:
        print(f"created {app['kind']} app {app['name']}")
    return EXIT_OK


def cmd_app_assignment(args, service) -> int:
    method = service.assign if args.verb == "assign" else service.unassign
    changed = method(args.app, login=args.user, group=args.group)
    subject = f"user {args.user}" if args.user else f"group {args.group}"
    if args.json:
        _print_json({"app": args.app, "subject": subject, "changed": changed})
    else:
        print(f"{args.verb} {args.app} {'to' if args.verb == 'assign' else 'from'} {subject}" + ("" if changed else ": no change"))
    return EXIT_OK


def cmd_app_list(args, service) -> int:
    apps = [{"name": a["name"], "kind": a["kind"], "url": a.get("scim_url"), "accounts": a["accounts"], "queued": a["queued"]} for a in service.list_apps()]
    if args.json:
        _print_json(apps)
    else:
        _print_table(apps, ["name", "kind", "url", "accounts", "queued"])
    return EXIT_OK


def cmd_sync(args, service) -> int:
    async def run():
        reconciler = service.reconciler()
        try:
            return await reconciler.run_until_idle()
        finally:
            await reconciler.aclose()

    report = asyncio.run(run())
    for failure in report.failed:
        print(f"provtui: {failure['action']} {failure['user']} in {failure['app']} failed: {failure['error']}", file=sys.stderr)
    for failure in report.deferred:
        print(f"provtui: {failure['action']} {failure['user']} in {failure['app']} failed for now, queued again "
              f"after {failure['retry_at']}: {failure['error']}", file=sys.stderr)
    for app in report.quarantined:
        print(f"provtui: {app} is quarantined after repeated failures (`provtui app resume {app}` when it is fixed)", file=sys.stderr)
    if args.json:
        _print_json({"done": report.done, "failed": report.failed, "deferred": report.deferred, "quarantined": report.quarantined,
                     "calls": report.calls, "retries": report.retries})
    else:
        print(f"synced: {report.done} done, {len(report.failed)} failed, {len(report.deferred)} deferred, "
              f"{report.calls} calls, {report.retries} retries")
    return EXIT_OK if report.ok else EXIT_DOWNSTREAM


def cmd_audit(args, service) -> int:
    events = service.audit(args.limit)
    if args.json:
        _print_json(events)
    else:
        for e in events:
            print(f"{e['time']}  {e['actor']:<16} {e['action']:<20} {e['target']}")
    return EXIT_OK


def cmd_tasks(args, service) -> int:
    if args.verb == "done":
        if not args.ids:
            raise InvalidInput("ID", "name at least one task")
        done = [service.complete_task(task_id) for task_id in args.ids]
        if args.json:
            _print_json(done)
        else:
            print(f"done: {', '.join(t['id'] for t in done)}")
        return EXIT_OK
    tasks = service.task_list()
    if args.json:
        _print_json(tasks)
    else:
        _print_table(tasks, ["id", "app", "user", "action", "state", "created"])
    return EXIT_OK


# -- the parser ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", type=Path, default=argparse.SUPPRESS, help="store directory (default: $PROVTUI_STORE or the user data dir)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    parser = _Parser(prog="provtui", description="Identity lifecycle management and provisioning, in the terminal.", parents=[common])
    parser.set_defaults(handler=cmd_console, json=False)
    nouns = parser.add_subparsers(dest="noun", parser_class=_Parser)

    def command(sub, name: str, handler: Callable, help: str, **kwargs):
        p = sub.add_parser(name, parents=[common], help=help, **kwargs)
        p.set_defaults(handler=handler)
        return p

    command(nouns, "init", cmd_init, "create a new store; you become its super admin").set_defaults(needs_service=False)
    command(nouns, "demo", cmd_demo, "open the console on a demo organisation with live SCIM apps").set_defaults(needs_service=False)

    user = nouns.add_parser("user", help="people in the directory").add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = command(user, "create", cmd_user_create, "create a user (staged unless --activate)")
    p.add_argument("login")
    p.add_argument("--email", required=True)
    p.add_argument("--first", required=True)
    p.add_argument("--last", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--activate", action="store_true")
    p = command(user, "update", cmd_user_update, "change profile attributes")
    p.add_argument("login")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", required=True)
    for verb in LIFECYCLE_ACTIONS:
        p = command(user, verb, cmd_user_lifecycle, f"{verb} a user")
        p.add_argument("login")
    p = command(user, "show", cmd_user_show, "a user's profile, groups and apps")
    p.add_argument("login")
    p = command(user, "list", cmd_user_list, "list users")
    p.add_argument("--search", help="login, name or email contains this")
    p.add_argument("--state", choices=["staged", "active", "suspended", "deprovisioned", "deleted"])

    group = nouns.add_parser("group", help="groups and membership").add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = command(group, "create", cmd_group_create, "create a group")
    p.add_argument("name")
    p.add_argument("--description")
    for verb in ("add-member", "remove-member"):
        p = command(group, verb, cmd_group_members, f"{verb.replace('-', ' ')}s")
        p.add_argument("group")
        p.add_argument("logins", nargs="+", metavar="LOGIN")
    command(group, "list", cmd_group_list, "list groups")

    app = nouns.add_parser("app", help="applications").add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = command(app, "create", cmd_app_create, "add a SCIM or manual app")
    p.add_argument("name")
    p.add_argument("--scim-url")
    p.add_argument("--token-env", metavar="VARNAME", help="environment variable holding the bearer token")
    p.add_argument("--manual", action="store_true", help="an app with no API: provisioning becomes tasks")
    p.add_argument("--notify", metavar="EMAIL[,EMAIL...]", help="who gets a manual app's tasks")
    for verb in ("assign", "unassign"):
        p = command(app, verb, cmd_app_assignment, f"{verb} an app to a user or a group")
        p.add_argument("app")
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", metavar="LOGIN")
        who.add_argument("--group", metavar="GROUP")
    command(app, "list", cmd_app_list, "list apps")

    command(nouns, "sync", cmd_sync, "run all pending provisioning to completion")
    p = command(nouns, "audit", cmd_audit, "the audit trail")
    p.add_argument("--limit", type=int)
    p = command(nouns, "tasks", cmd_tasks, "manual apps' tasks")
    p.add_argument("verb", nargs="?", choices=["done"])
    p.add_argument("ids", nargs="*", metavar="ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.store = getattr(args, "store", None) or default_store()
    args.json = getattr(args, "json", False)
    try:
        if not getattr(args, "needs_service", True):
            return args.handler(args)
        from provtui.service import Service

        return args.handler(args, Service.open(args.store))
    except ProvtuiError as error:
        print(f"provtui: error: {error}", file=sys.stderr)
        return error.exit_code
    except StoreError as error:
        print(f"provtui: error: store: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
