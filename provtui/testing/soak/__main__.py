"""The soak: a whole organisation under a storm of changes, faults and kills, then the invariants.

The command (the package's docstring tells the whole of it); ``--writer NAME`` is one of the writers the soak starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provtui.testing.soak.options import Options
from provtui.testing.soak.storm import run_soak, summary
from provtui.testing.soak.writers import WRITERS, Writer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provtui.testing.soak", description=__doc__.split("\n\n")[0])
    defaults = Options()
    parser.add_argument("--minutes", type=float, default=defaults.minutes, help="length of the storm")
    parser.add_argument("--people", type=int, default=defaults.people)
    parser.add_argument("--apps", type=int, default=defaults.apps, help="SCIM apps")
    parser.add_argument("--manual-apps", type=int, default=defaults.manual_apps)
    parser.add_argument("--groups", type=int, default=defaults.groups)
    parser.add_argument("--rules", type=int, default=defaults.rules)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--converge-minutes", type=float, default=defaults.converge_minutes, help="bound on draining the queue")
    parser.add_argument("--work", type=Path, help="keep the store, logs and acknowledgement logs here")
    # The writer processes the soak starts:
    parser.add_argument("--writer", choices=WRITERS, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)  # a directory or a PostgreSQL URL (a Path would fold its //)
    parser.add_argument("--ack-log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--incarnation", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer:
        Writer(WRITERS.index(args.writer), args.store, args.ack_log, args.seed, args.incarnation).run()
        return 0
    if args.groups < args.rules:
        parser.error("--groups must be at least --rules (each rule fills a group)")
    result = run_soak(
        Options(
            minutes=args.minutes,
            people=args.people,
            apps=args.apps,
            manual_apps=args.manual_apps,
            groups=args.groups,
            rules=args.rules,
            seed=args.seed,
            converge_minutes=args.converge_minutes,
            work=args.work,
        )
    )
    print(summary(result), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
