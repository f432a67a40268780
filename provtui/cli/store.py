"""`provtui store check|repair`: the store's files checked record by record, and rebuilt from what is intact.

    provtui store check [--json]    # exit 0 intact; 5 damaged (each spot named); 1 the audit chain is broken
    provtui store repair [--json]   # super admin; exit 0 repaired; 2 nothing was damaged
    provtui store migrate --to LOCATION [--json]   # super admin; exit 0 copied and verified; 2 a store is there

Both run on a store that will not open, so neither needs the store to be whole.
"""

from __future__ import annotations

from provtui.cli.output import EXIT_DAMAGED, EXIT_DOWNSTREAM, EXIT_OK, print_json, warn
from provtui.domain.errors import InvalidInput


def cmd_check(args) -> int:
    if args.server:  # the server checks its own store's files (it alone may read them)
        from provtui.client.remote import RemoteService

        report = RemoteService.connect(args.server).check_store()
    else:
        from provtui.service import Service

        report = Service.check_store(args.store)
    if args.json:
        print_json(report)
    else:
        for name, count in report["records"].items():
            print(f"{name}: {count} intact record(s)")
        in_files = all("intact_before" in spot for spot in report["damage"])  # (a PostgreSQL store's spots are rows)
        for spot in report["damage"]:
            where = f"{spot['file']} at byte {spot['offset']} (record {spot['record']})" if in_files else spot["file"]
            around = f" [{spot['intact_before']} intact before, {spot['intact_after']} after]" if in_files else ""
            print(f"damaged: {where}: {spot['reason']}{around}")
        audit = report["audit"]
        state = "intact" if audit["intact"] else f"broken: {audit.get('reason')}"
        print(f"audit chain: {audit['events']} event(s), head {audit['head']}, {state}")
        print(
            "store intact"
            if report["intact"]
            else "store damaged: `provtui store repair` copies the files aside and recovers every intact record"
            if report["damage"] and in_files
            else "store damaged: its database was written around provtui (mend it with PostgreSQL's own tools and backups)"
            if report["damage"]
            else "the audit chain is broken: `provtui audit verify` names the entry"
        )
    if report["damage"]:
        return EXIT_DAMAGED
    return EXIT_OK if report["audit"]["intact"] else EXIT_DOWNSTREAM


def cmd_repair(args) -> int:
    if args.server:
        raise InvalidInput(
            "--server", "a store is repaired with no server on it: stop the server, then run `provtui store repair` as its user"
        )
    from provtui.service import Service

    report = Service.repair_store(args.store).to_dict()
    if args.json:
        print_json(report)
        return EXIT_OK
    print(f"copied the damaged files to {report['backup']} (nothing was deleted)")
    for spot in report["dropped"]:
        readable = spot.get("readable")
        what = f" [{_readable_text(readable)}]" if readable else ""
        print(f"dropped: {spot['file']} record {spot['record']} at byte {spot['offset']}: {spot['reason']}{what}")
    kept = ", ".join(f"{name}: {count}" for name, count in report["kept"].items())
    lost = "an unknown number of" if report["events_lost"] is None else report["events_lost"]
    print(
        f"kept every intact record ({kept}); {lost} audit event(s) lost; "
        f"{report['accounts_queued']} account(s) queued to be checked against their apps (`provtui sync`)"
    )
    warn("the store was repaired: `provtui audit verify` names the gap")
    return EXIT_OK


def cmd_migrate(args, service) -> int:
    if getattr(service, "remote", False):
        raise InvalidInput("--server", "a store is migrated with no server on it: stop the server, then run it as the store's user")
    report = service.migrate_store(str(args.to))
    if args.json:
        print_json(report)
    else:
        counts = ", ".join(f"{name}: {count}" for name, count in report["documents"].items())
        print(f"copied {report['from']} to {report['to']} as of commit {report['seq']} ({counts}; {report['audit_events']} audit events)")
        chains = (
            "both audit chains intact" if report["source_chain_intact"] and report["target_chain_intact"] else "AN AUDIT CHAIN IS BROKEN"
        )
        print(f"{chains}; the copy {'matches' if report['same'] else 'DIFFERS FROM'} the source")
    ok = report["source_chain_intact"] and report["target_chain_intact"] and report["same"]
    return EXIT_OK if ok else EXIT_DOWNSTREAM


def _readable_text(readable: dict) -> str:
    if "table" in readable:
        keys = readable.get("keys")
        return f"{readable['table']}: {', '.join(keys)}" if keys else f"{readable['table']} (keys unreadable)"
    writes = ", ".join(f"{w['table']} {w['key']}" for w in readable.get("writes", []))
    return f"seq {readable.get('seq')}: {writes or 'no writes'}"


def register(cli) -> None:
    noun = cli.noun("store", "the store's files: check every record, repair damage; migrate to another backend")
    cli.command(noun, "check", cmd_check, "check every record of every store file and the audit chain").set_defaults(needs_service=False)
    cli.command(noun, "repair", cmd_repair, "rebuild a damaged store from every intact record (super admin)").set_defaults(
        needs_service=False
    )
    migrate = cli.command(noun, "migrate", cmd_migrate, "copy everything to a new store: a directory or postgresql://… (super admin)")
    migrate.add_argument(
        "--to", required=True, metavar="LOCATION", help="where the copy goes: a directory or a PostgreSQL URL; must hold no store"
    )
