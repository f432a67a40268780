"""A process that commits to a store in a loop, for the crash and concurrency tests.

    python tests/integration/store_writer.py STORE --prefix w1 [--count N] [--mode tx|service|mixed]
                                       [--compact-every-call K] [--audit-pad BYTES]

Each commit puts one document (or creates one user) under a unique key
``<prefix>-<n>`` and appends one audit event.  The key is printed, and stdout
flushed, only AFTER the commit returned: a printed key is an acknowledged change,
which must survive a kill -9 at any later moment.  ``READY`` is printed once the
store is open, so a test can start its kill timer when commits begin.

``PROVTUI_TEST_COMPACT_EVERY`` (environment) is monkeypatched into
``provtui.store.journal_store.COMPACT_EVERY`` so that automatic compactions happen often;
``--compact-every-call K`` also calls ``store.compact()`` after every K commits.
The store must exist (``Service.init`` it first for the ``service``/``mixed`` modes).
"""

from __future__ import annotations

import argparse
import os
import sys

import provtui.store.journal_store

DOCS = "docs"
ACTOR = "tester"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, default=0, help="0: until killed")
    parser.add_argument("--mode", choices=("tx", "service", "mixed"), default="tx")
    parser.add_argument("--compact-every-call", type=int, default=0)
    parser.add_argument("--audit-pad", type=int, default=0, help="bytes of padding in each audit event")
    args = parser.parse_args()

    compact_every = os.environ.get("PROVTUI_TEST_COMPACT_EVERY")
    if compact_every:
        provtui.store.journal_store.COMPACT_EVERY = int(compact_every)

    if args.mode == "tx":
        store = provtui.store.Store.open(args.store)
        service = None
    else:
        from provtui.service import Service

        service = Service.open(args.store, actor=ACTOR)
        store = service.store
    pad = "x" * args.audit_pad
    out = sys.stdout
    out.write("READY\n")
    out.flush()

    n = 0
    while not args.count or n < args.count:
        key = f"{args.prefix}-{n}"
        use_service = args.mode == "service" or (args.mode == "mixed" and n % 3 == 0)
        if use_service:
            service.create_user(key, f"{key}@example.com", "Writer", args.prefix.capitalize())
        else:
            with store.transaction() as tx:
                tx.put(DOCS, key, {"key": key, "n": n, "writer": args.prefix})
                event = {"actor": ACTOR, "action": "doc.put", "target": key}
                if pad:
                    event["pad"] = pad
                tx.audit(event)
        # The commit returned: only now is the key acknowledged.
        out.write(f"{'user' if use_service else 'doc'} {key}\n")
        out.flush()
        n += 1
        if args.compact_every_call and n % args.compact_every_call == 0:
            store.compact()
    return 0


if __name__ == "__main__":
    sys.exit(main())
