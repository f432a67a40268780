"""`provtui report ...`: app usage, access, pending deprovisions, failures, orphans, stale, recent changes.

    provtui report apps|access|pending|failures|orphans|stale|changes [--json|--csv] [--app APP] [--days N] [--limit N]

--csv prints RFC 4180 CSV on stdout, cells a spreadsheet would run as formulas escaped.
"""

from __future__ import annotations

from provtui.cli.output import EXIT_OK, print_json, print_table, write_data
from provtui.cli.safe_input import ranged
from provtui.domain.errors import InvalidInput
from provtui.domain.numbers import LIMIT, STALE_DAYS
from provtui.model.audit_trail import compact_json, csv_text

REPORTS = {
    "apps": "active accounts per app against its license count",
    "access": "who has which app and why (--pivot: a user-by-app table)",
    "pending": "deprovisions not done yet: manual deprovision tasks, and active accounts of users no longer entitled",
    "failures": "accounts whose provisioning failed",
    "orphans": "accounts found by app import that match no user",
    "stale": "accounts deactivated, and users deprovisioned, longer than --days N (default 90)",
    "changes": "recent changes (the audit trail without downstream calls)",
}

# What a person sees of each report (--json and --csv give every column).
_TEXT_COLUMNS = {"changes": ["seq", "time", "actor", "action", "target", "correlation"]}


def cmd_report(args, service) -> int:
    if args.json and args.csv:
        raise InvalidInput("--csv", "give --json or --csv, not both")
    rows, columns = service.reports().run(
        args.report, app=getattr(args, "app", None), days=getattr(args, "days", None), limit=args.limit, pivot=getattr(args, "pivot", False)
    )
    if args.csv:
        write_data(csv_text(rows, columns))
    elif args.json:
        print_json(rows)
    else:
        shown = _TEXT_COLUMNS.get(args.report, columns)
        print_table([{c: _text(r.get(c)) for c in shown} for r in rows], shown)
    return EXIT_OK


def _text(value):
    return compact_json(value) if isinstance(value, (dict, list)) else value


def register(cli) -> None:
    report = cli.noun("report", "reports: " + ", ".join(REPORTS))
    for name, help in REPORTS.items():
        p = cli.command(report, name, cmd_report, help)
        p.set_defaults(report=name)
        p.add_argument("--csv", action="store_true", help="print CSV")
        if name != "changes":
            p.add_argument("--app", metavar="APP", help="only this app")
        if name == "access":
            p.add_argument("--pivot", action="store_true", help="one row per user, one column per app")
        if name == "stale":
            p.add_argument("--days", type=ranged(STALE_DAYS), metavar="N", help="deactivated longer than N days (default 90)")
        p.add_argument("--limit", type=ranged(LIMIT), metavar="N", help="at most N rows (changes: the newest N, default 50)")
