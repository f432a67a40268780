"""`provtui admin ...`: who may do what (OS users and their roles)."""

from __future__ import annotations

from provtui.cli.output import emit


def _scope(grant: dict) -> str:
    return ", ".join([f"app {a}" for a in grant["apps"]] + [f"group {g}" for g in grant["groups"]])


def cmd_grant(args, service) -> int:
    admin = service.grant(args.user, args.role, apps=args.app, groups=args.group)
    return emit(args, admin, text=f"{args.user} is now {args.role}")


def cmd_revoke(args, service) -> int:
    admin = service.revoke(args.user, args.role)
    return emit(args, admin, text=f"{args.user} is no longer {args.role}")


def cmd_list(args, service) -> int:
    admins = service.list_admins()
    rows = [{"user": a["user"], "role": g["role"], "scope": _scope(g)} for a in admins for g in a["grants"]]
    return emit(args, admins, text=None) if args.json else emit(args, rows, ["user", "role", "scope"])


def register(cli) -> None:
    admin, command = cli.noun("admin", "admin roles: super-admin, app-admin, group-admin, helpdesk, read-only"), cli.command
    p = command(admin, "grant", cmd_grant, "give an OS user a role")
    p.add_argument("user", metavar="OSUSER")
    p.add_argument("role", metavar="ROLE")
    p.add_argument("--app", action="append", default=[], help="an app-admin's app (repeat for more)")
    p.add_argument("--group", action="append", default=[], help="a group-admin's or helpdesk's group (repeat for more)")
    p = command(admin, "revoke", cmd_revoke, "take a role away")
    p.add_argument("user", metavar="OSUSER")
    p.add_argument("role", metavar="ROLE")
    command(admin, "list", cmd_list, "admins and their roles")
