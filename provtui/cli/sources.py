"""`provtui source ...` and `provtui import ...`: sources of truth and imports from them.

    provtui source add-csv NAME [--mapping FILE]
    provtui source add-ldap NAME --uri URI --bind-dn DN (--password-secret NAME | --password-env VAR) --base-dn DN
                           [--user-filter F] [--groups-dn DN] [--group-filter F] [--flavor openldap|ad]
                           [--tls ldaps|starttls|none] [--ca-file PEM] [--external-id-attribute ATTR] [--interval MINUTES]
                           [--live]
    provtui source update NAME [any add-ldap option] [--live | --no-live]
    provtui source list [--json]
    provtui source status [NAME] [--json]
    provtui source priority ATTRIBUTE SOURCE[,SOURCE...]
    provtui import csv FILE [--source NAME] [--partial] [--strict] [--allow-empty] [--dry-run] [--confirm] [--json]
    provtui import ldap NAME [--full] [--allow-empty] [--dry-run] [--confirm] [--json]
    provtui import app APP [--match userName|email|externalId] [--dry-run] [--confirm] [--json]

Imports exit 3 when held (a mass deactivation, or an app import that would link accounts,
waits for --confirm); `import ldap` exits 1 when the directory cannot be reached and 2 when
it refuses the configuration (credentials, base DN, filter).  A full `import csv|ldap` that
yields no valid person (no rows, every row rejected, a search that finds nobody) is refused:
exit 2, nothing changed but its audit event, with or without --confirm; only --allow-empty
lets it through (and the safeguard still holds it for --confirm).  `import csv` with rejected
rows applies the valid ones and exits 2 (each rejected row on stderr: line, column, reason);
with --strict it applies nothing.  A dry run exits as the real run would: 3 held, 2 refused
or rows rejected (csv), else 0.  `--json` on `import csv|ldap`
prints the counts {"created", "updated", "unchanged", "suspended", "deactivated",
"reactivated"} and "rejected": [{"line", "column", "reason"}]; an LDAP rejection's "line"
is the entry's position in the read, its "column" the LDAP attribute at fault, and it adds
"dn".  LDAP runs add "mode" (full or incremental) and "groups" (counts).  CSV runs add
"ignored_columns" (every column not imported) and "unmapped_columns" (those the mapping does
not mark @ignore: each is warned about on stderr).  A held run adds "held": true; a refused
one "refused": true, "reason" ("empty" or "strict") and "would_deactivate" (logins, empty runs).
`source status --json` prints, per source, {"name", "kind", "live", "state" (a live source's session: live,
catching up, reconnecting, held, failed, stopped; else "scheduled" or "on demand"), "since", "lag_ms",
"last_change", "message", "last_run", "last_outcome"}; with NAME, that one object.
"""

from __future__ import annotations

import argparse

from provtui.cli.directory_options import add_directory_options, directory_options
from provtui.cli.output import EXIT_HELD, EXIT_OK, EXIT_USAGE, emit, print_json, shown, warn
from provtui.cli.safe_input import ranged
from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.hr_mapping import load_mapping
from provtui.domain.numbers import INTERVAL
from provtui.input_files import MAX_CSV, MAX_MAPPING, read_input


def _read(path: str, what: str, limit: int = MAX_CSV) -> bytes:
    """A regular file (or stdin, ``-``) of at most ``limit`` bytes: /dev/zero or a FIFO is refused at once."""
    return read_input(path, what, limit)


def cmd_add_csv(args, service) -> int:
    settings = {}
    if args.mapping:
        text = _read(args.mapping, "--mapping", MAX_MAPPING).decode("utf-8-sig", errors="replace")
        load_mapping(text)  # refuse a broken mapping now, naming its line, not at the first import
        settings["mapping"] = text
    source = service.add_source(args.name, "csv", settings)
    return emit(args, source, text=f"added CSV source {source['name']}")


def cmd_add_ldap(args, service) -> int:
    source = service.add_ldap_source(
        args.name,
        uri=args.uri,
        bind_dn=args.bind_dn,
        password_env=args.password_env,
        password_secret=args.password_secret,
        base_dn=args.base_dn,
        flavor=args.flavor,
        interval=args.interval,
        live=args.live,
        **directory_options(args, groups_key="group_base"),
    )
    every = f", imported every {args.interval} min by the worker" if args.interval else ""
    every += ", live: the worker applies each change as it arrives" if args.live else ""
    return emit(args, source, text=f"added LDAP source {source['name']} ({args.flavor}){every}")


def cmd_update(args, service) -> int:
    given = {
        "uri": args.uri,
        "bind_dn": args.bind_dn,
        "password_env": args.password_env,
        "password_secret": args.password_secret,
        "base_dn": args.base_dn,
        "flavor": args.flavor,
        "interval": args.interval,
        "live": args.live,
        **directory_options(args, groups_key="group_base"),
    }
    source = service.update_ldap_source(args.name, **{k: v for k, v in given.items() if v is not None})
    return emit(args, source, text=f"updated LDAP source {source['name']}")


def cmd_list(args, service) -> int:
    return emit(args, service.list_sources(), ["name", "kind", "interval", "last_run", "last_outcome"])


def cmd_status(args, service) -> int:
    """Each source's state: a live one's session (live, catching up, reconnecting, held, failed, stopped) and its lag."""
    sources = service.list_sources()
    if args.name is not None:
        sources = [s for s in sources if s["name"] == args.name]
        if not sources:
            raise InvalidInput("NAME", f"no source named {args.name!r}")
    rows = [
        {
            "name": s["name"],
            "kind": s["kind"],
            "live": bool(s.get("live")),
            "state": s.get("live_state") or ("scheduled" if s.get("interval") else "on demand"),
            "since": s.get("live_since"),
            "lag_ms": s.get("live_lag_ms"),
            "last_change": s.get("live_applied"),
            "message": s.get("live_message") or s.get("last_message"),
            "last_run": s.get("last_run"),
            "last_outcome": s.get("last_outcome"),
        }
        for s in sources
    ]
    return emit(args, rows if args.name is None else rows[0], ["name", "kind", "state", "lag_ms", "last_change", "last_run"])


def cmd_priority(args, service) -> int:
    value = service.set_source_priority(args.attribute, [s.strip() for s in args.sources.split(",") if s.strip()])
    return emit(args, value, text=f"{args.attribute}: {', '.join(value[args.attribute])}")


def warn_rejections(result: dict) -> None:
    """Each rejected row (line, column, reason) and each column not imported, on stderr."""
    for rejection in result.get("rejected", ()):
        if rejection.get("dn"):  # an LDAP entry: its DN says more than its position in the read
            column = f", attribute {shown(rejection['column'])}" if rejection.get("column") else ""
            warn(f"entry {rejection['line']} ({shown(rejection['dn'])}){column}: {shown(rejection['reason'])}")
            continue
        column = f", column {shown(rejection['column'])}" if rejection.get("column") else ""
        warn(f"line {rejection['line']}{column}: {shown(rejection['reason'])}")
    unmapped = result.get("unmapped_columns")
    if unmapped:
        warn(
            f"ignored {'column' if len(unmapped) == 1 else 'columns'} (no attribute is mapped to "
            f"{'it' if len(unmapped) == 1 else 'them'}; map it, or mark it @ignore in the source's mapping): "
            + ", ".join(repr(c) for c in unmapped)
        )


def report_import(args, result: dict, *, warned: bool = False) -> None:
    if not warned:
        warn_rejections(result)
    if args.json:
        print_json(result)
        return
    counts = ", ".join(f"{result[k]} {k}" for k in ("created", "updated", "unchanged", "suspended", "deactivated", "reactivated"))
    prefix = "would import (dry run)" if result.get("dry_run") else "imported"
    mode = f" ({result['mode']} read)" if result.get("mode") else ""
    print(f"{prefix} from {result['source']}{mode}: {counts}, {len(result['rejected'])} rejected")
    if result.get("groups"):
        g = result["groups"]
        print(
            f"groups: {g['created']} created, {g['updated']} updated, {g['unchanged']} unchanged, {g['removed']} removed, "
            f"{g['skipped']} skipped; {g['members_added']} memberships added, {g['members_removed']} removed"
        )
    for action in result.get("actions", []):
        changes = ", ".join(f"{k}: {b!r} -> {a!r}" for k, (b, a) in action["changes"].items())
        where = shown(action.get("dn") or (f"line {action['line']}" if action["line"] else "missing from the source"))
        print(f"  {'/'.join(action['outcomes'])} {shown(action['login'])} ({where}){': ' + shown(changes) if changes else ''}")
    for op in result.get("group_actions", []):
        if op["action"] == "unchanged":
            continue
        members = "".join(f" +{shown(login)}" for login in op["add"]) + "".join(f" -{shown(login)}" for login in op["remove"])
        print(f"  group {op['action']} {shown(op['group'])}{members}{' (' + shown(op['reason']) + ')' if op.get('reason') else ''}")


def report_app_import(args, result: dict) -> None:
    if args.json:
        print_json(result)
        return
    prefix = "would link (dry run)" if result.get("dry_run") else "linked"
    print(
        f"{prefix} {result['linked']} of {result['accounts']} accounts of {result['app']} (match: {result['match']}): "
        f"{result['already_linked']} already linked, {result['conflicts']} conflicts, {result['orphans']} orphans"
    )
    details = result["details"]
    for entry in details["linked"]:
        note = "" if entry["entitled"] else " (not entitled: the next sync deactivates it)"
        print(f"  link {shown(entry['remote_id'])} {shown(entry['userName'] or '')} -> {shown(entry['login'])}{note}")
    for entry in details["conflicts"]:
        print(f"  conflict {shown(entry['remote_id'])} {shown(entry['userName'] or '')}: {shown(entry['reason'])}")
    for entry in details["orphans"]:
        print(f"  orphan {shown(entry['remote_id'])} {shown(entry['userName'] or '')} {shown(entry['email'] or '')}".rstrip())


def run_import(args, do, report=report_import, *, rejected_exit: bool = False) -> int:
    """Run an import (or its dry run, with the same --confirm); print the plan or result.

    Exit 3 when the safeguard holds it (the counts, and a dry run's plan, printed); 2 when it
    is refused (ImportRefused: no valid person, or --strict and rows rejected); with
    ``rejected_exit`` (CSV), 2 when rows were rejected, the valid ones applied.
    """
    from provtui.domain.errors import ImportRefused

    try:
        result = do(confirm=args.confirm)
    except HeldForConfirmation as held:
        details = {**held.details, "held": True}
        warn_rejections(details)
        warn(str(held))
        if args.json:
            print_json(details)
        elif details.get("dry_run"):
            report(args, details, warned=True)
        return EXIT_HELD
    except ImportRefused as refused:
        warn_rejections(refused.details)
        warn(f"error: {refused}")
        if args.json:
            print_json(refused.details)
        return refused.exit_code
    report(args, result)
    rejected = len(result.get("rejected") or ())
    if rejected_exit and rejected:
        rows = f"{rejected} {'row was' if rejected == 1 else 'rows were'} rejected (listed above)"
        done = "the other rows would be imported" if result.get("dry_run") else "the other rows were imported"
        warn(f"error: {rows}; {done} (--strict applies nothing when a row is rejected)")
        return EXIT_USAGE
    return EXIT_OK


def cmd_import_csv(args, service) -> int:
    data = _read(args.file, "FILE")
    importer = service.importer()
    return run_import(
        args,
        lambda confirm: importer.import_csv(
            data,
            source=args.source,
            dry_run=args.dry_run,
            confirm=confirm,
            full=not args.partial,
            allow_empty=args.allow_empty,
            strict=args.strict,
        ),
        rejected_exit=True,
    )


def cmd_import_ldap(args, service) -> int:
    importer = service.importer()
    return run_import(
        args,
        lambda confirm: importer.import_ldap(
            args.name, dry_run=args.dry_run, confirm=confirm, full=True if args.full else None, allow_empty=args.allow_empty
        ),
    )


def cmd_import_app(args, service) -> int:
    importer = service.importer()
    return run_import(
        args, lambda confirm: importer.import_app(args.app, match=args.match, dry_run=args.dry_run, confirm=confirm), report_app_import
    )


def cmd_import_app_groups(args, service) -> int:
    result = service.import_app_groups(args.app, dry_run=args.dry_run)
    counts = ", ".join(
        f"{result[k]} {k.replace('_', ' ')}" for k in ("created", "updated", "unchanged", "removed", "members_added", "members_removed")
    )
    return emit(args, result, text=f"{'would import' if args.dry_run else 'imported'} {args.app}'s groups: {counts}")


def add_import_options(p) -> None:
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing; exit as the real run would (3 held, 2 refused)")
    p.add_argument("--confirm", action="store_true", help="apply even if the safeguard would hold it")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="let a full run that yields no valid person deactivate everyone this source masters "
        "(refused without it, even with --confirm; the safeguard still applies)",
    )


def _source_options(p) -> None:
    """What add-ldap and update both take (update: each only when given)."""
    p.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep a live session to the directory: each change applied as it arrives (syncrepl, DirSync, or frequent reads)",
    )
    add_directory_options(p)
    p.add_argument(
        "--external-id-attribute",
        metavar="ATTR",
        help="the attribute naming a person for good, through renames and moves (default: entryUUID; AD: objectGUID)",
    )


def register(cli) -> None:
    source, command = cli.noun("source", "sources of truth: HR exports and LDAP/AD directories"), cli.command
    p = command(source, "add-csv", cmd_add_csv, "add an HR CSV source")
    p.add_argument("name")
    p.add_argument("--mapping", metavar="FILE", help="column-to-attribute mapping (see fixtures/hr/mapping.example)")
    p = command(source, "add-ldap", cmd_add_ldap, "add an LDAP / Active Directory source (users and groups)")
    p.add_argument("name")
    p.add_argument("--uri", required=True, help="ldap://host[:port] or ldaps://host[:port]")
    p.add_argument("--bind-dn", required=True, metavar="DN", help="the account provtui reads the directory as")
    password = p.add_mutually_exclusive_group(required=True)
    password.add_argument("--password-secret", metavar="NAME", help="the server's secret holding the bind password")
    password.add_argument(
        "--password-env", metavar="VAR", help="embedded: the environment variable holding the bind password (the password is never stored)"
    )
    p.add_argument("--base-dn", required=True, metavar="DN", help="where the users are")
    p.add_argument("--group-base", metavar="DN", help=argparse.SUPPRESS)  # the name --groups-dn had first
    p.add_argument("--flavor", choices=("openldap", "ad"), default="openldap", help="attribute defaults (default: openldap)")
    p.add_argument("--interval", type=ranged(INTERVAL), metavar="MINUTES", help="import every MINUTES minutes (the worker runs it)")
    _source_options(p)
    p = command(source, "update", cmd_update, "change an LDAP / AD source's settings (a new URI or bind DN names its password too)")
    p.add_argument("name")
    p.add_argument("--uri", help="ldap://host[:port] or ldaps://host[:port]")
    p.add_argument("--bind-dn", metavar="DN", help="the account provtui reads the directory as")
    password = p.add_mutually_exclusive_group()
    password.add_argument("--password-secret", metavar="NAME", help="the server's secret holding the bind password")
    password.add_argument("--password-env", metavar="VAR", help="embedded: the environment variable holding the bind password")
    p.add_argument("--base-dn", metavar="DN", help="where the users are")
    p.add_argument("--flavor", choices=("openldap", "ad"), help="attribute defaults")
    p.add_argument("--interval", type=ranged(INTERVAL), metavar="MINUTES", help="import every MINUTES minutes (the worker runs it)")
    _source_options(p)
    command(source, "list", cmd_list, "list sources")
    p = command(source, "status", cmd_status, "each source's state: a live one's session and its lag, the last run")
    p.add_argument("name", nargs="?", metavar="NAME")
    p = command(source, "priority", cmd_priority, "which sources win an attribute several supply, highest first")
    p.add_argument("attribute")
    p.add_argument("sources", metavar="SOURCE[,SOURCE...]")
    imports = cli.noun("import", "import people: an HR CSV export, an LDAP/AD directory, an app's accounts")
    p = command(imports, "csv", cmd_import_csv, "import an HR export (a full import deactivates who is missing)")
    p.add_argument("file", metavar="FILE", help="the CSV file, or - for stdin")
    p.add_argument("--source", help="the CSV source (default: 'csv', made on first use)")
    p.add_argument("--partial", action="store_true", help="the file is not everyone: deactivate no one missing from it")
    p.add_argument("--strict", action="store_true", help="apply nothing when any row is rejected (exit 2)")
    add_import_options(p)
    p = command(
        imports,
        "ldap",
        cmd_import_ldap,
        "import users and groups from an LDAP/AD source (incremental when it can; a full read deactivates who is gone)",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--full", action="store_true", help="read every entry, not only those changed since the last run")
    add_import_options(p)
    p = command(imports, "app", cmd_import_app, "link an app's existing accounts to users; list the orphans")
    p.add_argument("app", metavar="APP")
    p.add_argument(
        "--match",
        choices=("userName", "email", "externalId"),
        default="userName",
        help="how an account finds its user: userName = login, email = the profile's email, externalId = the user's id (default: userName)",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would be linked, change nothing")
    p.add_argument("--confirm", action="store_true", help="link the matched accounts (without it, a run that links is held)")
    p = command(imports, "app-groups", cmd_import_app_groups, "import an app's groups as app groups (kind app:APP)")
    p.add_argument("app", metavar="APP")
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
