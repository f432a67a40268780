"""`provtui rule ...` and `provtui held ...`: group rules, their previews, and changes a safeguard held."""

from __future__ import annotations

from provtui.cli.output import EXIT_HELD, emit, print_json, warn
from provtui.domain.errors import HeldForConfirmation
from provtui.domain.rules import RuleState


def _held(args, held: HeldForConfirmation) -> int:
    warn(str(held))
    if args.json:
        print_json({**held.details, "held": True})
    return EXIT_HELD


def _warn(result: dict) -> None:
    for warning in result.get("warnings", ()):  # on stderr: --json stays the result
        warn(warning)


def cmd_create(args, service) -> int:
    rule = service.rules().create(args.name, groups=args.group, expr=args.expr, exclude=args.exclude)
    _warn(rule)
    return emit(args, rule, text=f"created rule {rule['name']} (inactive: preview it, then `provtui rule activate {rule['name']}`)")


def _change(args, service, **change) -> int:
    try:
        result = service.rules().change(args.name, confirm=args.confirm, **change)
    except HeldForConfirmation as held:
        return _held(args, held)
    preview = result["preview"]
    _warn(result)
    return emit(
        args,
        result,
        text=f"rule {args.name}: {len(preview['joins'])} joined, {len(preview['leaves'])} left, "
        f"{len(preview['gains'])} app accesses gained, {len(preview['losses'])} lost",
    )


def cmd_update(args, service) -> int:
    return _change(args, service, expr=args.expr, groups=args.group or None, exclude=args.exclude or None)


def cmd_state(args, service) -> int:
    return _change(args, service, state=RuleState.ACTIVE if args.verb == "activate" else RuleState.INACTIVE)


def cmd_delete(args, service) -> int:
    service.rules().delete(args.name, confirm=args.confirm)
    return emit(args, {"rule": args.name, "deleted": True}, text=f"deleted rule {args.name}")


def cmd_preview(args, service) -> int:
    preview = service.rules().preview(args.name, expr=args.expr)
    _warn(preview)
    if args.json:
        return emit(args, preview)
    print(f"joins ({len(preview['joins'])}): {', '.join(preview['joins']) or '-'}")
    print(f"leaves ({len(preview['leaves'])}): {', '.join(preview['leaves']) or '-'}")
    for kind in ("gains", "losses"):
        print(f"{kind} ({len(preview[kind])}): " + (", ".join(f"{c['user']} {c['app']}" for c in preview[kind]) or "-"))
    return 0


def cmd_list(args, service) -> int:
    rules = service.rules().list()
    return emit(args, rules, ["name", "state", "groups", "members", "expr"])


def cmd_held(args, service) -> int:
    if args.verb in ("approve", "reject"):
        if not args.id:
            from provtui.domain.errors import InvalidInput

            raise InvalidInput("ID", "name the held change")
        try:
            result = service.rules().decide(args.id, approve=args.verb == "approve")
        except HeldForConfirmation as held:
            return _held(args, held)
        return emit(args, result, text=f"{args.verb}d {args.id}")
    held = [
        {
            "id": h["id"],
            "kind": h["kind"],
            "name": h["name"],
            "state": h["state"],
            "created": h["created"],
            "by": h["by"],
            "summary": h["summary"],
        }
        for h in service.rules().held()
    ]
    return emit(args, held, ["id", "kind", "name", "state", "created", "by"])


def register(cli) -> None:
    rule, command = cli.noun("rule", "group rules: expressions over profiles that set membership"), cli.command
    p = command(rule, "create", cmd_create, "create a rule (inactive)")
    p.add_argument("name")
    p.add_argument("--group", action="append", required=True, help="a target group (repeat for more)")
    p.add_argument("--expr", required=True, help='e.g. user.department == "Sales"')
    p.add_argument("--exclude", action="append", default=[], metavar="LOGIN")
    p = command(rule, "update", cmd_update, "change a rule's expression, groups or exclusions")
    p.add_argument("name")
    p.add_argument("--expr")
    p.add_argument("--group", action="append", default=[])
    p.add_argument("--exclude", action="append", default=[], metavar="LOGIN")
    p.add_argument("--confirm", action="store_true", help="apply even if the safeguard would hold it")
    for verb in ("activate", "deactivate"):
        p = command(rule, verb, cmd_state, f"{verb} a rule")
        p.add_argument("name")
        p.add_argument("--confirm", action="store_true", help="apply even if the safeguard would hold it")
    p = command(rule, "delete", cmd_delete, "delete a rule (its members leave; held by the safeguard like a deactivation)")
    p.add_argument("name")
    p.add_argument("--confirm", action="store_true", help="delete even past the safeguard (needs the role `held approve` needs)")
    p = command(rule, "preview", cmd_preview, "who would join and leave, and what access they gain and lose")
    p.add_argument("name")
    p.add_argument("--expr", help="preview this expression instead of the rule's")
    command(rule, "list", cmd_list, "list rules")
    p = command(cli.nouns, "held", cmd_held, "changes held by a safeguard; `held approve|reject ID`")
    p.add_argument("verb", nargs="?", choices=["approve", "reject"])
    p.add_argument("id", nargs="?", metavar="ID")
