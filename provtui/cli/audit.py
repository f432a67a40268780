"""`provtui audit ...`: the audit trail, filtered; its export; the check of its hash chain.

provtui audit [--json] [--actor A] [--target T] [--about NAME] [--action X] [--since ISO8601] [--until ISO8601] [--limit N]
provtui audit export --format jsonl|csv [--output FILE] [the same filters]
provtui audit verify [--head HASH]   # exit 0 intact; 1 with the first broken entry named
provtui audit head          # the newest hash and the trail's length, to keep elsewhere
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from provtui.cli.output import EXIT_DOWNSTREAM, EXIT_OK, emit, print_json, shown, warn, write_data
from provtui.cli.safe_input import ranged
from provtui.domain.errors import InvalidInput
from provtui.domain.numbers import LIMIT
from provtui.model.audit_trail import parse_time, to_csv, to_jsonl

_FILTERS = ("actor", "target", "about", "action", "since", "until", "limit")


def _events(args, service) -> list[dict]:
    if args.limit is not None:
        LIMIT.check("--limit", args.limit)
    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    return service.audit(args.limit, actor=args.actor, target=args.target, about=args.about, action=args.action, since=since, until=until)


def _write_private(path: Path, data: bytes) -> None:
    """Write an export readable by its owner only: the trail names people and what was done to them."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def cmd_audit(args, service) -> int:
    if args.head is not None and args.verb != "verify":
        raise InvalidInput("--head", "only `audit verify` takes a head")
    if args.verb == "verify":
        return _verify(args, service)
    if args.verb == "head":
        head = service.audit_head()
        return emit(args, head, text=f"{head['head']}  ({head['events']} events)")
    if args.verb != "export" and (args.format or args.output):
        raise InvalidInput("--format" if args.format else "--output", "only `audit export` writes a file")
    events = _events(args, service)
    if args.verb == "export":
        return _export(args, events)
    if args.json:
        return emit(args, events)
    for event in events:
        print(event_line(event))
    return EXIT_OK


def event_line(event: dict) -> str:
    """One audit event as a line of text: time, actor, action, target."""
    return f"{event['time']}  {shown(event['actor']):<16} {shown(event['action']):<20} {shown(event['target'])}"


def _export(args, events: list[dict]) -> int:
    if args.format is None:
        raise InvalidInput("--format", "give --format jsonl or --format csv")
    data = to_jsonl(events) if args.format == "jsonl" else to_csv(events).encode()
    if args.output is None:
        write_data(data.decode())
        sys.stdout.flush()
        return EXIT_OK
    try:
        _write_private(args.output, data)
    except OSError as error:
        raise InvalidInput("--output", f"cannot write {args.output}: {error.strerror}") from None
    return emit(
        args,
        {"exported": len(events), "format": args.format, "output": str(args.output)},
        text=f"exported {len(events)} audit event(s) to {args.output}",
    )


def _verify(args, service) -> int:
    given = [f"--{name}" for name in _FILTERS if getattr(args, name) is not None]
    given += [f"--{name}" for name in ("format", "output") if getattr(args, name) is not None]
    if given:
        raise InvalidInput(given[0], "`audit verify` checks the whole trail: it takes no filters")
    if args.head is not None and not (12 <= len(args.head) <= 64 and set(args.head.lower()) <= set("0123456789abcdef")):
        raise InvalidInput("--head", "a head is the hex hash `provtui audit head` printed (12 to 64 hex digits)")
    report = service.audit_verify(args.head)
    if args.json:
        print_json(report.to_dict())
    elif report.ok:
        print(report.describe())
    if not report.ok:
        warn(report.describe())
        return EXIT_DOWNSTREAM
    return EXIT_OK


def register(cli) -> None:
    p = cli.command(cli.nouns, "audit", cmd_audit, "the audit trail; `audit export` writes it out, `audit verify` checks its hash chain")
    p.add_argument("verb", nargs="?", choices=["export", "verify", "head"])
    p.add_argument("--head", metavar="HASH", help="verify: the trail must hold this head, kept elsewhere (`audit head`)")
    p.add_argument("--actor", help="who made the change (exact)")
    p.add_argument("--target", help="what it was made to: exact, or the name in kind:name (user:ada); * and ? glob")
    p.add_argument(
        "--about",
        metavar="NAME",
        help="a thing or a person: --target's match, or events naming the person (group members added or removed, "
        "assignments, bulk changes, tasks)",
    )
    p.add_argument("--action", help="exact (user.create) or a dotted prefix (user)")
    p.add_argument("--since", metavar="ISO8601", help="at or after this time (UTC unless an offset is given)")
    p.add_argument("--until", metavar="ISO8601", help="before this time")
    p.add_argument("--limit", type=ranged(LIMIT), metavar="N", help="the newest N events")
    p.add_argument("--format", choices=["jsonl", "csv"], help="export: JSON lines (every field, verifiable) or CSV")
    p.add_argument("--output", type=Path, metavar="FILE", help="export: write to FILE (mode 0600) instead of stdout")
