"""`provtui user bulk ACTION`: move, assign, unassign, suspend or deactivate several people in one change.

    provtui user bulk move --users ada,bob --group sales --to-group engineering [--preview] [--yes] [--json]
    provtui user bulk suspend --filter 'user.department == "Sales"' --yes

The people are named (--users, comma-separated or repeated) or chosen by a condition (--filter, the
expression language of rules and `user list --where`).  --preview prints what would change and writes
nothing (exit 0).  Without --yes, a change to more than one person is held: its preview is printed and
the command exits 3; --yes applies it (past the safeguard, with the role `held approve` needs).  Bad
input exits 2 naming the option; a role that allows the change for nobody selected, 4.
"""

from __future__ import annotations

from provtui.cli.output import EXIT_HELD, EXIT_OK, emit, print_json, shown, warn
from provtui.domain.bulk import ACTIONS
from provtui.domain.errors import HeldForConfirmation


def person_line(person: dict) -> str:
    """What changes for one person, in words: their state, groups and apps."""
    parts = []
    if person["state"] != person["state_after"]:
        parts.append(f"{person['state']} -> {person['state_after']}")
    if person["leaves"]:
        parts.append(f"leaves {', '.join(map(shown, person['leaves']))}")
    if person["joins"]:
        parts.append(f"joins {', '.join(map(shown, person['joins']))}")
    if person["gains"]:
        parts.append(f"gains {', '.join(map(shown, person['gains']))}")
    if person["losses"]:
        parts.append(f"loses {', '.join(map(shown, person['losses']))}")
    return "; ".join(parts) or "no access changes"


def headline(plan: dict) -> str:
    """One line: the action, its target, and the counts."""
    target = {
        "move": f" {shown(plan['group'])} -> {shown(plan['to_group'])}",
        "assign": f" {shown(plan['app'])}",
        "unassign": f" {shown(plan['app'])}",
    }.get(plan["action"], "")
    counts = plan["counts"]
    done = "changed" if plan["applied"] else "would change"
    return (
        f"bulk {plan['action']}{target}: {counts['changed']} of {counts['selected']} selected {done}, "
        f"{counts['skipped']} skipped; {counts['gains']} app accesses gained, {counts['losses']} lost"
    )


def print_plan(plan: dict) -> None:
    print(headline(plan))
    width = max((len(p["login"]) for p in [*plan["changed"], *plan["skipped"]]), default=0)
    for person in plan["changed"]:
        print(f"  {shown(person['login']).ljust(width)}  {person_line(person)}")
    if plan["skipped"]:
        print("skipped:")
        for skip in plan["skipped"]:
            print(f"  {shown(skip['login']).ljust(width)}  {shown(skip['reason'])}")
    for breach in plan["safeguard"]:
        print(f"safeguard: {shown(breach['app'])} loses {breach['losing']} of its {breach['entitled']} active users")


def logins(values: list[str] | None) -> list[str] | None:
    """--users a,b --users c: every login named, in order."""
    if values is None:
        return None
    return [login for value in values for login in value.split(",")]


def cmd_bulk(args, service) -> int:
    request = {"users": logins(args.users), "where": args.filter, "group": args.group, "to_group": args.to_group, "app": args.app}
    try:
        plan = service.bulk_change(args.action, preview=args.preview, confirm=args.yes, **request)
    except HeldForConfirmation as held:
        if args.json:
            print_json({**held.details, "held": True})
        else:
            print_plan(held.details)
        warn(str(held))
        return EXIT_HELD
    if args.json:
        return emit(args, plan)
    print_plan(plan)
    return EXIT_OK


def register(cli) -> None:
    p = cli.command(
        cli.verbs["user"],
        "bulk",
        cmd_bulk,
        "move, assign, unassign, suspend or deactivate several people in one previewed, confirmed change",
    )
    p.add_argument("action", choices=ACTIONS, metavar="ACTION", help=f"one of: {', '.join(ACTIONS)}")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", action="append", metavar="LOGIN,...", help="the people, comma-separated (repeat for more)")
    who.add_argument("--filter", metavar="EXPR", help='the people a condition matches, e.g. user.department == "Sales"')
    p.add_argument("--group", help="move: the group they leave")
    p.add_argument("--to-group", metavar="GROUP", help="move: the group they join")
    p.add_argument("--app", help="assign, unassign: the app")
    p.add_argument("--preview", action="store_true", help="print what would change; write nothing")
    p.add_argument("--yes", action="store_true", help="apply a change to more than one person without holding it")
