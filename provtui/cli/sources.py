"""`provtui source ...` and `provtui import ...`: sources of truth and imports from them."""

from __future__ import annotations

import sys
from pathlib import Path

from provtui.cli.output import EXIT_HELD, emit, print_json, warn
from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.hr_import import load_mapping


def _read(path: str, what: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise InvalidInput(what, f"cannot read {path}: {error.strerror}") from None


def cmd_add_csv(args, service) -> int:
    settings = {}
    if args.mapping:
        text = _read(args.mapping, "--mapping").decode("utf-8-sig", errors="replace")
        load_mapping(text)  # refuse a broken mapping now, naming its line, not at the first import
        settings["mapping"] = text
    source = service.add_source(args.name, "csv", settings)
    return emit(args, source, text=f"added CSV source {source['name']}")


def cmd_list(args, service) -> int:
    return emit(args, service.list_sources(), ["name", "kind", "last_run"])


def cmd_priority(args, service) -> int:
    value = service.set_source_priority(args.attribute, [s.strip() for s in args.sources.split(",") if s.strip()])
    return emit(args, value, text=f"{args.attribute}: {', '.join(value[args.attribute])}")


def report_import(args, result: dict) -> None:
    for rejection in result["rejected"]:
        column = f", column {rejection['column']}" if rejection.get("column") else ""
        warn(f"line {rejection['line']}{column}: {rejection['reason']}")
    if args.json:
        print_json(result)
        return
    counts = ", ".join(f"{result[k]} {k}" for k in ("created", "updated", "unchanged", "suspended", "deactivated", "reactivated"))
    prefix = "would import (dry run)" if result.get("dry_run") else "imported"
    print(f"{prefix} from {result['source']}: {counts}, {len(result['rejected'])} rejected")
    for action in result.get("actions", []):
        changes = ", ".join(f"{k}: {b!r} -> {a!r}" for k, (b, a) in action["changes"].items())
        where = f"line {action['line']}" if action["line"] else "missing from the file"
        print(f"  {'/'.join(action['outcomes'])} {action['login']} ({where}){': ' + changes if changes else ''}")


def run_import(args, do) -> int:
    """Run an import; print the plan or result; a safeguard hold exits 3 with the counts."""
    try:
        result = do(confirm=False) if args.dry_run else do(confirm=args.confirm)
    except HeldForConfirmation as held:
        warn(str(held))
        if args.json:
            print_json({**held.details, "held": True})
        return EXIT_HELD
    report_import(args, result)
    return 0


def cmd_import_csv(args, service) -> int:
    data = _read(args.file, "FILE")
    return run_import(args, lambda confirm: service.import_csv(data, source=args.source, dry_run=args.dry_run,
                                                              confirm=confirm, full=not args.partial))


def add_import_options(p) -> None:
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--confirm", action="store_true", help="apply even if the safeguard would hold it")


def register(cli) -> None:
    source, command = cli.noun("source", "sources of truth: HR exports and LDAP/AD directories"), cli.command
    p = command(source, "add-csv", cmd_add_csv, "add an HR CSV source")
    p.add_argument("name")
    p.add_argument("--mapping", metavar="FILE", help="column-to-attribute mapping (see fixtures/hr/mapping.example)")
    command(source, "list", cmd_list, "list sources")
    p = command(source, "priority", cmd_priority, "which sources win an attribute several supply, highest first")
    p.add_argument("attribute")
    p.add_argument("sources", metavar="SOURCE[,SOURCE...]")
    imports = cli.noun("import", "import people: an HR CSV export, an LDAP/AD directory, an app's accounts")
    p = command(imports, "csv", cmd_import_csv, "import an HR export (a full import deactivates who is missing)")
    p.add_argument("file", metavar="FILE", help="the CSV file, or - for stdin")
    p.add_argument("--source", help="the CSV source (default: 'csv', made on first use)")
    p.add_argument("--partial", action="store_true", help="the file is not everyone: deactivate no one missing from it")
    add_import_options(p)
