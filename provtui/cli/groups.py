"""`provtui group ...`: groups, membership and group push."""

from __future__ import annotations

from provtui.cli.output import emit


def cmd_create(args, service) -> int:
    group = service.create_group(args.name, args.description or "")
    return emit(args, group, text=f"created group {group['name']}")


def cmd_members(args, service) -> int:
    method = service.add_members if args.verb == "add-member" else service.remove_members
    changed = method(args.group, args.logins)
    return emit(args, {"group": args.group, "changed": changed}, text=f"{args.verb} {args.group}: {', '.join(changed) or 'no change'}")


def cmd_rename(args, service) -> int:
    group = service.rename_group(args.group, args.new_name)
    return emit(args, group, text=f"renamed {args.group} to {group['name']}")


def cmd_list(args, service) -> int:
    groups = [
        {"name": g["name"], "kind": g.get("kind", "provtui"), "members": g["members"], "description": g.get("description", "")}
        for g in service.list_groups()
    ]
    return emit(args, groups, ["name", "kind", "members", "description"])


def cmd_push(args, service) -> int:
    service.push_group(args.group, args.app)
    return emit(args, {"group": args.group, "app": args.app, "state": "pushed"}, text=f"{args.group} will be pushed to {args.app}")


def cmd_unpush(args, service) -> int:
    service.unpush_group(args.group, args.app, delete=args.delete)
    fate = "deleted there" if args.delete else "left there as it is"
    return emit(
        args,
        {"group": args.group, "app": args.app, "state": "unpushed", "delete": args.delete},
        text=f"{args.group} is no longer pushed to {args.app} ({fate})",
    )


def register(cli) -> None:
    group, command = cli.noun("group", "groups and membership"), cli.command
    p = command(group, "create", cmd_create, "create a group")
    p.add_argument("name")
    p.add_argument("--description")
    for verb in ("add-member", "remove-member"):
        p = command(group, verb, cmd_members, f"{verb.replace('-', ' ')}s")
        p.add_argument("group")
        p.add_argument("logins", nargs="+", metavar="LOGIN")
    p = command(group, "rename", cmd_rename, "rename a group (pushed copies follow)")
    p.add_argument("group")
    p.add_argument("new_name", metavar="NEW_NAME")
    command(group, "list", cmd_list, "list groups")
    p = command(group, "push", cmd_push, "push a group and its membership to an app")
    p.add_argument("group")
    p.add_argument("--app", required=True)
    p = command(group, "unpush", cmd_unpush, "stop pushing a group to an app")
    p.add_argument("group")
    p.add_argument("--app", required=True)
    p.add_argument("--delete", action="store_true", help="delete the group downstream (default: leave it there)")
